"""Mixed precision (``--precision``) and XLA (``--jit-compile``).

The layers compute in the policy's compute dtype with float32 weights, and
agree with the float32 layer holding the same weights. Each app trains one
epoch on a part of its validation sample under mixed_bfloat16 (here) and
under mixed_float16 with XLA (``test_precision_xla.py``: its loss scaling
and its bucketed batches in one run); its export takes and returns the
dtypes of a float32 export, and the Python API's predictions.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf
from precision_helpers import (
    app_params,
    check_the_float32_dtypes,
    check_the_global_policy,
    train_and_serve,
)

from nlpseq import layers as nl

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
# The apps under mixed_bfloat16
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=app_params("bfloat16"))
def trained(request, tmp_path_factory):
    return train_and_serve(request.param, "bfloat16", tmp_path_factory)


def test_training_leaves_the_global_policy(trained):
    check_the_global_policy(trained)


def test_export_has_the_float32_dtypes(trained):
    check_the_float32_dtypes(trained)
