"""Ensembles of translation and language models
(:mod:`nlpseq.tasks.ensemble`): a step is the mean of the members'
log-probabilities (checked against each member's own step), one member is
the member itself, the export serves what the Python ensemble decodes, and
models that cannot decode as one are refused with one line."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from server_helpers import tiny_task

from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.tasks.ensemble import ensemble

LINES = ["ein hund läuft", "zwei männer sitzen auf einer bank", "hallo"]


@pytest.fixture(scope="module")
def members():
    a = tiny_task("translation", seed=2)
    b = tiny_task("translation", seed=7)
    b.preprocessor = a.preprocessor  # (the same vocabularies)
    return a, b


def test_a_step_is_the_mean_of_the_members_log_probabilities(members):
    both = ensemble(members)
    text = tf.constant(LINES)
    context, mask, states = both.decoder_inputs(text)
    token = tf.constant([2, 5, 7])  # (any target ids)
    log_probs, new_states, _ = both.decode_step(token, states, *context)
    expected, expected_states = [], []
    for member in members:
        member_context, _, member_states = member.decoder_inputs(text)
        values, member_new, _ = member.decode_step(token, member_states,
                                                   *member_context)
        expected.append(values.numpy())
        expected_states += [s.numpy() for s in member_new]
    np.testing.assert_allclose(log_probs, np.mean(expected, axis=0),
                               rtol=1e-5, atol=1e-6)
    assert len(new_states) == len(expected_states)
    for got, want in zip(new_states, expected_states):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_one_member_translates_as_the_member(members):
    alone = ensemble(members[:1])
    assert alone.translate_lines(LINES, beam_width=3, n_best=2) == \
        members[0].translate_lines(LINES, beam_width=3, n_best=2)


def test_the_same_model_twice_translates_as_the_model(members):
    twice = ensemble([members[0], members[0]])
    texts, scores = twice.translate_lines(LINES, beam_width=4)
    alone_texts, alone_scores = members[0].translate_lines(LINES,
                                                           beam_width=4)
    assert texts == alone_texts
    np.testing.assert_allclose(scores, alone_scores, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_export_serves_the_ensembles_translations(members, tmp_path):
    both = ensemble(members)
    path = both.export(tmp_path / "export", max_beam_width=8)
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_default"](text=tf.constant(LINES))
    texts, scores = both.translate_lines(LINES, beam_width=5)
    assert [t.decode() for t in served["translation"].numpy()] == \
        [row[0] for row in texts]
    np.testing.assert_allclose(served["score"].numpy(),
                               [row[0] for row in scores], rtol=1e-5,
                               atol=1e-5)
    greedy = loaded.signatures["translate_greedy"](text=tf.constant(LINES))
    texts, _ = both.translate_lines(LINES, beam_width=1)
    assert [t.decode() for t in greedy["translation"].numpy()] == \
        [row[0] for row in texts]


def test_models_that_cannot_decode_as_one_are_refused(members):
    other = tiny_task("ner")
    with pytest.raises(NlpseqError, match="only the translation and "
                       "language-model apps"):
        ensemble([other, other])
    with pytest.raises(NlpseqError, match="no models"):
        ensemble([])
    a = members[0]
    b = tiny_task("translation", seed=3)
    b.config = dict(b.config, max_length=7)
    with pytest.raises(NlpseqError, match="differ in --max-length"):
        ensemble([a, b])


def test_members_with_other_vocabularies_are_refused(members):
    a = members[0]
    b = tiny_task("translation", seed=3)
    b.preprocessor = type(a.preprocessor).from_config(
        dict(a.preprocessor.get_config(), target_vocabulary=list(
            a.target_encoder.vocabulary[2:])[:-1]), b.config)
    with pytest.raises(NlpseqError, match="have different target "
                       "vocabularies"):
        ensemble([a, b])


@pytest.mark.slow
def test_the_command_refuses_different_vocabularies_with_one_line(
        tmp_path, members):
    from nlpseq.registry import APPS

    cls = APPS.get("translation")
    runner = CliRunner()
    folders = []
    for index, vocab in enumerate((200, 30)):
        folder = tmp_path / f"m{index}"
        result = runner.invoke(cli, [
            "translation", "train", "--model-dir", str(folder), "--epochs",
            "1", "--units", "8", "--embedding-dim", "8", "--vocab-size",
            str(vocab)])
        assert result.exit_code == 0, result.output
        folders.append(folder)
    assert cls.load(folders[0]).target_encoder.vocabulary != \
        cls.load(folders[1]).target_encoder.vocabulary
    out = tmp_path / "ensemble"
    result = runner.invoke(cli, [
        "translation", "ensemble", "--model-dir", str(folders[0]),
        "--model-dir", str(folders[1]), "--output", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ensemble: ")
    assert "vocabularies" in lines[0]
    assert not out.exists()
    result = runner.invoke(cli, [
        "translation", "ensemble", "--model-dir", str(folders[0]),
        "--model-dir", str(folders[0]), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "an ensemble of 2 models" in result.output
    assert (out / "1" / "saved_model.pb").is_file()


# -- language models -----------------------------------------------------------

@pytest.fixture(scope="module")
def language_models():
    a = tiny_task("next-word", seed=2)
    b = tiny_task("next-word", seed=7)
    b.preprocessor = a.preprocessor
    return a, b


PROMPTS = ["on sunday i want", "the", ""]


def test_language_model_steps_are_the_mean_of_the_members(language_models):
    both = ensemble(language_models)
    text = tf.constant(PROMPTS)
    logits, states = both.prompt_logits(text)
    expected, expected_states = [], []
    for member in language_models:
        member_logits, member_states = member.prompt_logits(text)
        expected.append(tf.nn.log_softmax(member_logits).numpy())
        expected_states.append(member_states)
    np.testing.assert_allclose(logits, np.mean(expected, axis=0), rtol=1e-5,
                               atol=1e-6)
    tokens = tf.constant([4, 9, 11])
    step, _, _ = both.step_logits(tokens, states)
    members_step = [tf.nn.log_softmax(m.step_logits(tokens, s)[0]).numpy()
                    for m, s in zip(language_models, expected_states)]
    np.testing.assert_allclose(step, np.mean(members_step, axis=0),
                               rtol=1e-5, atol=1e-6)


def test_language_model_ensemble_evaluates_the_mean_of_the_members(
        language_models):
    # the perplexity is the ensemble's (the normalized mean of the members'
    # log-probabilities at every token), not the first member's
    both = ensemble(language_models)
    data = both.read_data(str(type(both).default_valid), "evaluate")
    stream = both.stream(data)[:300]
    data = data.__class__([" ".join(both.encoder.vocabulary[i]
                                    for i in stream)], "test")
    stream = both.stream(data)
    inputs = np.concatenate([[both.end_of_line_id], stream[:-1]])
    mean = np.mean([tf.nn.log_softmax(member.model(
        inputs[None], training=False)[0]).numpy()
        for member in language_models], axis=0)
    losses = -tf.nn.log_softmax(mean).numpy()[np.arange(len(stream)),
                                               stream]
    metrics = both.evaluate_data(data, rows=1, window=64)
    assert metrics["tokens"] == len(stream)
    assert metrics["loss"] == pytest.approx(losses.mean(), rel=1e-4)
    alone = [m.evaluate_data(data, rows=1, window=64)["loss"]
             for m in language_models]
    assert all(abs(loss - metrics["loss"]) > 1e-3 for loss in alone)


def test_one_language_model_predicts_and_generates_as_itself(
        language_models):
    alone = ensemble(language_models[:1])
    member = language_models[0]
    assert alone.generate("on sunday", length=6)[0] == \
        member.generate("on sunday", length=6)[0]
    got, want = alone.predict(PROMPTS[:2]), member.predict(PROMPTS[:2])
    for a, b in zip(got, want):
        assert [t["token"] for t in a["next"]] == \
            [t["token"] for t in b["next"]]
        np.testing.assert_allclose([t["probability"] for t in a["next"]],
                                   [t["probability"] for t in b["next"]],
                                   atol=1e-5)


@pytest.mark.slow
def test_the_language_model_export_generates_as_the_ensemble(
        language_models, tmp_path):
    both = ensemble(language_models)
    path = both.export(tmp_path / "export")
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["generate_greedy"](text=tf.constant(["the"]))
    text, _ = both.generate("the", length=20)
    assert served["text"].numpy()[0].decode() == text
