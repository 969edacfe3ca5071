"""The caps an export puts on one request's work (``export
--max-generate-length``, ``--max-beam-width``): a request over a cap is
refused at once, with INVALID_ARGUMENT naming the cap, and the caps are
recorded in ``assets.extra/nlpseq.json``. Answers within the caps are
compared with the Python API's (``task.generate``, ``translate_lines``),
which no cap binds."""

import json
import time

import pytest
import tensorflow as tf
from click.testing import CliRunner
from nlpseq.apps.next_word import NextWord

from nlpseq.cli import cli
from nlpseq.errors import NlpseqError

LINES = ["on sunday i eat pizza .", "on monday i eat soup .",
         "they won their match .", "he won his match ."] * 6


def generate_body(length, beam_width=1, strategy="greedy"):
    return {"signature_name": "generate", "inputs": {
        "text": ["on sunday"], "length": length, "strategy": strategy,
        "temperature": 1.0, "top_k": 0, "beam_width": beam_width,
        "seed": 1}}


def over(name, value, limit, app, option):
    """The message of a request over a cap, as the server answers it."""
    return (f"{name} {value} is over the limit of this export: {limit} "
            f"(nlpseq {app} export {option} sets it)")


# -- served, with the default caps ---------------------------------------------


def test_a_100000_token_request_is_refused_and_the_next_one_answered(
        serving, exported_models):
    status, body = serving.predict("next-word", generate_body(100000))
    assert status == 400, body
    assert over("length", 100000, "1000 tokens", "next-word",
                "--max-generate-length") in body["error"]
    start = time.monotonic()
    status, body = serving.predict("next-word", generate_body(3))
    elapsed = time.monotonic() - start
    assert status == 200, body
    assert elapsed < 1.0  # (the refused request left no work behind)
    text, tokens = exported_models.tasks["next-word"].generate(
        "on sunday", length=3, strategy="greedy", seed=1)
    assert body["outputs"] == {"text": [text], "tokens": [tokens]}


def test_beam_width_over_the_cap_is_refused_and_at_the_cap_answered(
        serving, exported_models):
    status, body = serving.predict("next-word", generate_body(
        3, beam_width=17, strategy="beam"))
    assert status == 400, body
    assert over("beam_width", 17, 16, "next-word", "--max-beam-width") in \
        body["error"]
    status, body = serving.predict("next-word", generate_body(
        3, beam_width=16, strategy="beam"))
    assert status == 200, body
    text, tokens = exported_models.tasks["next-word"].generate(
        "on sunday", length=3, strategy="beam", beam_width=16)
    assert body["outputs"] == {"text": [text], "tokens": [tokens]}


def test_translate_beam_width_over_the_cap_is_refused_and_at_the_cap_answered(
        serving, exported_models):
    texts = ["Zwei kleine Jungen essen einen Apfel im Schnee."]

    def translate(width):
        return serving.predict("translation", {
            "signature_name": "translate", "inputs": {
                "text": texts, "beam_width": width, "length_penalty": 1.0,
                "n_best": 1}})

    status, body = translate(17)
    assert status == 400, body
    assert over("beam_width", 17, 16, "translation", "--max-beam-width") in \
        body["error"]
    status, body = translate(16)
    assert status == 200, body
    expected, _ = exported_models.tasks["translation"].translate_lines(
        texts, beam_width=16, n_best=1)
    assert body["outputs"]["translations"] == expected


def test_the_caps_are_recorded_in_the_exports_info(exported_models):
    def limits(app):
        path = exported_models.base_paths[app] / "1" / "assets.extra"
        return json.loads((path / "nlpseq.json").read_text())["limits"]

    assert limits("next-word") == {"max_generate_length": 1000,
                                   "max_beam_width": 16}
    assert limits("translation") == {"max_beam_width": 16}
    assert limits("sentiment") == {}


# -- set at export time ----------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("next-word-limits")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(LINES) + "\n")
    result = run("next-word", "train", "--data", corpus, "--model-dir",
                 folder / "model", "--units", "4", "--embedding-dim", "4",
                 "--layers", "1", "--epochs", "1", "--sequence-length", "8",
                 "--batch-size", "4", "--valid-split", "0.3")
    assert result.exit_code == 0, result.output
    return folder / "model"


def test_export_sets_the_length_cap(model_dir, tmp_path):
    result = run("next-word", "export", "--model-dir", model_dir, "--output",
                 tmp_path, "--max-generate-length", "50")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "1" / "assets.extra" / "nlpseq.json")
                      .read_text())
    assert info["limits"] == {"max_generate_length": 50, "max_beam_width": 16}
    generate = tf.saved_model.load(str(tmp_path / "1")).signatures["generate"]

    def call(length):
        return generate(
            text=tf.constant(["on sunday"]), length=tf.constant(length),
            strategy=tf.constant("greedy"), temperature=tf.constant(1.0),
            top_k=tf.constant(0), beam_width=tf.constant(1),
            seed=tf.constant(0))

    with pytest.raises(tf.errors.InvalidArgumentError) as refused:
        call(51)
    assert over("length", 51, "50 tokens", "next-word",
                "--max-generate-length") in refused.value.message
    task = NextWord.load(model_dir)
    tokens = [t.decode() for t in call(50)["tokens"].numpy()[0]]
    assert tokens == task.generate("on sunday", length=50)[1]
    # the Python API is bound by no export's cap, and the task keeps none
    assert len(task.generate("on sunday", length=60)[1]) == 60
    assert task.limits == {"max_generate_length": 1000, "max_beam_width": 16}


@pytest.mark.parametrize("args, message", [
    (["--max-beam-width", "0"], "--max-beam-width: max_beam_width must be "
                                ">= 4, got 0"),
    (["--max-beam-width", "-3"], "--max-beam-width: max_beam_width must be "
                                 ">= 4, got -3"),
    # (generate_beam's beam of 4 and generate_greedy's 20 tokens)
    (["--max-beam-width", "3"], "--max-beam-width: max_beam_width must be "
                                ">= 4, got 3"),
    (["--max-generate-length", "19"], "--max-generate-length: "
                                      "max_generate_length must be >= 20, "
                                      "got 19"),
    (["--format", "onnx", "--max-beam-width", "8"],
     "--max-beam-width: the onnx export runs no decoding, so there is "
     "nothing to cap; leave it out, or give it to a savedmodel export"),
])
def test_bad_caps_are_one_error_and_write_nothing(model_dir, tmp_path, args,
                                                  message):
    result = run("next-word", "export", "--model-dir", model_dir, "--output",
                 tmp_path / "out", *args)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert not (tmp_path / "out").exists()
    assert not (model_dir / "export").exists()


def test_only_the_families_that_declare_caps_take_them(tmp_path):
    from server_helpers import tiny_task

    sentiment = CliRunner().invoke(cli, ["sentiment", "export", "--help"])
    assert sentiment.exit_code == 0 and "--max-" not in sentiment.output
    with pytest.raises(NlpseqError, match="^sentiment export: unknown option "
                       "'max_beam_width'; known options: none$"):
        tiny_task("sentiment").export(tmp_path, max_beam_width=8)
    translation = tiny_task("translation")
    with pytest.raises(NlpseqError, match="^translation export: unknown "
                       "option 'max_generate_length'; known options: "
                       "max_beam_width$"):
        translation.export(tmp_path, max_generate_length=50)
    with pytest.raises(NlpseqError, match="max_beam_width must be >= 5, got "
                       "4$"):  # (translate_beam's beam of 5)
        translation.export(tmp_path, max_beam_width=4)
    assert list(tmp_path.iterdir()) == []
