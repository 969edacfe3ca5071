"""Mixed precision (``--precision``) and XLA (``--jit-compile``).

The layers compute in the policy's compute dtype with float32 weights, and
agree with the float32 layer holding the same weights. Each app trains one
epoch on a part of its validation sample under mixed_bfloat16, and under
mixed_float16 with XLA (its loss scaling and its bucketed batches in one
run); its export takes and returns the dtypes of a float32 export, and the
Python API's predictions.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import nlpseq
from nlpseq import layers as nl
from nlpseq.registry import APPS

POLICIES = {"mixed_float16": ("float16", 2e-3),
            "mixed_bfloat16": ("bfloat16", 3e-2)}
UNITS, FEATURES = 4, 5
CELLS = {"SimpleRNN": (nl.SimpleRNN, nl.SimpleRNNCell),
         "LSTM": (nl.LSTM, nl.LSTMCell), "GRU": (nl.GRU, nl.GRUCell)}


def inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6, FEATURES)).astype("float32")
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], bool)
    return x, mask


def builders():
    """``(name, build(dtype) -> layer)``: ``dtype`` None is float32."""
    out = []
    for name, (layer, cell) in CELLS.items():
        out += [
            (f"{name}-sequences", lambda d, c=layer: c(
                UNITS, return_sequences=True, dtype=d)),
            (f"{name}-state", lambda d, c=layer: c(
                UNITS, return_state=True, dtype=d)),
            (f"RNN({name}Cell)", lambda d, c=cell: nl.RNN(
                c(UNITS), return_sequences=True, return_state=True,
                dtype=d)),
            (f"RNN({name}Cell(dtype))", lambda d, c=cell: nl.RNN(
                c(UNITS, dtype=d), return_sequences=True)),
            (f"Bidirectional({name}, dtype)", lambda d, c=layer:
                nl.Bidirectional(c(UNITS, return_sequences=True,
                                   return_state=True), dtype=d)),
            (f"Bidirectional({name}(dtype))", lambda d, c=layer:
                nl.Bidirectional(c(UNITS, dtype=d))),
        ]
    return out


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("name, build", builders(),
                         ids=[name for name, _ in builders()])
def test_layer_computes_in_the_policy(name, build, policy):
    """Outputs (and states) in the compute dtype, weights in float32, the
    recurrence itself in half precision, values close to float32's."""
    dtype, tolerance = POLICIES[policy]
    x, mask = inputs()
    reference = build(None)
    expected = keras.tree.flatten(reference(x, mask=mask))
    layer = build(policy)
    layer(x, mask=mask)
    layer.set_weights(reference.get_weights())
    outputs = keras.tree.flatten(layer(x, mask=mask))
    assert [keras.backend.standardize_dtype(o.dtype) for o in outputs] == \
        [dtype] * len(expected)
    assert {v.dtype for v in layer.weights} == {"float32"}
    # every recurrent part computes in the policy (not float32 then cast)
    parts = [layer.cell] if hasattr(layer, "cell") else [
        layer.forward_layer.cell, layer.backward_layer.cell]
    assert {p.compute_dtype for p in parts} == {dtype}
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(np.asarray(tf.cast(got, tf.float32)),
                                   np.asarray(want), atol=tolerance)


def test_crf_and_tied_logits_stay_float32():
    """The CRF's dynamic programs and the tied output logits are float32
    under a mixed policy."""
    crf = nl.CRF(3)
    emissions = tf.cast(tf.random.normal((2, 4, 3)), tf.float16)
    tags = tf.constant([[0, 1, 2, 0], [2, 2, 0, 0]])
    mask = tf.constant([[True] * 4, [True, True, False, False]])
    assert crf.compute_dtype == "float32"
    loss = crf.negative_log_likelihood(emissions, tags, mask)
    assert loss.dtype == tf.float32
    reference = crf.negative_log_likelihood(
        tf.cast(emissions, tf.float32), tags, mask)
    np.testing.assert_allclose(loss.numpy(), reference.numpy(), rtol=1e-6)
    tied = nl.TiedEmbedding(7, 4, dtype="mixed_float16")
    vectors = tied(tf.constant([[1, 2, 3]]))
    assert vectors.dtype == tf.float16
    logits = tied(vectors, reverse=True)
    assert logits.dtype == tf.float32
    np.testing.assert_allclose(
        logits.numpy(), tf.cast(vectors, tf.float32).numpy()
        @ tied.embeddings.numpy().T + tied.bias.numpy(), rtol=1e-5,
        atol=1e-9)


# ---------------------------------------------------------------------------
# The apps
# ---------------------------------------------------------------------------

ROOT = APPS.get("sentiment").default_data.parent
INPUTS = {
    "sentiment": ["a wonderful film", "dull and slow"],
    "topic": ["the team won the match", "the minister spoke"],
    "next-word": ["the", "she went to the"],
    "ner": ["John lives in Paris", "Hello"],
    "translation": ["the cat", "the house is big"],
}
#: Each app's files and how many of their first records a run reads.
SAMPLES = {"sentiment": ("sentiment_valid.csv", 33, 1),
           "topic": ("topic_valid.csv", 33, 1),
           "next-word": ("next_word_valid.txt", 40, 0),
           "ner": ("ner_valid.conll", 24, 0),
           "translation": ("translation_valid.tsv", 40, 0)}
#: The runs: mixed_float16 and mixed_bfloat16 for every app; XLA (which
#: compiles the step again for each batch shape: slow on a CPU) together
#: with mixed_float16 for the sentiment app only.
RUNS = {"bfloat16": {"precision": "mixed_bfloat16"},
        "float16+xla": {"precision": "mixed_float16", "jit_compile": True}}


def small_sample(app, folder):
    """The first records of ``app``'s validation sample, as a file."""
    name, count, header = SAMPLES[app]
    text = (ROOT / name).read_text(encoding="utf-8")
    if name.endswith(".conll"):  # sentences, one blank line apart
        blocks = text.strip().split("\n\n")
        small = "\n\n".join(blocks[:count]) + "\n"
    else:
        small = "\n".join(text.splitlines()[:count + header]) + "\n"
    path = folder / name
    path.write_text(small, encoding="utf-8")
    return str(path)


def float32_outputs(task):
    """The dtypes of a float32 export's ``serving_default`` outputs: the
    task's signature traced over a float32 model with the same
    preprocessor."""
    reference = type(task)(dict(task.config, precision="float32",
                                jit_compile=False), task.preprocessor)
    reference.model = reference.build_in_precision()
    function, signature = reference.serving_functions()["serving_default"]
    traced = tf.function(function).get_concrete_function(*signature)
    return {name: spec.dtype for name, spec in
            traced.structured_outputs.items()}


@pytest.fixture(scope="module", params=[
    (app, run) for app in INPUTS for run in RUNS
    ],
    ids=lambda p: f"{p[0]}-{p[1]}")
def trained(request, tmp_path_factory):
    app, run = request.param
    folder = tmp_path_factory.mktemp(f"{app}-{run}")
    data = small_sample(app, folder)
    task = nlpseq.train(app, model_dir=folder / "model", units=4,
                        embedding_dim=4, batch_size=64, epochs=1, seed=2,
                        data=data, valid=data, **RUNS[run])
    saved = tf.saved_model.load(str(task.export(folder / "export")))
    outputs = saved.signatures["serving_default"](tf.constant(INPUTS[app]))
    return app, run, task, folder, outputs


def test_training_leaves_the_global_policy(trained):
    """The policy applies to the model only: Keras' global policy is
    float32 again after train and load; the folder records the
    precision."""
    app, run, task, folder, _ = trained
    assert keras.config.dtype_policy().name == "float32"
    assert task.model.dtype_policy.name == RUNS[run]["precision"]
    loaded = nlpseq.load(folder / "model")
    assert keras.config.dtype_policy().name == "float32"
    assert loaded.config["precision"] == RUNS[run]["precision"]
    assert loaded.model.dtype_policy.name == RUNS[run]["precision"]
    # XLA compiles the training only: evaluation and prediction after it
    # run without
    assert loaded.config["jit_compile"] == RUNS[run].get("jit_compile",
                                                         False)
    assert task.model.jit_compile is False
    # float16 trains with loss scaling, over the configured optimizer
    optimizer = task.model.optimizer
    if RUNS[run]["precision"] == "mixed_float16":
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert optimizer.inner_optimizer.global_clipnorm == 5.0
    else:
        assert isinstance(optimizer, keras.optimizers.Adam)
    assert math.isfinite(task.metrics.get("loss", 0.0))


def test_export_has_the_float32_dtypes(trained):
    """The SavedModel takes strings and returns what a float32 export
    returns, finite, and what ``nlpseq.load`` predicts."""
    app, run, task, folder, outputs = trained
    got = {name: value.dtype for name, value in outputs.items()}
    assert got == float32_outputs(task)
    for value in outputs.values():
        if value.dtype.is_floating:
            assert np.isfinite(value.numpy()).all()
    records = nlpseq.load(folder / "model").predict(INPUTS[app])
    if app in ("sentiment", "topic"):
        probabilities = outputs["probabilities"].numpy()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0,
                                   atol=1e-5)
        names = [n.decode() for n in outputs["class_names"].numpy()[0]]
        for record, row in zip(records, probabilities):
            np.testing.assert_allclose(
                [record["probabilities"][n] for n in names], row, atol=1e-5)
    elif app == "next-word":
        probabilities = outputs["probabilities"].numpy()
        assert ((probabilities > 0) & (probabilities <= 1)).all()
        for record, tokens, row in zip(records, outputs["tokens"].numpy(),
                                       probabilities):
            best = record["next"][0]
            assert best["token"] == tokens[0].decode()
            assert best["probability"] == pytest.approx(row[0], abs=1e-5)
    elif app == "ner":
        for record, tags in zip(records, outputs["tags"].numpy()):
            assert record["tags"] == [t.decode() for t in tags
                                      if t][:len(record["tags"])]
    else:
        for record, text, score in zip(records,
                                       outputs["translation"].numpy(),
                                       outputs["score"].numpy()):
            assert record["translation"] == text.decode()
            assert record["score"] == pytest.approx(score, abs=1e-3)
