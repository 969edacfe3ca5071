"""SimpleRNN (Elman): ``h_t = act(W_hh h_{t-1} + W_xh x_t + b_h)``."""

import keras
import layer_helpers as H
import numpy as np
import pytest

from nlpseq.layers import SimpleRNN, SimpleRNNCell

B, T, F, U = H.BATCH, H.TIME, H.FEATURES, H.UNITS


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("return_sequences, return_state, go_backwards", [
    (False, False, False),
    (True, False, False),
    (True, True, True),
    (False, True, False),
])
def test_layer_basics(return_sequences, return_state, go_backwards, use_bias):
    output = (B, T, U) if return_sequences else (B, U)
    shapes = [output, (B, U)] if return_state else output
    H.check_layer(
        lambda: SimpleRNN(U, return_sequences=return_sequences,
                          return_state=return_state, go_backwards=go_backwards,
                          use_bias=use_bias),
        (B, T, F), shapes, expected_num_weights=3 if use_bias else 2)


@pytest.mark.parametrize(H.REFERENCE_ARGS, H.REFERENCE_CASES)
def test_matches_reference(mask_kind, go_backwards, return_sequences,
                           return_state, with_initial_state):
    H.check_against_reference(SimpleRNN, {}, mask_kind, go_backwards,
                              return_sequences, return_state,
                              with_initial_state)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
@pytest.mark.parametrize("mask_kind", [None, "mixed"])
def test_activation_matches_reference(activation, mask_kind):
    H.check_against_reference(SimpleRNN, {"activation": activation},
                              mask_kind, go_backwards=False,
                              return_sequences=True, return_state=True,
                              with_initial_state=False)
    assert SimpleRNN(U, activation=activation).get_config()[
        "activation"] == activation


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_activation_is_really_used(activation):
    layer = H.build_layer(SimpleRNN, activation=activation,
                          return_sequences=True)
    tanh_layer = H.build_layer(SimpleRNN, return_sequences=True)
    x = H.random_inputs(0)
    out = H.to_numpy(layer(x))
    assert not np.allclose(out, H.to_numpy(tanh_layer(x)), atol=1e-3)
    assert out.min() >= 0.0  # relu and sigmoid are non-negative
    if activation == "sigmoid":
        assert out.max() <= 1.0


def test_callable_activation():
    layer = H.build_layer(SimpleRNN, activation=keras.activations.relu,
                          return_sequences=True)
    x = H.random_inputs(0)
    ref = H.RefSimpleRNN(*layer.get_weights(), activation="relu")
    H.assert_close(layer(x), H.reference_rnn(ref, x, return_sequences=True))


def test_bias_gives_first_step_information():
    # SPEC: with a zero bias and a zero initial state, a zero first input
    # gives a zero first state; the bias is what moves it.
    x = np.zeros((1, 2, F), "float32")
    with_bias = H.build_layer(SimpleRNN, return_sequences=True)
    assert np.abs(H.to_numpy(with_bias(x))[0, 0]).max() > 1e-3
    no_bias = H.build_layer(SimpleRNN, return_sequences=True, use_bias=False)
    np.testing.assert_array_equal(H.to_numpy(no_bias(x)), 0.0)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_source", [None, "embedding"])
def test_keras_parity(mask_source, return_sequences, go_backwards):
    H.check_keras_parity(SimpleRNN, keras.layers.SimpleRNN, {}, mask_source,
                         return_sequences, go_backwards)


@pytest.mark.parametrize("case", list(H.GRAD_CASES))
# (tanh and sigmoid differentiate from the output, softsign from the
# pre-activation: the two ways the backward step can go)
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softsign"])
def test_gradients_match_finite_differences(activation, case):
    H.check_gradient_case(SimpleRNN, {"activation": activation}, case)


@pytest.mark.parametrize("mask_kind", ["right", "left", "mixed"])
def test_masked_last_state_equals_truncated_sequence(mask_kind):
    H.check_truncated_last_state(SimpleRNN, {}, mask_kind)


@pytest.mark.parametrize("which", ["input", "recurrent"])
def test_dropout(which):
    H.check_dropout(SimpleRNN, {}, which)


def test_dropout_mask_is_the_same_at_every_step():
    # With an identity kernel, no recurrence and a linear activation, the
    # output at step t is x_t * mask: with constant inputs, every step must
    # show the same mask.
    layer = SimpleRNN(F, activation="linear", dropout=0.5, use_bias=False,
                      return_sequences=True, seed=3)
    layer.build((None, None, F))
    layer.set_weights([np.eye(F, dtype="float32"),
                       np.zeros((F, F), "float32")])
    x = np.ones((8, T, F), "float32")
    out = H.to_numpy(layer(x, training=True))
    np.testing.assert_allclose(out, np.repeat(out[:, :1], T, axis=1))
    assert set(np.unique(out)) == {0.0, 2.0}


def test_recurrent_dropout_mask_is_the_same_at_every_step():
    # Identity recurrence, no input, linear: h_t = h_{t-1} * m, so with a
    # fixed mask h_t = h_0 * m**t (a unit dropped once stays at zero, a kept
    # one doubles at every step).
    layer = SimpleRNN(F, activation="linear", recurrent_dropout=0.5,
                      use_bias=False, return_sequences=True, seed=5)
    layer.build((None, None, F))
    layer.set_weights([np.zeros((F, F), "float32"),
                       np.eye(F, dtype="float32")])
    x = np.zeros((8, T, F), "float32")
    h0 = np.ones((8, F), "float32")
    out = H.to_numpy(layer(x, initial_state=[h0], training=True))
    kept = out[:, 0] > 0
    assert kept.any() and (~kept).any()
    expected = np.where(kept[:, None, :],
                        2.0 ** np.arange(1, T + 1)[None, :, None], 0.0)
    np.testing.assert_allclose(out, expected)


def test_cell_call_is_one_reference_step():
    H.check_cell_call(SimpleRNNCell, {})
    H.check_cell_call(SimpleRNNCell, {"activation": "relu"})


@pytest.mark.parametrize("factory", [SimpleRNN, SimpleRNNCell])
@pytest.mark.parametrize("kwargs, name, value", [
    ({"units": 0}, "units", 0),
    ({"units": -3}, "units", -3),
    ({"units": 2.5}, "units", 2.5),
    ({"units": 4, "activation": "foo"}, "activation", "foo"),
    ({"units": 4, "dropout": 1.5}, "dropout", 1.5),
    ({"units": 4, "recurrent_dropout": -0.1}, "recurrent_dropout", -0.1),
])
def test_bad_arguments(factory, kwargs, name, value):
    with pytest.raises(ValueError) as info:
        factory(**kwargs)
    H.assert_message_names(str(info.value), name, value)
