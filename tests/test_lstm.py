"""LSTM: forget / input / output gates and the memory cell (SPEC section 1)."""

import keras
import layer_helpers as H
import numpy as np
import pytest

from nlpseq.layers import LSTM, LSTMCell

B, T, F, U = H.BATCH, H.TIME, H.FEATURES, H.UNITS

# Every test runs with the recurrent products fused and per gate.
pytestmark = pytest.mark.usefixtures("recurrent_products")


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("return_sequences, return_state, go_backwards", [
    (False, False, False),
    (True, False, False),
    (True, True, True),
    (False, True, False),
])
def test_layer_basics(return_sequences, return_state, go_backwards, use_bias):
    output = (B, T, U) if return_sequences else (B, U)
    shapes = [output, (B, U), (B, U)] if return_state else output
    H.check_layer(
        lambda: LSTM(U, return_sequences=return_sequences,
                     return_state=return_state, go_backwards=go_backwards,
                     use_bias=use_bias),
        (B, T, F), shapes, expected_num_weights=3 if use_bias else 2)


def test_weight_shapes():
    layer = LSTM(U)
    layer.build((None, None, F))
    cell = layer.cell
    assert tuple(cell.kernel.shape) == (F, 4 * U)
    assert tuple(cell.recurrent_kernel.shape) == (U, 4 * U)
    assert tuple(cell.bias.shape) == (4 * U,)
    assert cell.state_size == [U, U]


@pytest.mark.parametrize(H.REFERENCE_ARGS, H.REFERENCE_CASES)
def test_matches_reference(mask_kind, go_backwards, return_sequences,
                           return_state, with_initial_state):
    H.check_against_reference(LSTM, {}, mask_kind, go_backwards,
                              return_sequences, return_state,
                              with_initial_state)


def test_matches_reference_without_bias():
    H.check_against_reference(LSTM, {"use_bias": False}, "mixed", False,
                              True, True, True)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_source", [None, "embedding"])
def test_keras_parity(mask_source, return_sequences, go_backwards):
    H.check_keras_parity(LSTM, keras.layers.LSTM, {}, mask_source,
                         return_sequences, go_backwards)


# With sigmoid and tanh the step caches the gates' values, with other
# activations their pre-activations: the backward step goes both ways.
@pytest.mark.parametrize("activations", [
    {}, {"activation": "softsign"}, {"recurrent_activation": "hard_sigmoid"}],
    ids=["sigmoid_tanh", "softsign", "hard_sigmoid"])
@pytest.mark.parametrize("case", list(H.GRAD_CASES))
def test_gradients_match_finite_differences(case, activations):
    H.check_gradient_case(LSTM, activations, case)


@pytest.mark.parametrize("mask_kind", ["right", "left", "mixed"])
def test_masked_last_state_equals_truncated_sequence(mask_kind):
    H.check_truncated_last_state(LSTM, {}, mask_kind)


def test_unit_forget_bias():
    layer = LSTM(U, bias_initializer="zeros")
    layer.build((None, None, F))
    i, f, c, o = np.split(H.to_numpy(layer.cell.bias), 4)
    np.testing.assert_array_equal(f, 1.0)
    for block in (i, c, o):
        np.testing.assert_array_equal(block, 0.0)

    # the other blocks keep the given initializer
    layer = LSTM(U, bias_initializer=keras.initializers.Constant(0.25))
    layer.build((None, None, F))
    i, f, c, o = np.split(H.to_numpy(layer.cell.bias), 4)
    np.testing.assert_array_equal(f, 1.0)
    for block in (i, c, o):
        np.testing.assert_array_equal(block, 0.25)

    layer = LSTM(U, unit_forget_bias=False)
    layer.build((None, None, F))
    np.testing.assert_array_equal(H.to_numpy(layer.cell.bias), 0.0)
    assert layer.get_config()["unit_forget_bias"] is False


@pytest.mark.parametrize("which", ["input", "recurrent"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_dropout(which, return_sequences):
    H.check_dropout(LSTM, {}, which, return_sequences=return_sequences)


def test_cell_call_is_one_reference_step():
    H.check_cell_call(LSTMCell, {})
    H.check_cell_call(LSTMCell, {"use_bias": False})


def test_forget_gate_keeps_or_forgets_context():
    # SPEC: f near 1 keeps the old context, near 0 forgets it. With the input
    # gate shut (i = 0) the memory is exactly f * C_{t-1}.
    cell = LSTMCell(U)
    x_t = np.zeros((1, F), "float32")
    h, c = np.zeros((1, U), "float32"), np.full((1, U), 0.8, "float32")
    cell(x_t, [h, c])
    big = 30.0
    for forget_bias, expected in ((big, 0.8), (-big, 0.0)):
        bias = np.concatenate([np.full(U, -big), np.full(U, forget_bias),
                               np.zeros(U), np.zeros(U)]).astype("float32")
        cell.set_weights([np.zeros((F, 4 * U), "float32"),
                          np.zeros((U, 4 * U), "float32"), bias])
        _, (_, new_c) = cell(x_t, [h, c])
        np.testing.assert_allclose(H.to_numpy(new_c), expected, atol=1e-6)


@pytest.mark.parametrize("factory", [LSTM, LSTMCell])
@pytest.mark.parametrize("kwargs, name, value", [
    ({"units": 0}, "units", 0),
    ({"units": -3}, "units", -3),
    ({"units": 2.5}, "units", 2.5),
    ({"units": 4, "activation": "foo"}, "activation", "foo"),
    ({"units": 4, "recurrent_activation": "foo"}, "recurrent_activation",
     "foo"),
    ({"units": 4, "dropout": 1.5}, "dropout", 1.5),
    ({"units": 4, "recurrent_dropout": 1.5}, "recurrent_dropout", 1.5),
])
def test_bad_arguments(factory, kwargs, name, value):
    with pytest.raises(ValueError) as info:
        factory(**kwargs)
    H.assert_message_names(str(info.value), name, value)
