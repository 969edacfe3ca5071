"""Transfer from a language model (``--init-from``), the fine-tuning recipe
(slanted triangular schedule, discriminative rates, gradual unfreezing) and
the sampled softmax of language-model training."""

import csv
import math

import numpy as np
import pytest
from click.testing import CliRunner

import nlpseq
from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.schedules import group_factors, slanted_triangular, unfrozen_groups
from nlpseq.tasks.trainer import Trainer

WORDS = [f"w{i}" for i in range(30)]
LM = dict(layers=2, units=8, embedding_dim=8, sequence_length=10,
          batch_size=16, epochs=1, seed=1, valid_split=0.1,
          split_punctuation=True, strip_html=True)


def markov_lines(count, seed=0, length=12):
    """Lines of a first-order Markov chain over :data:`WORDS`: after word
    ``i`` come words ``i+1``, ``i+2``, ``i+3``, ``i+4`` (mod 30) with
    probabilities 8/15, 4/15, 2/15, 1/15."""
    rng = np.random.default_rng(seed)
    p = np.array([8, 4, 2, 1]) / 15
    lines = []
    for _ in range(count):
        word, line = int(rng.integers(30)), []
        for _ in range(length):
            line.append(WORDS[word])
            word = (word + 1 + int(rng.choice(4, p=p))) % 30
        lines.append(" ".join(line))
    return lines


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("w1 1996 w2\n" * 20 + "\n".join(markov_lines(300))
                    + "\n")
    return path


@pytest.fixture(scope="module")
def language_model(corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm") / "lm"
    nlpseq.train("next-word", data=corpus, model_dir=folder, **LM)
    return folder


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A CSV of texts labelled by whether they hold w0 (a toy task)."""
    path = tmp_path_factory.mktemp("labelled") / "texts.csv"
    lines = markov_lines(120, seed=5, length=8)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i, line in enumerate(lines):
            writer.writerow([line + (" <br /> THE END." if i % 3 else ""),
                             "yes" if i % 2 else "no"])
    return path


def built(app, language_model, data, **settings):
    """A task of ``app`` built from ``language_model`` (weights copied),
    before any training step, as ``train`` builds it."""
    from nlpseq.api import load, task_class
    from nlpseq.transfer import Source

    cls = task_class(app)
    config = cls.effective_config(dict(settings, init_from=str(
        language_model)))
    source = Source(language_model)
    config = source.adopt(config, cls)
    source.load(load)
    task = cls(config)
    task.preprocessor = cls.preprocessor_class.from_language_model(
        source.preprocessor, task.read_data(str(data), "train"), config)
    task.model = task.build_in_precision()
    copied = source.copy_into(task)
    return task, source.task, copied


def outputs_of(model, name, ids):
    import keras

    return keras.Model(model.inputs, model.get_layer(name).output)(
        [ids], training=False)


def ids_for(task):
    # ids from 2 on: no padding (the language model's training model does
    # not mask), no unknown word
    rng = np.random.default_rng(0)
    encoder = task.preprocessor.encoder
    size = len(getattr(encoder, "words", None) or encoder.vocabulary)
    return rng.integers(2, size, size=(3, 9)).astype("int32")


# -- transfer ------------------------------------------------------------------


def test_classifier_encoder_outputs_equal_the_language_models(
        language_model, labelled):
    task, lm, copied = built("sentiment", language_model, labelled,
                             pooling="max", bigram_buckets=0)
    assert copied == ["embedding", "lstm_1", "lstm_2"]
    assert task.config["units"] == 8 and task.config["layers"] == 2
    assert task.preprocessor.encoder.vocabulary == lm.encoder.vocabulary
    ids = ids_for(task)
    for name in ("embedding", "lstm_1", "lstm_2"):
        np.testing.assert_allclose(outputs_of(task.model, name, ids),
                                   outputs_of(lm.model, name, ids),
                                   rtol=1e-6, atol=1e-6)


def test_classifier_reads_text_as_the_language_model_does(
        language_model, labelled):
    task, lm, _ = built("sentiment", language_model, labelled)
    text = ["W3 w4, w5 <br /> w6!"]
    assert task.preprocessor.encoder.tokenize(text).to_list() == \
        lm.encoder.tokenize(text).to_list()
    assert task.preprocessor.tokenization == {
        "lowercase": True, "strip_html": True, "split_punctuation": True}


def test_fewer_layers_take_the_lowest(language_model, labelled):
    task, lm, copied = built("sentiment", language_model, labelled,
                             layers=1)
    assert copied == ["embedding", "lstm_1"]
    ids = ids_for(task)
    np.testing.assert_allclose(outputs_of(task.model, "lstm_1", ids),
                               outputs_of(lm.model, "lstm_1", ids),
                               rtol=1e-6, atol=1e-6)


def test_bidirectional_target_takes_the_forward_direction(
        language_model, labelled):
    task, lm, copied = built("sentiment", language_model, labelled,
                             bidirectional=True, layers=1, pooling="max")
    wrapper = task.model.get_layer("bidirectional_1")
    for mine, theirs in zip(wrapper.forward_layer.weights,
                            lm.model.get_layer("lstm_1").weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    # the backward direction starts fresh: not the language model's
    assert not np.array_equal(wrapper.backward_layer.weights[0].numpy(),
                              lm.model.get_layer("lstm_1").weights[0].numpy())


def test_tagger_takes_the_embedding_rows_of_its_first_layer(
        language_model, tmp_path):
    data = tmp_path / "tags.conll"
    data.write_text("w1 B-X\nw2 O\n\nw3 O\nw4 B-Y\n\n")
    task, lm, copied = built("ner", language_model, data, layers=1,
                             bidirectional=False)
    assert copied == ["word_embedding", "lstm_1"]
    kernel = task.model.get_layer("lstm_1").weights[0].numpy()
    source = lm.model.get_layer("lstm_1").weights[0].numpy()
    assert kernel.shape[0] > source.shape[0]  # (+ character features)
    np.testing.assert_array_equal(kernel[:source.shape[0]], source)
    # without character features the whole encoder gives the LM's outputs
    # for the same words
    task, lm, _ = built("ner", language_model, data, layers=2,
                        bidirectional=False, char_features="none")
    words = task.preprocessor.encoder.words
    known = list(lm.preprocessor.encoder.vocabulary)
    ids = ids_for(task)
    lm_ids = np.vectorize(lambda i: known.index(words[i]))(ids)
    chars = np.zeros((3, 9, 1), "int32")
    import keras

    encoder = keras.Model(task.model.inputs,
                          task.model.get_layer("lstm_2").output)
    np.testing.assert_allclose(encoder([ids, chars], training=False),
                               outputs_of(lm.model, "lstm_2", lm_ids),
                               rtol=1e-6, atol=1e-6)


def test_language_model_continues_from_all_the_weights(language_model,
                                                       corpus):
    task, lm, copied = built("next-word", language_model, corpus)
    assert copied == ["embedding", "lstm_1", "lstm_2"]
    for mine, theirs in zip(task.model.weights, lm.model.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert task.config["split_punctuation"] and task.config["strip_html"]


@pytest.mark.parametrize("settings, message", [
    (dict(cell="gru"), r"--cell gru \(the language model's: lstm\)"),
    (dict(units=16), r"--units 16 \(the language model's: 8\)"),
    (dict(embedding_dim=4), r"--embedding-dim 4 \(the language model's: 8\)"),
    (dict(layers=3), r"--layers 3 \(the language model has 2\)"),
])
def test_different_encoders_are_refused(language_model, labelled, tmp_path,
                                        settings, message):
    with pytest.raises(NlpseqError, match=message):
        nlpseq.train("sentiment", data=labelled, model_dir=tmp_path / "m",
                     init_from=language_model, **settings)
    assert not (tmp_path / "m").exists()


def test_a_char_level_or_other_model_is_refused(corpus, labelled, tmp_path,
                                                language_model):
    import json
    import shutil

    def edited(name, **changes):
        # (a copy of the language model's folder, its config.json changed:
        # the refusals read config.json only)
        folder = tmp_path / name
        shutil.copytree(language_model, folder)
        path = folder / "config.json"
        saved = json.loads(path.read_text())
        saved.update({k: v for k, v in changes.items() if k == "app"})
        saved["config"].update({k: v for k, v in changes.items()
                                if k != "app"})
        path.write_text(json.dumps(saved))
        return folder

    with pytest.raises(NlpseqError, match="a character-level language "
                       "model; --init-from takes a word-level one"):
        nlpseq.train("sentiment", data=labelled, model_dir=tmp_path / "m",
                      init_from=edited("chars", level="char"))
    with pytest.raises(NlpseqError, match="a model of the 'sentiment' app; "
                       "--init-from takes a word-level next-word"):
        nlpseq.train("sentiment", data=labelled, model_dir=tmp_path / "m",
                     init_from=edited("classifier", app="sentiment"))
    with pytest.raises(NlpseqError, match=r"--init-from \S+ and --embeddings "
                       r"\S+ both give the word embeddings"):
        nlpseq.train("ner", model_dir=tmp_path / "n",
                     init_from=language_model, embeddings=str(corpus))
    assert not (tmp_path / "m").exists() and not (tmp_path / "n").exists()


def test_cli_refusal_is_one_line(tmp_path, labelled):
    result = CliRunner().invoke(cli, [
        "sentiment", "train", "--data", str(labelled), "--model-dir",
        str(tmp_path / "m"), "--init-from", str(tmp_path / "missing")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"Error: --init-from {tmp_path / 'missing'}")
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_transferred_classifier_serves_like_any_other(language_model,
                                                      labelled, tmp_path):
    import tensorflow as tf

    task = nlpseq.train("sentiment", data=labelled, model_dir=tmp_path / "m",
                        init_from=language_model, epochs=2, batch_size=16)
    scratch = nlpseq.train("sentiment", data=labelled,
                           model_dir=tmp_path / "s", epochs=1)
    served = tf.saved_model.load(str(task.export(tmp_path / "e")))
    reference = tf.saved_model.load(str(scratch.export(tmp_path / "r")))
    signature = served.signatures["serving_default"]
    assert signature.structured_input_signature == reference.signatures[
        "serving_default"].structured_input_signature
    assert set(signature.structured_outputs) == set(
        reference.signatures["serving_default"].structured_outputs)
    texts = ["w1 w2 w3 <br /> w4", "w0 w9, W10"]
    outputs = signature(text=tf.constant(texts))
    for text, label, row in zip(texts, outputs["label"].numpy(),
                                outputs["probabilities"].numpy()):
        record = task.predict(text)
        assert label.decode() == record["label"]
        np.testing.assert_allclose(
            row, [record["probabilities"][n] for n in task.class_names],
            atol=1e-5)
    # loaded again, it reads text with the language model's tokenization
    loaded = nlpseq.load(tmp_path / "m")
    assert loaded.preprocessor.tokenization == task.preprocessor.tokenization
    assert loaded.predict(texts) == task.predict(texts)


# -- the recipe ----------------------------------------------------------------


def test_slanted_triangular_follows_its_definition():
    total, warmup, ratio = 200, 0.1, 32.0
    cut = 20
    for t in range(total + 1):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / warmup - 1))
        assert slanted_triangular(t, total, warmup, ratio) == pytest.approx(
            (1 + p * (ratio - 1)) / ratio)
    assert slanted_triangular(cut, total, warmup, ratio) == 1.0
    assert slanted_triangular(0, total, warmup, ratio) == 1 / ratio


def test_unfreezing_and_factors_follow_their_definitions():
    assert [unfrozen_groups(t, 4, 3) for t in range(12)] == \
        [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3
    assert unfrozen_groups(0, 4, 0) == 4
    assert group_factors(7, 4, 2.0, 3) == [1.0, 0.5, 0.25, 0.0]
    assert group_factors(7, 4, 1.0, 0) == [1.0] * 4


def test_grouped_adam_is_adam_at_each_groups_rate():
    import keras

    from nlpseq.schedules import GroupedAdam

    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
    grads = [[rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
             for _ in range(4)]
    mine = [keras.Variable(v) for v in start]
    grouped = GroupedAdam(0.01, groups=[[mine[0]], [mine[1]], [mine[2]]])
    grouped.build(mine)
    grouped.factors.assign([1.0, 1 / 2.6, 0.0])
    references = [keras.Variable(v) for v in start]
    adams = [keras.optimizers.Adam(rate) for rate in (0.01, 0.01 / 2.6, 0.0)]
    for step in grads:
        grouped.apply_gradients(zip(step, mine))
        for adam, g, v in zip(adams, step, references):
            adam.apply_gradients([(g, v)])
    for a, b in zip(mine, references):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(mine[2].numpy(), start[2])  # frozen


def test_training_follows_the_recipe_step_by_step(language_model, labelled,
                                                  tmp_path, monkeypatch):
    """Each batch's learning rate is the slanted schedule's, and a layer
    group changes only once unfrozen, at its discriminative rate."""
    import keras

    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            optimizer = self.model.optimizer
            seen.append({
                "rate": float(optimizer.learning_rate.numpy()),
                "factors": optimizer.factors.numpy().tolist(),
                "weights": {n: self.model.get_layer(n).weights[0].numpy()
                            for n in ("classes", "lstm_2", "lstm_1",
                                      "embedding")}})

    callbacks = Trainer.callbacks
    monkeypatch.setattr(Trainer, "callbacks", lambda *a: callbacks(*a) + [
        Recorder()])
    # 120 texts less 12 held out, batches of 27: 4 steps an epoch
    task = nlpseq.train("sentiment", data=labelled, model_dir=tmp_path / "m",
                        init_from=language_model, epochs=3, batch_size=27,
                        learning_rate=0.01, unfreeze_every=0.5,
                        discriminative_lr=2.0, warmup=0.25, lr_ratio=10.0,
                        bigram_buckets=0, valid_split=0.1)
    assert Trainer(task).lr_schedule() == "slanted"
    steps, stage = 12, 2  # (0.5 epoch: 2 steps)
    assert len(seen) == steps
    groups = ["classes", "lstm_2", "lstm_1", "embedding"]
    for t, record in enumerate(seen):
        assert record["rate"] == pytest.approx(
            0.01 * slanted_triangular(t, steps, 0.25, 10.0), rel=1e-6)
        assert record["factors"] == pytest.approx(
            group_factors(t, 4, 2.0, stage))
        if t + 1 < len(seen):
            after = seen[t + 1]["weights"]
            for g, name in enumerate(groups):
                changed = not np.array_equal(after[name],
                                             record["weights"][name])
                assert changed == (g < unfrozen_groups(t, 4, stage)), \
                    (t, name)


def test_recipe_parts_switch_off(language_model, labelled):
    task, _, _ = built("sentiment", language_model, labelled,
                       discriminative_lr=1.0, unfreeze_every=0.0,
                       lr_schedule="step")
    Trainer(task).compile()
    assert Trainer(task).layer_groups() is None and \
        Trainer(task).lr_schedule() == "step"
    assert type(task.model.optimizer).__name__ == "Adam"
    assert Trainer(task).recipe(10) is None
    task, _, _ = built("sentiment", language_model, labelled,
                       unfreeze_every=0.0)
    assert len(Trainer(task).layer_groups()) == 4  # (discriminative rates still)
    recipe = Trainer(task).recipe(10)
    assert recipe.stage_steps == 0 and recipe.factors(0) == pytest.approx(
        [1, 1 / 2.6, 1 / 2.6 ** 2, 1 / 2.6 ** 3])
    from nlpseq.api import task_class

    cls = task_class("sentiment")
    scratch = cls(cls.effective_config({}))
    assert Trainer(scratch).lr_schedule() == "step"


# -- sampled softmax -----------------------------------------------------------


def zipf_lines(count, seed=0, length=20):
    """Lines where after word ``i`` comes ``i + 1`` (mod 30) with
    probability 0.4, else a word drawn from Zipf's law (``w0`` the most
    frequent): the ids of a word-level vocabulary follow frequency, as the
    sampled softmax's log-uniform proposal assumes."""
    rng = np.random.default_rng(seed)
    zipf = 1 / np.arange(1, 31)
    zipf /= zipf.sum()
    lines = []
    for _ in range(count):
        word, line = int(rng.choice(30, p=zipf)), []
        for _ in range(length):
            line.append(WORDS[word])
            word = ((word + 1) % 30 if rng.random() < 0.4
                    else int(rng.choice(30, p=zipf)))
        lines.append(" ".join(line))
    return lines


def top_two(task):
    """For each word, the two next words the model ranks first."""
    import tensorflow as tf

    logits, _ = task.prompt_logits(tf.constant(WORDS))
    vocabulary = task.encoder.vocabulary
    return [[vocabulary[i] for i in np.argsort(-row)[:2]]
            for row in logits.numpy()]


@pytest.fixture(scope="module")
def sampled_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampled")
    data = root / "chain.txt"
    data.write_text("\n".join(zipf_lines(1500, seed=3)) + "\n")
    settings = dict(data=data, layers=1, units=24, embedding_dim=24,
                    sequence_length=20, batch_size=32, epochs=12, patience=0,
                    dropout=0.0, learning_rate=0.01, seed=0, valid_split=0.05)
    full = nlpseq.train("next-word", model_dir=root / "full", **settings)
    sampled = nlpseq.train("next-word", model_dir=root / "sampled",
                           sampled_softmax=16, **settings)
    return full, sampled


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """One epoch of a sampled-softmax language model on the same chain: the
    tests of its structure (not of what it learns) need no more."""
    root = tmp_path_factory.mktemp("sampled-small")
    data = root / "chain.txt"
    data.write_text("\n".join(zipf_lines(300, seed=3)) + "\n")
    return nlpseq.train("next-word", model_dir=root / "sampled", data=data,
                        layers=1, units=24, embedding_dim=24,
                        sequence_length=20, batch_size=32, epochs=1,
                        dropout=0.0, seed=0, valid_split=0.05,
                        sampled_softmax=16)


@pytest.mark.slow  # (two language models of 12 epochs: 25 s on 2 cores)
def test_sampled_softmax_learns_the_full_softmaxs_ranking(sampled_pair):
    """Trained on 16 sampled words of 33, the model ranks the next words
    as the full softmax's does: after w<i>, w<i+1> then w0 (the truth),
    and its exact validation perplexity is within 2 % of the full one's."""
    full, sampled = sampled_pair
    truth = [[WORDS[(i + 1) % 30], "w0"] if i != 29 else ["w0", "w1"]
             for i in range(30)]
    assert top_two(full) == truth
    assert top_two(sampled) == truth
    assert sampled.metrics["perplexity"] == pytest.approx(
        full.metrics["perplexity"], rel=0.02)


def test_sampled_training_step_does_not_compute_every_logit(sampled):
    ids = np.full((2, 5), 3, "int32")
    vocabulary = sampled.encoder.vocabulary_size
    assert sampled.model(ids, training=True).shape[-1] == 24  # (hidden)
    assert sampled.model(ids, training=False).shape[-1] == vocabulary


def test_evaluation_perplexity_is_exact(sampled):
    """Perplexity from the full softmax, whichever loss trained."""
    from nlpseq.data.corpus import Corpus

    task = sampled
    lines = markov_lines(3, seed=9, length=10)
    metrics = task.evaluate_data(Corpus(lines, "test"))
    ids = task.stream(Corpus(lines, "test"))
    inputs = np.concatenate([[task.end_of_line_id], ids[:-1]])[None, :]
    logits = task.model(inputs, training=False).numpy()[0].astype("float64")
    log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True))
                                .sum(-1, keepdims=True)) - logits.max(
        -1, keepdims=True)
    loss = -np.mean(log_probs[np.arange(len(ids)), ids])
    assert metrics["loss"] == pytest.approx(loss, abs=2e-6)
    assert metrics["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
    # Keras' validation loss is the full softmax's too
    x, y = task.encode(Corpus(lines, "test"))
    logits = task.model(x, training=False).numpy().astype("float64")
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    expected = -np.mean(np.take_along_axis(log_probs, y[..., None], -1))
    assert task.model.evaluate(x, y, verbose=0) == pytest.approx(expected,
                                                                 rel=1e-5)


def test_corpus_from_a_table_reads_its_text_column(labelled):
    from nlpseq.data.corpus import read_corpus

    corpus = read_corpus(labelled, seed=4)
    with open(labelled) as handle:
        rows = list(csv.DictReader(handle))
    texts = [" ".join(r["text"].split()) for r in rows]
    # every text once, in a seeded random order
    assert sorted(corpus.lines) == sorted(texts)
    assert corpus.lines != texts
    assert read_corpus(labelled, seed=4).lines == corpus.lines
    assert read_corpus(labelled, seed=5).lines != corpus.lines


def test_sampler_draws_distinct_ids_by_step_at_their_inclusion_rate(
        sampled):
    """The candidates of a step depend on the seed and the step only; they
    are distinct; over many steps each id is drawn at the rate the loss's
    correction assumes (checked by counting)."""
    from nlpseq.models import inclusion, log_uniform

    task = sampled
    model = task.model
    iterations = model.optimizer.iterations
    saved = int(iterations.numpy())
    counts = np.zeros(40)
    try:
        first = None
        for step in range(600):
            iterations.assign(step)
            drawn = model.candidates(40).numpy()
            assert len(set(drawn.tolist())) == len(drawn) == 16
            counts[drawn] += 1
            if step == 7:
                first = drawn
        iterations.assign(7)
        np.testing.assert_array_equal(model.candidates(40).numpy(), first)
    finally:
        iterations.assign(saved)
    expected = inclusion(log_uniform(40), 16)
    assert expected.sum() == pytest.approx(16)
    np.testing.assert_allclose(counts / 600, expected, atol=0.06)
    # frequent ids are drawn more often than rare ones
    assert counts[0] > counts[39]


def test_grouped_adam_holds_no_model_weight(language_model, labelled):
    task, _, _ = built("sentiment", language_model, labelled,
                       bidirectional=True, layers=1)
    Trainer(task).compile()
    optimizer = task.model.optimizer
    optimizer.build(task.model.trainable_variables)
    weights = {id(v) for v in task.model.weights}
    assert optimizer.variables and not [
        v.path for v in optimizer.variables if id(v) in weights]
    # the backward direction of a bidirectional layer starts fresh: it
    # trains with the head
    groups = Trainer(task).layer_groups()
    wrapper = task.model.get_layer("bidirectional_1")
    head = {id(v) for v in groups[0]}
    assert all(id(v) in head
               for v in wrapper.backward_layer.trainable_variables)
    assert {id(v) for v in groups[1]} == {
        id(v) for v in wrapper.forward_layer.trainable_variables}


def test_transferred_tagger_keeps_its_own_words(language_model, tmp_path):
    """The tagger's vocabulary is the training data's words; each that
    the language model knows starts from its vector, the others fresh,
    and the words seen once are the rare ones (--rare-word-dropout)."""
    data = tmp_path / "tags.conll"
    data.write_text("w1 B-X\nzz O\nw7 O\n\nzz O\nw4 B-Y\nqq O\nw1 O\n\n")
    task, lm, copied = built("ner", language_model, data,
                             bidirectional=False)
    assert copied[0] == "word_embedding"
    words = task.preprocessor.encoder.words
    known = list(lm.preprocessor.encoder.vocabulary)
    assert "zz" not in known and "qq" not in known
    # most frequent first, ties by the word; the words seen once last
    assert words == ["", "[UNK]", "w1", "zz", "qq", "w4", "w7"]
    assert task.preprocessor.first_rare_id == 4
    table = task.model.get_layer("word_embedding").weights[0].numpy()
    theirs = lm.model.get_layer("embedding").weights[0].numpy()
    for word in ("w1", "w4", "w7"):
        np.testing.assert_array_equal(table[words.index(word)],
                                      theirs[known.index(word)])
    # the words the language model lacks keep their initial values (not
    # another word's vector)
    for word in ("zz", "qq"):
        row = table[words.index(word)]
        assert not any(np.array_equal(row, r) for r in theirs)
    # the tagger's own schedule by default, not ULMFiT's recipe
    Trainer(task).compile()
    assert Trainer(task).lr_schedule() == "step"
    assert Trainer(task).layer_groups() is None
    assert Trainer(task).recipe(10) is None
    # --vocab-size caps the vocabulary
    task, _, _ = built("ner", language_model, data, bidirectional=False,
                       vocab_size=4)
    assert task.preprocessor.encoder.words == ["", "[UNK]", "w1", "zz"]


def test_transferred_tagger_keeps_digits(language_model, tmp_path):
    data = tmp_path / "tags.conll"
    data.write_text("w1 B-X\n1996 O\n\nw3 O\nw4 B-Y\n\n")
    task, _, _ = built("ner", language_model, data, bidirectional=False)
    encoder = task.preprocessor.encoder
    word_ids, _ = encoder(np.array([["1996", "w1"]], dtype=object))
    assert word_ids.numpy()[0].tolist() == [encoder.words.index("1996"),
                                            encoder.words.index("w1")]
    state = task.preprocessor.get_config()
    assert state["digits_to_zero"] is False
    again = type(task.preprocessor).from_config(state, task.config)
    assert not again.digits_to_zero


@pytest.mark.slow  # (35 s; every app's resume is in test_pipeline.py)
def test_interrupted_transfer_resumes_to_the_same_model(
        language_model, labelled, tmp_path, interrupted_after_first_epoch):
    """The slanted schedule, the group factors and the sampled draws are
    functions of the step: a resumed run reaches the uninterrupted one's
    weights (a classifier with the recipe, and a language model with a
    sampled softmax, continuing another)."""
    cases = [
        ("sentiment", labelled, dict(unfreeze_every=0.5, bigram_buckets=0)),
        ("next-word", labelled, dict(sampled_softmax=5)),
    ]
    for app, data, settings in cases:
        common = dict(data=data, init_from=language_model, epochs=2,
                      batch_size=16, **settings)
        straight = nlpseq.train(app, model_dir=tmp_path / f"{app}-1",
                                **common)
        folder = tmp_path / f"{app}-2"
        with interrupted_after_first_epoch():
            with pytest.raises(NlpseqError, match="interrupted"):
                nlpseq.train(app, model_dir=folder, **common)
        resumed = nlpseq.train(app, model_dir=folder, resume=True)
        for a, b in zip(straight.model.weights, resumed.model.weights):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=f"{app} {a.path}")
