"""nlpseq's layers as Keras drop-ins: conversion both ways (``from_keras``,
``to_keras``), Keras' cells in ``nlpseq.layers.RNN``, the wrappers both
ways, mixed precision, ``stateful`` streaming, and Keras' other arguments
(constraints, ``unroll``, ``use_cudnn``, ``implementation``)."""

import json

import keras
import layer_helpers as H
import numpy as np
import pytest
import tensorflow as tf

from nlpseq import layers as nl
from nlpseq.layers import from_keras, to_keras
from nlpseq.layers.convert import gru_weights

B, T, F, U = H.BATCH, H.TIME, H.FEATURES, H.UNITS

KERAS_KINDS = {
    "SimpleRNN": lambda **kw: keras.layers.SimpleRNN(U, **kw),
    "LSTM": lambda **kw: keras.layers.LSTM(U, **kw),
    "GRU": lambda **kw: keras.layers.GRU(U, **kw),  # reset_after=True
    "GRU-reset-before": lambda **kw: keras.layers.GRU(
        U, reset_after=False, **kw),
    # (Keras' Bidirectional needs a forward template: go_backwards is left
    # out for it)
    "Bidirectional-LSTM": lambda go_backwards, **kw: (
        keras.layers.Bidirectional(keras.layers.LSTM(U, **kw))),
    "Bidirectional-GRU": lambda go_backwards, **kw: (
        keras.layers.Bidirectional(keras.layers.GRU(U, **kw),
                                   merge_mode="sum")),
}
NLPSEQ_CLASS = {"SimpleRNN": nl.SimpleRNN, "LSTM": nl.LSTM, "GRU": nl.GRU,
                "GRU-reset-before": nl.GRU,
                "Bidirectional-LSTM": nl.Bidirectional,
                "Bidirectional-GRU": nl.Bidirectional}
CASES = {
    # mask, go_backwards, return_sequences, return_state
    "mask+sequences+states": (H.MASKS["mixed"], False, True, True),
    "backwards+last+states": (None, True, False, True),
    "mask+backwards+sequences": (H.MASKS["left"], True, True, False),
}


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _outputs_and_gradients(layer, x, mask):
    """The outputs, and the gradients of a fixed linear function of them
    with respect to the inputs and every weight (training mode: nlpseq's
    hand-written backward)."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = keras.tree.flatten(layer(x, mask=mask, training=True))
        loss = tf.add_n([
            tf.reduce_sum(o * tf.sin(tf.reshape(
                tf.range(tf.size(o), dtype=o.dtype), tf.shape(o))))
            for o in outputs])
    gradients = tape.gradient(loss, [x] + layer.trainable_weights)
    return H.to_numpy(outputs), H.to_numpy(gradients)


def _nlpseq_convention(gradients, layer):
    """Weight gradients in the other library's convention (the GRU's
    update-gate columns negated; the map is linear)."""
    grads = list(gradients)
    directions = ([layer.forward_layer, layer.backward_layer]
                  if hasattr(layer, "forward_layer") else [layer])
    position = 1  # after the input's gradient
    converted = [grads[0]]
    for direction in directions:
        count = len(direction.trainable_weights)
        block = grads[position:position + count]
        if isinstance(direction, (keras.layers.GRU, nl.GRU)):
            block = gru_weights(block, direction.cell.units)
        converted += block
        position += count
    return converted


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", list(KERAS_KINDS))
def test_from_keras_and_back_give_keras_outputs_and_gradients(kind, case):
    mask, go_backwards, return_sequences, return_state = CASES[case]
    original = KERAS_KINDS[kind](
        go_backwards=go_backwards, return_sequences=return_sequences,
        return_state=return_state)
    original.build((None, None, F))
    H.randomize_weights(original, seed=7)
    x = H.random_inputs(3)
    expected, expected_grads = _outputs_and_gradients(original, x, mask)

    converted = from_keras(original)
    assert type(converted) is NLPSEQ_CLASS[kind]
    outputs, grads = _outputs_and_gradients(converted, x, mask)
    H.assert_close(outputs, expected)
    H.assert_close(_nlpseq_convention(grads, converted), expected_grads)

    back = to_keras(converted)
    assert type(back) is type(original)
    outputs, grads = _outputs_and_gradients(back, x, mask)
    H.assert_close(outputs, expected)
    H.assert_close(grads, expected_grads)
    for w1, w2 in zip(back.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(w1, w2)


def test_gru_conversion_keeps_the_form_and_negates_the_update_gate():
    keras_gru = keras.layers.GRU(U)
    keras_gru.build((None, None, F))
    H.randomize_weights(keras_gru, seed=1)
    gru = from_keras(keras_gru)
    assert gru.cell.reset_after and gru.cell.reset_gate
    for ours, theirs in zip(gru.get_weights(), keras_gru.get_weights()):
        np.testing.assert_array_equal(ours[..., :U], -theirs[..., :U])
        np.testing.assert_array_equal(ours[..., U:], theirs[..., U:])
    # nlpseq's default form stays the textbook one
    assert not nl.GRU(U).cell.reset_after
    assert not to_keras(nl.GRU(U)).cell.reset_after
    with pytest.raises(ValueError, match="reset_gate"):
        to_keras(nl.GRU(U, reset_gate=False))


def test_unbuilt_layers_convert_their_configuration():
    keras_lstm = keras.layers.LSTM(
        4, return_sequences=True, stateful=True, unroll=True,
        use_cudnn=False, recurrent_dropout=0.25, kernel_constraint="non_neg",
        name="tagger_lstm")
    lstm = from_keras(keras_lstm)
    assert not lstm.built
    assert (lstm.name, lstm.units, lstm.stateful, lstm.unroll,
            lstm.use_cudnn, lstm.recurrent_dropout) == (
        "tagger_lstm", 4, True, True, False, 0.25)
    assert isinstance(lstm.kernel_constraint, keras.constraints.NonNeg)
    back = to_keras(lstm)
    assert back.use_cudnn is False and back.stateful and back.unroll


@pytest.mark.parametrize("sequential", [False, True])
def test_models_convert_every_recurrent_layer(sequential):
    vocab = 12
    if sequential:
        model = keras.Sequential([
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab, F, mask_zero=True),
            keras.layers.Bidirectional(
                keras.layers.GRU(U, return_sequences=True)),
            keras.layers.LSTM(U),
            keras.layers.Dense(2),
        ])
    else:
        inputs = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(vocab, F, mask_zero=True)(inputs)
        x = keras.layers.Bidirectional(
            keras.layers.GRU(U, return_sequences=True))(x)
        x = keras.layers.SimpleRNN(U, return_sequences=True)(x)
        x = keras.layers.LSTM(U, go_backwards=True)(x)
        model = keras.Model(inputs, keras.layers.Dense(2)(x))
    for i, layer in enumerate(model.layers):
        if layer.weights:
            H.randomize_weights(layer, seed=40 + i, scale=0.8)
    ids = np.random.default_rng(4).integers(1, vocab, (B, T))
    ids[~H.MASKS["mixed"]] = 0
    expected = H.to_numpy(model(ids))

    converted = from_keras(model)
    kinds = {type(layer) for layer in converted.layers}
    assert nl.Bidirectional in kinds and nl.LSTM in kinds
    assert not any(type(layer).__module__.startswith("keras")
                   and "rnn" in type(layer).__module__
                   for layer in converted.layers)
    H.assert_close(converted(ids), expected)
    back = to_keras(converted)
    assert {type(layer) for layer in back.layers} == {
        type(layer) for layer in model.layers}
    H.assert_close(back(ids), expected)


# ---------------------------------------------------------------------------
# Keras' cells in nlpseq.layers.RNN
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make_cells", [
    lambda: keras.layers.LSTMCell(U),
    lambda: [keras.layers.GRUCell(U), nl.LSTMCell(3)],
], ids=["keras-cell", "stack-of-keras-and-nlpseq-cells"])
def test_rnn_runs_any_keras_cell_as_keras_does(make_cells):
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=True)
    ours = nl.RNN(make_cells(), **kwargs)
    theirs = keras.layers.RNN(make_cells(), **kwargs)
    for layer in (ours, theirs):
        layer.build((None, None, F))
    assert not ours.fast
    H.randomize_weights(theirs, seed=5)
    ours.set_weights(theirs.get_weights())
    x, mask = H.random_inputs(5), H.MASKS["mixed"]
    expected, expected_grads = _outputs_and_gradients(theirs, x, mask)
    outputs, grads = _outputs_and_gradients(ours, x, mask)
    H.assert_close(keras.tree.flatten(outputs), keras.tree.flatten(expected))
    H.assert_close(grads, expected_grads)
    clone = nl.RNN.from_config(ours.get_config())
    clone.build((None, None, F))
    clone.set_weights(ours.get_weights())
    H.assert_close(keras.tree.flatten(H.to_numpy(clone(x, mask=mask))),
                   keras.tree.flatten(expected))


def test_nlpseq_cells_keep_the_fast_loop():
    for cell in (nl.SimpleRNNCell(U), nl.LSTMCell(U), nl.GRUCell(U)):
        assert nl.RNN(cell).fast


# ---------------------------------------------------------------------------
# Wrappers both ways, mixed precision
# ---------------------------------------------------------------------------


def test_keras_bidirectional_wraps_nlpseq_layers():
    x, mask = H.random_inputs(6), H.MASKS["right"]
    theirs = keras.layers.Bidirectional(nl.LSTM(8, return_sequences=True))
    ours = nl.Bidirectional(nl.LSTM(8, return_sequences=True))
    for layer in (theirs, ours):
        layer.build((None, None, F))
    H.randomize_weights(ours, seed=6)
    theirs.set_weights(ours.get_weights())
    assert isinstance(theirs.forward_layer, nl.LSTM)
    H.assert_close(theirs(x, mask=mask), ours(x, mask=mask))


def test_nlpseq_bidirectional_wraps_keras_layers():
    x, mask = H.random_inputs(7), H.MASKS["left"]
    ours = nl.Bidirectional(keras.layers.GRU(U, return_sequences=True,
                                             use_cudnn=False))
    theirs = keras.layers.Bidirectional(
        keras.layers.GRU(U, return_sequences=True))
    for layer in (theirs, ours):
        layer.build((None, None, F))
    assert isinstance(ours.forward_layer, keras.layers.GRU)
    assert ours.backward_layer.use_cudnn is False
    H.randomize_weights(theirs, seed=8)
    ours.set_weights(theirs.get_weights())
    H.assert_close(ours(x, mask=mask), theirs(x, mask=mask))
    clone = nl.Bidirectional.from_config(ours.get_config())
    assert isinstance(clone.forward_layer, keras.layers.GRU)


def test_bidirectional_weights_argument():
    template = nl.Bidirectional(nl.GRU(U))
    template.build((None, None, F))
    H.randomize_weights(template, seed=9)
    layer = nl.Bidirectional(nl.GRU(U), weights=template.get_weights())
    x = H.random_inputs(9)
    H.assert_close(layer(x), template(x))


def test_mixed_precision_wrappers_and_cells():
    x = H.random_inputs(10)
    bidi = nl.Bidirectional(nl.LSTM(4), dtype="mixed_float16")
    assert bidi(x).dtype == "float16"
    assert all(w.dtype == "float32" for w in bidi.weights)
    rnn = nl.RNN(nl.LSTMCell(4), dtype="mixed_float16")
    out = rnn(x)
    assert out.dtype == "float16"
    plain = nl.RNN(nl.LSTMCell(4))
    plain.build((None, None, F))
    plain.set_weights(rnn.get_weights())
    np.testing.assert_allclose(H.to_numpy(out).astype("float32"),
                               H.to_numpy(plain(x)), atol=2e-3)


# ---------------------------------------------------------------------------
# stateful: streaming in chunks
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer_class", [nl.SimpleRNN, nl.LSTM, nl.GRU])
def test_stateful_chunks_equal_the_whole_sequence(layer_class):
    steps = 12
    x = H.random_inputs(11, (2, steps, F))
    whole = layer_class(U, return_sequences=True, return_state=True)
    whole.build((2, None, F))
    H.randomize_weights(whole, seed=11)
    expected = H.to_numpy(whole(x))

    streaming = layer_class(U, return_sequences=True, return_state=True,
                            stateful=True)
    streaming.build((2, None, F))
    streaming.set_weights(whole.get_weights())
    assert len(streaming.weights) == len(whole.weights)  # states: no weights
    pieces, start = [], 0
    for size in (5, 4, 3):  # chunks of different lengths
        pieces.append(H.to_numpy(streaming(x[:, start:start + size])))
        start += size
    H.assert_close(np.concatenate([p[0] for p in pieces], axis=1),
                   expected[0])
    H.assert_close(pieces[-1][1:], expected[1:])  # final states
    H.assert_close([v.value for v in streaming.states], expected[1:])

    # reset_state starts again from zeros; reset_states is its alias
    streaming.reset_states()
    H.assert_close(streaming(x[:, :5])[0], expected[0][:, :5])
    streaming.reset_state()
    H.assert_close(streaming(x)[0], expected[0])


def test_stateful_errors_in_keras_wording():
    with pytest.raises(ValueError, match="batch size must be static"):
        nl.LSTM(U, stateful=True)(keras.Input((T, F)))
    layer = nl.LSTM(U, stateful=True)
    layer(H.random_inputs(0))
    with pytest.raises(ValueError, match="batch size"):
        layer(H.random_inputs(0, (B + 1, T, F)))


# ---------------------------------------------------------------------------
# Keras' other arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer_class", [nl.SimpleRNN, nl.LSTM, nl.GRU])
def test_unroll_gives_the_same_outputs_and_gradients(layer_class):
    x, mask = H.random_inputs(12), H.MASKS["mixed"]
    looped = layer_class(U, return_sequences=True, return_state=True)
    unrolled = layer_class(U, return_sequences=True, return_state=True,
                           unroll=True)
    for layer in (looped, unrolled):
        layer.build((None, T, F))
    H.randomize_weights(looped, seed=12)
    unrolled.set_weights(looped.get_weights())
    expected = _outputs_and_gradients(looped, x, mask)
    H.assert_close(_outputs_and_gradients(unrolled, x, mask), expected)
    traced = tf.function(unrolled, input_signature=[
        tf.TensorSpec((None, None, F))])
    with pytest.raises(ValueError, match="unroll"):
        traced(x)


def test_constraints_are_applied_by_the_optimizer():
    layer = nl.LSTM(U, kernel_constraint="non_neg",
                    recurrent_constraint=keras.constraints.MaxNorm(0.5),
                    bias_constraint="non_neg")
    layer.build((None, None, F))
    H.randomize_weights(layer, seed=13)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(H.random_inputs(13), training=True))
    grads = tape.gradient(loss, layer.trainable_weights)
    keras.optimizers.SGD(0.1).apply_gradients(
        zip(grads, layer.trainable_weights))
    kernel, recurrent, bias = layer.get_weights()
    assert kernel.min() >= 0 and bias.min() >= 0
    assert np.sqrt((recurrent ** 2).sum(axis=0)).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("layer_class", [nl.SimpleRNN, nl.LSTM, nl.GRU])
def test_config_round_trips_keras_arguments(layer_class):
    kwargs = dict(stateful=True, unroll=True, kernel_constraint="non_neg",
                  recurrent_constraint="unit_norm", bias_constraint="non_neg",
                  implementation=1, activity_regularizer="l2")
    if layer_class is not nl.SimpleRNN:
        kwargs["use_cudnn"] = False
    layer = layer_class(U, **kwargs)
    config = json.loads(json.dumps(layer.get_config()))
    clone = layer_class.from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    for key in ("stateful", "unroll", "implementation", "use_cudnn"):
        if key in kwargs:
            assert getattr(clone, key) == kwargs[key], key
    assert isinstance(clone.recurrent_constraint, keras.constraints.UnitNorm)
    assert not hasattr(nl.SimpleRNN(U), "use_cudnn")  # as in Keras


@pytest.mark.parametrize("layer_class, kwargs, name", [
    (nl.LSTM, {"use_cudnn": "yes"}, "use_cudnn"),
    (nl.GRU, {"implementation": 3}, "implementation"),
    (nl.SimpleRNN, {"use_cudnn": True}, "use_cudnn"),  # unknown, as in Keras
])
def test_bad_values_are_named(layer_class, kwargs, name):
    with pytest.raises(ValueError) as info:
        layer_class(U, **kwargs)
    H.assert_message_names_argument(str(info.value), name)


def test_keras_rnn_runs_nlpseq_cells():
    # (what already worked keeps working: Keras' loop over nlpseq's cells,
    # one or stacked)
    x, mask = H.random_inputs(14), H.MASKS["mixed"]
    for make in (lambda: nl.LSTMCell(U),
                 lambda: [nl.GRUCell(U), nl.SimpleRNNCell(3)]):
        theirs = keras.layers.RNN(make(), return_sequences=True)
        ours = nl.RNN(make(), return_sequences=True)
        for layer in (theirs, ours):
            layer.build((None, None, F))
        H.randomize_weights(ours, seed=14)
        theirs.set_weights(ours.get_weights())
        H.assert_close(theirs(x, mask=mask), ours(x, mask=mask))


def test_keras_bidirectional_of_nlpseq_layer_saves_and_loads(tmp_path):
    inputs = keras.Input((None, F))
    outputs = keras.layers.Bidirectional(
        nl.GRU(U, return_sequences=True, reset_after=True))(inputs)
    model = keras.Model(inputs, outputs)
    H.randomize_weights(model, seed=15)
    x = H.random_inputs(15)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[1].forward_layer, nl.GRU)
    H.assert_close(loaded(x), model(x))


def test_stateful_stack_of_keras_cells_matches_keras():
    def make(layer_class):
        return layer_class([keras.layers.LSTMCell(4), keras.layers.GRUCell(3)],
                           stateful=True, return_state=True)

    ours, theirs = make(nl.RNN), make(keras.layers.RNN)
    for layer in (ours, theirs):
        layer.build((B, T, F))
    H.randomize_weights(theirs, seed=16)
    ours.set_weights(theirs.get_weights())
    x = H.random_inputs(16)
    for _ in range(2):  # the second call starts from the carried states
        H.assert_close(keras.tree.flatten(H.to_numpy(ours(x))),
                       keras.tree.flatten(H.to_numpy(theirs(x))))


@pytest.mark.parametrize("layer_class", [nl.LSTM, nl.GRU])
def test_implementation_chooses_per_gate_or_fused_products(layer_class):
    """Keras' meaning: 1, a product per gate; 2, one fused product; by
    default nlpseq chooses by size. Both compute the same outputs."""
    assert layer_class(32, implementation=1).cell.per_gate_products
    assert not layer_class(256, implementation=2).cell.per_gate_products
    assert not layer_class(32).cell.per_gate_products
    assert layer_class(256).cell.per_gate_products
    assert not nl.SimpleRNN(256, implementation=1).cell.per_gate_products
    x = np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32")
    per_gate, fused = (layer_class(8, implementation=implementation,
                                   return_sequences=True)
                       for implementation in (1, 2))
    per_gate.build(x.shape)
    fused.build(x.shape)
    fused.set_weights(per_gate.get_weights())
    np.testing.assert_allclose(np.asarray(per_gate(x)), np.asarray(fused(x)),
                               rtol=0, atol=1e-6)


def _unregistered_cell_class():
    """A user's own cell class that Keras cannot find by itself: neither
    registered nor reachable from its module (defined in a function)."""

    class OneStateCell(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = self.state_size = units

        def build(self, shape):
            self.kernel = self.add_weight((shape[-1], self.units))

        def call(self, inputs, states):
            output = keras.ops.matmul(inputs, self.kernel) + states[0]
            return output, [output]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return OneStateCell


@pytest.mark.parametrize("wrapped", [False, True], ids=["RNN",
                                                        "Bidirectional"])
@pytest.mark.parametrize("how", ["from_config", "deserialize"])
def test_custom_objects_reach_the_cell_as_in_keras(wrapped, how):
    """``from_config(config, custom_objects=...)`` and
    ``deserialize_keras_object(..., custom_objects=...)`` hand the custom
    objects on to the cell, as Keras' own ``RNN`` does; without them, both
    fail alike. (nlpseq's ``Bidirectional`` hands them on to both
    directions; Keras' own, in Keras 3.15, re-creates its backward layer
    without them and fails, so it is not compared.)"""
    cell_class = _unregistered_cell_class()
    custom = {"OneStateCell": cell_class}
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    pairs = [(nl.RNN, nl.Bidirectional)]
    if not wrapped:
        pairs.insert(0, (keras.layers.RNN, keras.layers.Bidirectional))
    for rnn, bidirectional in pairs:
        layer = rnn(cell_class(5))
        if wrapped:
            layer = bidirectional(layer)
        expected = layer(x)
        if how == "from_config":
            revived = type(layer).from_config(layer.get_config(),
                                              custom_objects=custom)
        else:
            revived = keras.saving.deserialize_keras_object(
                keras.saving.serialize_keras_object(layer),
                custom_objects=custom)
        assert type(revived) is type(layer)
        revived(x)
        revived.set_weights(layer.get_weights())
        np.testing.assert_allclose(revived(x), expected, rtol=1e-6)
        with pytest.raises(TypeError, match="OneStateCell"):
            type(layer).from_config(layer.get_config())
