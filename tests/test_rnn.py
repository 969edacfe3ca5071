"""The time loop (``RNN``) and what every recurrent layer shares: stacking with
masks, ``jit_compile``, saving, exporting, argument checks."""

import json

import keras
import layer_helpers as H
import numpy as np
import pytest
import tensorflow as tf

from nlpseq import layers as nl

B, T, F, U = H.BATCH, H.TIME, H.FEATURES, H.UNITS
VOCAB = 12

CELL_LAYERS = {
    "SimpleRNN": (nl.SimpleRNN, nl.SimpleRNNCell),
    "LSTM": (nl.LSTM, nl.LSTMCell),
    "GRU": (nl.GRU, nl.GRUCell),
}


def padded_ids(seed=0, batch=B, steps=T, mask=None):
    """Token ids with 0 as padding: rows right- and left-padded."""
    mask = H.MASKS["mixed"] if mask is None else mask
    ids = np.random.default_rng(seed).integers(1, VOCAB, (batch, steps))
    ids[~mask] = 0
    return ids.astype("int32")


def embedding_values(embedding, ids):
    return H.to_numpy(embedding.embeddings).astype(np.float64)[ids]


# ---------------------------------------------------------------------------
# RNN(cell) is the same loop as the thin layers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CELL_LAYERS))
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("project_per_step", [False, True])
def test_rnn_of_cell_matches_reference(name, go_backwards,
                                       zero_output_for_mask,
                                       project_per_step):
    # (inference projects the inputs before the loop or inside it, as the
    # cell says; both ways for every cell)
    cell = CELL_LAYERS[name][1](U)
    cell.project_per_step = project_per_step
    cell.PROJECT_PER_STEP_FROM_BATCH = 1  # (a batch of 2 projects per step)
    layer = nl.RNN(cell, return_sequences=True, return_state=True,
                   go_backwards=go_backwards,
                   zero_output_for_mask=zero_output_for_mask)
    layer.build((None, None, F))
    H.randomize_weights(layer, seed=2)
    x, mask = H.random_inputs(2), H.MASKS["mixed"]
    expected = H.reference_rnn(
        H.reference_cell(layer), x, mask=mask, go_backwards=go_backwards,
        return_sequences=True, return_state=True,
        zero_output_for_mask=zero_output_for_mask)
    H.assert_close(layer(x, mask=mask), expected)
    if zero_output_for_mask:
        sequences = H.to_numpy(layer(x, mask=mask)[0])
        flipped = mask[:, ::-1] if go_backwards else mask
        np.testing.assert_array_equal(sequences[~flipped], 0.0)



def test_gru_projects_per_step_from_its_batch_threshold(monkeypatch):
    """In inference the GRU projects each step's input inside the loop
    from ``PROJECT_PER_STEP_FROM_BATCH`` rows on and before the loop below
    it; a batch known only when the graph runs chooses then. Every way
    gives the reference's outputs."""
    layer = nl.GRU(U, return_sequences=True)
    layer.build((None, None, F))
    H.randomize_weights(layer, seed=4)
    cell = layer.cell
    monkeypatch.setattr(cell, "PROJECT_PER_STEP_FROM_BATCH", 3)
    ranks = []
    project = cell.project_inputs

    def recorded(inputs):
        ranks.append(len(inputs.shape))  # 2: one step; 3: every step
        return project(inputs)

    monkeypatch.setattr(cell, "project_inputs", recorded)
    rng = np.random.default_rng(7)
    for batch, rank in ((2, 3), (3, 2), (5, 2)):
        x = rng.normal(size=(batch, T, F)).astype("float32")
        mask = np.arange(T)[None] < rng.integers(1, T + 1, (batch, 1))
        ranks.clear()
        out = layer(x, mask=mask)
        assert set(ranks) == {rank}
        H.assert_close(out, H.reference_rnn(
            H.reference_cell(layer), x, mask=mask, return_sequences=True))
        unknown = tf.function(lambda x, m: layer(x, mask=m),
                              input_signature=[
                                  tf.TensorSpec((None, None, F)),
                                  tf.TensorSpec((None, None), tf.bool)])
        H.assert_close(unknown(x, mask), H.reference_rnn(
            H.reference_cell(layer), x, mask=mask, return_sequences=True))

def test_rnn_basics():
    H.check_layer(
        lambda: nl.RNN(nl.LSTMCell(U), return_sequences=True,
                       return_state=True),
        (B, T, F), [(B, T, U), (B, U), (B, U)], expected_num_weights=3)


@pytest.mark.parametrize("not_a_cell", [keras.layers.Dense(3), "lstm", None])
def test_rnn_rejects_what_is_not_a_cell(not_a_cell):
    # (any Keras cell is accepted: tests/test_keras_interop.py)
    with pytest.raises(ValueError) as info:
        nl.RNN(not_a_cell)
    H.assert_message_names_argument(str(info.value), "cell")


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_initial_state_of_wrong_length(name):
    layer = CELL_LAYERS[name][0](U)
    x = H.random_inputs(0)
    layer(x)
    n_states = len(layer.cell.state_size)
    state = np.zeros((B, U), "float32")
    for count in (n_states - 1, n_states + 1):
        if count == 0:
            continue
        with pytest.raises(ValueError, match="initial_state"):
            layer(x, initial_state=[state] * count)


def test_projection_per_step_is_for_inference_only():
    cell = nl.GRUCell(U)
    cell.build((None, F))
    projected = tf.zeros((T, B, F))
    with pytest.raises(ValueError, match="project"):
        nl.rnn.time_loop(cell, projected, cell.get_initial_state(B),
                         manual_gradient=True, project=True)


@pytest.mark.parametrize("cell_class, kwargs, units, per_gate, expected", [
    (nl.LSTMCell, {}, 128, True, [(128, 128)] * 4),
    (nl.LSTMCell, {}, 64, False, [(64, 256)]),
    (nl.GRUCell, {}, 128, True, [(128, 128)] * 3),
    (nl.GRUCell, {}, 64, False, [(64, 128), (64, 64)]),  # z and r, then h~
    (nl.GRUCell, {"reset_after": True}, 128, True,
     [(128, 128)] * 3 + [(128,)]),  # then b'_h
    (nl.GRUCell, {"reset_after": True}, 64, False, [(64, 192), (64,)]),
    (nl.GRUCell, {"reset_gate": False}, 128, True, [(128, 128)] * 2),
    (nl.SimpleRNNCell, {}, 256, False, [(256, 256)]),
])
def test_recurrent_products_per_gate_from_128_units(cell_class, kwargs,
                                                    units, per_gate,
                                                    expected):
    cell = cell_class(units, **kwargs)
    cell.build((None, F))
    assert cell.per_gate_products == per_gate
    blocks = cell.recurrent_weights()
    assert [tuple(w.shape) for w in blocks] == expected
    # the blocks are the recurrent kernel's columns, in the fused order
    columns = [H.to_numpy(w) for w in blocks if len(w.shape) == 2]
    np.testing.assert_array_equal(np.concatenate(columns, axis=1),
                                  H.to_numpy(cell.recurrent_kernel))


@pytest.mark.parametrize("cell_class", [nl.LSTMCell, nl.GRUCell])
def test_per_gate_products_equal_the_fused_product(cell_class):
    """A 128-unit layer (per-gate products) and the same layer with one
    fused product give the same outputs and gradients."""
    x = tf.constant(np.random.default_rng(0).standard_normal(
        (3, 5, 4)).astype("float32"))

    def run(layer):
        with tf.GradientTape() as tape:
            out = layer(x, training=True)
            loss = tf.reduce_sum(out * tf.sin(tf.range(128.0)))
        return [out] + tape.gradient(loss, layer.trainable_weights)

    per_gate = nl.RNN(cell_class(128), return_sequences=True)
    fused = nl.RNN(cell_class(128), return_sequences=True)
    per_gate(x)
    fused(x)
    fused.set_weights(per_gate.get_weights())
    fused.cell.PER_GATE_FROM_UNITS = 129
    assert per_gate.cell.per_gate_products
    assert not fused.cell.per_gate_products
    for a, b in zip(run(per_gate), run(fused)):
        np.testing.assert_allclose(H.to_numpy(a), H.to_numpy(b), atol=1e-5)


@pytest.mark.parametrize("name", list(CELL_LAYERS))
@pytest.mark.parametrize("steps", [1, 2, 5, 8, 11])
def test_manual_gradients_equal_automatic_ones_for_any_length(name, steps):
    """The hand-written backward (``training=True``) runs the steps in two
    parts (the earlier one empty for a single step), and the simple RNN's
    loops four steps per iteration and the rest one at a time; whatever the
    sequence's length, it gives TensorFlow's gradients of the inference
    loop (``training=False``). With a mask, an initial state, and
    a time dimension unknown when the function is traced."""
    layer = CELL_LAYERS[name][0](U, return_sequences=True)
    rng = np.random.default_rng(steps)
    x = tf.constant(rng.standard_normal((B, steps, F)).astype("float32"))
    mask = np.ones((B, steps), bool)
    mask[0, -1] = False  # right padding
    mask[-1, 0] = False  # left padding
    mask = tf.constant(mask)
    states = [tf.constant(rng.standard_normal((B, U)).astype("float32"))
              for _ in layer.cell.state_names]
    layer(x)

    @tf.function(input_signature=[tf.TensorSpec((None, None, F)),
                                  tf.TensorSpec((None, None), tf.bool),
                                  tf.TensorSpec((), tf.bool)])
    def gradients(x, mask, training):
        with tf.GradientTape() as tape:
            tape.watch([x] + states)
            out = tf.cond(
                training,
                lambda: layer(x, mask=mask, initial_state=states,
                              training=True),
                lambda: layer(x, mask=mask, initial_state=states))
            loss = tf.reduce_sum(out * tf.cos(out))
        return tape.gradient(loss, layer.trainable_weights + [x] + states)

    manual = gradients(x, mask, tf.constant(True))
    automatic = gradients(x, mask, tf.constant(False))
    for a, b in zip(manual, automatic):
        np.testing.assert_allclose(H.to_numpy(a), H.to_numpy(b), atol=1e-5)


def test_rank_two_inputs_are_rejected():
    with pytest.raises(ValueError):
        nl.GRU(U)(np.zeros((B, F), "float32"))


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_compute_mask(return_sequences, go_backwards):
    layer = nl.LSTM(U, return_sequences=return_sequences,
                    go_backwards=go_backwards)
    x, mask = H.random_inputs(0), H.MASKS["mixed"]
    out_mask = layer.compute_mask(x, mask)
    if not return_sequences:
        assert out_mask is None
    else:
        # go_backwards emits the steps in reverse, and so the mask
        np.testing.assert_array_equal(
            H.to_numpy(out_mask), mask[:, ::-1] if go_backwards else mask)


# ---------------------------------------------------------------------------
# Stacking with a mask from Embedding(mask_zero=True)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("first_backwards", [False, True])
@pytest.mark.parametrize("first, second", [
    ("LSTM", "GRU"), ("GRU", "SimpleRNN"), ("SimpleRNN", "LSTM")])
def test_stacked_layers_propagate_the_mask(first, second, first_backwards):
    ids = padded_ids(1)
    mask = ids != 0
    inputs = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(VOCAB, F, mask_zero=True)
    lower = CELL_LAYERS[first][0](U, return_sequences=True,
                                  go_backwards=first_backwards)
    upper = CELL_LAYERS[second][0](3, return_sequences=True,
                                   return_state=True)
    model = keras.Model(inputs, upper(lower(embedding(inputs))))
    for i, layer in enumerate((embedding, lower, upper)):
        H.randomize_weights(layer, seed=10 + i, scale=0.8)

    x = embedding_values(embedding, ids)
    hidden = H.reference_rnn(H.reference_cell(lower), x, mask=mask,
                             go_backwards=first_backwards,
                             return_sequences=True)
    # the lower layer's outputs come in processing order, so does the mask
    upper_mask = mask[:, ::-1] if first_backwards else mask
    expected = H.reference_rnn(H.reference_cell(upper), hidden,
                               mask=upper_mask, return_sequences=True,
                               return_state=True)
    got = model(ids)
    H.assert_close(got, expected)

    # Without the mask in the upper layer the result would differ: the test
    # sees whether the mask propagated.
    unmasked = H.reference_rnn(H.reference_cell(upper), hidden,
                               return_sequences=True, return_state=True)
    assert not np.allclose(unmasked[1], expected[1], atol=1e-4)


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_encoder_states_as_symbolic_initial_state(name):
    # The encoder-decoder wiring of the seq2seq pipeline: the encoder's final
    # states start the decoder, inside a functional model.
    layer_class = CELL_LAYERS[name][0]
    enc_in, dec_in = keras.Input((None, F)), keras.Input((None, F))
    encoder = layer_class(U, return_state=True)
    decoder = layer_class(U, return_sequences=True)
    states = encoder(enc_in)[1:]
    model = keras.Model([enc_in, dec_in], decoder(dec_in,
                                                  initial_state=states))
    H.randomize_weights(encoder, seed=30)
    H.randomize_weights(decoder, seed=31)
    source, target = H.random_inputs(30), H.random_inputs(31)[:, :4]
    enc = H.reference_rnn(H.reference_cell(encoder), source,
                          return_state=True)
    expected = H.reference_rnn(H.reference_cell(decoder), target,
                               initial_state=enc[1:], return_sequences=True)
    H.assert_close(model([source, target]), expected)


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_second_order_gradients(name):
    # d/dW of |dL/dx|^2 (a gradient penalty) against finite differences of
    # the first-order gradient: the hand-written backward pass must itself be
    # differentiable.
    layer = CELL_LAYERS[name][0](2, return_sequences=True, dtype="float64")
    layer.build((None, 3, 2))
    H.randomize_weights(layer, seed=32, scale=0.9)
    x = tf.Variable(np.random.default_rng(32).uniform(-1, 1, (2, 3, 2)))
    kernel = layer.trainable_weights[0]

    @tf.function
    def penalty():
        with tf.GradientTape() as inner:
            loss = tf.reduce_sum(tf.sin(layer(x)))
        return tf.reduce_sum(inner.gradient(loss, x) ** 2)

    with tf.GradientTape() as outer:
        value = penalty()
    analytic = H.to_numpy(outer.gradient(value, kernel))
    base, eps = kernel.numpy(), 1e-6
    numeric = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        shifted = base.copy()
        shifted[index] += eps
        kernel.assign(shifted)
        plus = float(penalty())
        shifted[index] -= 2 * eps
        kernel.assign(shifted)
        numeric[index] = (plus - float(penalty())) / (2 * eps)
    kernel.assign(base)
    assert np.abs(numeric).max() > 1e-3
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# Compiled training
# ---------------------------------------------------------------------------


def _toy_model(layer_class, return_sequences, dropout=0.0):
    inputs = keras.Input((T,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, F, mask_zero=True)(inputs)
    x = layer_class(4, return_sequences=return_sequences,
                    recurrent_dropout=dropout)(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_jit_compiled_training_step(name, return_sequences):
    model = _toy_model(CELL_LAYERS[name][0], return_sequences, dropout=0.1)
    ids = padded_ids(2)
    shape = (B, T, 1) if return_sequences else (B, 1)
    y = np.random.default_rng(2).uniform(-1, 1, shape).astype("float32")
    # (SGD rather than Adam: XLA compiles it twice as fast)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  jit_compile=True)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(ids, y, epochs=1, batch_size=B, verbose=0)
    assert model.jit_compile
    loss = history.history["loss"][0]
    assert np.isfinite(loss)
    after = model.get_weights()
    assert all(not np.allclose(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_jit_compiled_gradients_equal_eager_gradients(name):
    model = _toy_model(CELL_LAYERS[name][0], return_sequences=True)
    ids = padded_ids(3)
    y = np.random.default_rng(3).uniform(-1, 1, (B, T, 1)).astype("float32")

    def gradients():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(ids) - y) ** 2)
        return tape.gradient(loss, model.trainable_weights)

    eager = gradients()
    compiled = tf.function(gradients, jit_compile=True)()
    H.assert_close(list(compiled), list(eager), atol=1e-5)


# ---------------------------------------------------------------------------
# Saving and exporting
# ---------------------------------------------------------------------------


def _model_with_every_class():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, F, mask_zero=True)(inputs)
    x = nl.Bidirectional(nl.LSTM(3, return_sequences=True))(x)
    x = nl.GRU(3, return_sequences=True, reset_after=True)(x)
    x = nl.GRU(3, return_sequences=True, reset_gate=False)(x)
    x = nl.RNN(nl.LSTMCell(3), return_sequences=True)(x)
    x = nl.SimpleRNN(3, activation="relu", return_sequences=True)(x)
    x = nl.GRU(3)(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    for i, layer in enumerate(model.layers):
        if layer.weights:
            H.randomize_weights(layer, seed=20 + i, scale=0.8)
    return model


def test_save_and_load_keras_file(tmp_path):
    model = _model_with_every_class()
    ids = padded_ids(4)
    expected = H.to_numpy(model(ids))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    H.assert_close(loaded(ids), expected, atol=1e-6)
    kinds = {type(layer) for layer in loaded.layers}
    assert {nl.Bidirectional, nl.GRU, nl.RNN, nl.SimpleRNN} <= kinds
    for original, again in zip(model.layers, loaded.layers):
        assert type(original) is type(again)
        # (JSON turns tuples into lists: compare the JSON forms)
        assert (json.loads(json.dumps(original.get_config()))
                == json.loads(json.dumps(again.get_config())))
        for w1, w2 in zip(original.get_weights(), again.get_weights()):
            np.testing.assert_array_equal(w1, w2)


def test_export_saved_model(tmp_path):
    model = _model_with_every_class()
    ids = padded_ids(5)
    expected = H.to_numpy(model(ids))
    path = str(tmp_path / "saved_model")
    model.export(path, verbose=False)
    served = tf.saved_model.load(path)
    H.assert_close(served.serve(tf.constant(ids)), expected, atol=1e-5)
    # another length: the exported time axis is dynamic
    short = ids[:, :4]
    H.assert_close(served.serve(tf.constant(short)), model(short), atol=1e-5)
