"""Bidirectional: a forward pass h^f_1..h^f_n and a backward pass h^b_n..h^b_1,
combined at each step (SPEC section 1)."""

import keras
import layer_helpers as H
import numpy as np
import pytest

from nlpseq import layers as nl

B, T, F, U = H.BATCH, H.TIME, H.FEATURES, H.UNITS

CELL_LAYERS = {"SimpleRNN": nl.SimpleRNN, "LSTM": nl.LSTM, "GRU": nl.GRU}


def build_bidirectional(layer, seed=0, **kwargs):
    bidi = nl.Bidirectional(layer, **kwargs)
    bidi.build((None, None, F))
    H.randomize_weights(bidi, seed=seed)
    return bidi


def plain_copy(direction, layer_class, return_sequences):
    """A plain *forward* layer holding the weights of one direction."""
    plain = layer_class(U, return_sequences=return_sequences)
    plain.build((None, None, F))
    plain.set_weights(direction.get_weights())
    return plain


# ---------------------------------------------------------------------------
# Basics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("merge_mode, return_sequences, return_state", [
    ("concat", True, False),
    ("sum", False, False),
    (None, True, False),
    ("concat", False, True),
    (None, True, True),
])
def test_layer_basics(merge_mode, return_sequences, return_state):
    width = 2 * U if merge_mode == "concat" else U
    output = (B, T, width) if return_sequences else (B, width)
    if merge_mode is None:
        output = [output[:-1] + (U,)] * 2
    else:
        output = [output]
    states = [(B, U)] * 4 if return_state else []
    H.check_layer(
        lambda: nl.Bidirectional(
            nl.LSTM(U, return_sequences=return_sequences,
                    return_state=return_state),
            merge_mode=merge_mode),
        (B, T, F), output + states, expected_num_weights=6)


# ---------------------------------------------------------------------------
# Each half is a plain forward layer, run per sequence
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask_kind", ["right", "mixed"])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_halves_equal_plain_forward_layers(name, return_sequences,
                                           mask_kind):
    layer_class = CELL_LAYERS[name]
    bidi = build_bidirectional(
        layer_class(U, return_sequences=return_sequences), merge_mode=None)
    x, mask = H.random_inputs(1), H.MASKS[mask_kind]
    forward, backward = H.to_numpy(bidi(x, mask=mask))
    plain_f = plain_copy(bidi.forward_layer, layer_class, True)
    plain_b = plain_copy(bidi.backward_layer, layer_class, True)
    for row in range(B):
        steps = np.flatnonzero(mask[row])
        sequence = x[row, steps][None]  # the unpadded sequence
        fwd = H.to_numpy(plain_f(sequence))[0]
        # backward half: the forward layer on the reversed sequence; its k-th
        # output belongs to the k-th step from the end
        bwd = H.to_numpy(plain_b(sequence[:, ::-1]))[0][::-1]
        if return_sequences:
            H.assert_close(forward[row, steps], fwd)
            H.assert_close(backward[row, steps], bwd)
            # padded steps output zeros in both directions
            np.testing.assert_array_equal(forward[row, ~mask[row]], 0.0)
            np.testing.assert_array_equal(backward[row, ~mask[row]], 0.0)
        else:
            H.assert_close(forward[row], fwd[-1])   # h^f at the last step
            H.assert_close(backward[row], bwd[0])   # h^b at the first step
    # the two directions really differ
    assert not np.allclose(forward, backward, atol=1e-3)


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_matches_reference_loops(name):
    bidi = build_bidirectional(
        CELL_LAYERS[name](U, return_sequences=True, return_state=True),
        merge_mode="concat")
    x, mask = H.random_inputs(2), H.MASKS["mixed"]
    got = bidi(x, mask=mask)
    forward = H.reference_rnn(
        H.reference_cell(bidi.forward_layer), x, mask=mask,
        return_sequences=True, return_state=True, zero_output_for_mask=True)
    backward = H.reference_rnn(
        H.reference_cell(bidi.backward_layer), x, mask=mask,
        go_backwards=True, return_sequences=True, return_state=True,
        zero_output_for_mask=True)
    output = np.concatenate([forward[0], backward[0][:, ::-1]], axis=-1)
    # return_state: the output, then the forward states, then the backward
    H.assert_close(got, [output] + forward[1:] + backward[1:])


# ---------------------------------------------------------------------------
# Merge modes
# ---------------------------------------------------------------------------

MERGES = {
    "concat": lambda f, b: np.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "ave": lambda f, b: (f + b) / 2,
    "mul": lambda f, b: f * b,
    None: lambda f, b: [f, b],
}


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("merge_mode", list(MERGES))
def test_merge_modes(merge_mode, return_sequences):
    template = nl.GRU(U, return_sequences=return_sequences)
    x, mask = H.random_inputs(3), H.MASKS["right"]
    halves = build_bidirectional(template, merge_mode=None, seed=4)
    forward, backward = H.to_numpy(halves(x, mask=mask))
    bidi = nl.Bidirectional(template, merge_mode=merge_mode)
    bidi.build((None, None, F))
    bidi.set_weights(halves.get_weights())
    got = bidi(x, mask=mask)
    expected = MERGES[merge_mode](forward, backward)
    H.assert_close(got, expected)
    width = 2 * U if merge_mode == "concat" else U
    shape = (B, T, width) if return_sequences else (B, width)
    for out in H._as_list(got):
        assert tuple(out.shape) == shape


def test_bad_merge_mode():
    with pytest.raises(ValueError) as info:
        nl.Bidirectional(nl.LSTM(U), merge_mode="foo")
    H.assert_message_names(str(info.value), "merge_mode", "foo")


@pytest.mark.parametrize("layer", [keras.layers.Dense(3), nl.LSTMCell(3)])
def test_wrapping_a_non_recurrent_layer_is_rejected(layer):
    # (Keras' recurrent layers are accepted: tests/test_keras_interop.py)
    with pytest.raises(ValueError) as info:
        nl.Bidirectional(layer)
    H.assert_message_names_argument(str(info.value), "layer")


# ---------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CELL_LAYERS))
def test_initial_state_is_split_forward_then_backward(name):
    bidi = build_bidirectional(
        CELL_LAYERS[name](U, return_state=True), merge_mode=None, seed=5)
    n_states = len(bidi.forward_layer.cell.state_size)
    rng = np.random.default_rng(6)
    states = [rng.uniform(-1, 1, (B, U)).astype("float32")
              for _ in range(2 * n_states)]
    x, mask = H.random_inputs(5), H.MASKS["mixed"]
    got = bidi(x, mask=mask, initial_state=states)
    forward = H.reference_rnn(
        H.reference_cell(bidi.forward_layer), x, mask=mask,
        initial_state=states[:n_states], return_state=True)
    backward = H.reference_rnn(
        H.reference_cell(bidi.backward_layer), x, mask=mask,
        initial_state=states[n_states:], go_backwards=True,
        return_state=True)
    H.assert_close(got, [forward[0], backward[0]] + forward[1:]
                   + backward[1:])
    with pytest.raises(ValueError, match="initial_state"):
        bidi(x, initial_state=states[:n_states])


# ---------------------------------------------------------------------------
# An explicit backward layer, config, gradients
# ---------------------------------------------------------------------------


def test_explicit_backward_layer():
    bidi = build_bidirectional(
        nl.LSTM(U, return_sequences=True),
        backward_layer=nl.GRU(U, return_sequences=True, go_backwards=True),
        merge_mode=None, seed=7)
    assert isinstance(bidi.backward_layer, nl.GRU)
    x, mask = H.random_inputs(7), H.MASKS["right"]
    forward, backward = bidi(x, mask=mask)
    H.assert_close(forward, H.reference_rnn(
        H.reference_cell(bidi.forward_layer), x, mask=mask,
        return_sequences=True, zero_output_for_mask=True))
    H.assert_close(backward, H.reference_rnn(
        H.reference_cell(bidi.backward_layer), x, mask=mask,
        go_backwards=True, return_sequences=True,
        zero_output_for_mask=True)[:, ::-1])
    # config round trip keeps the explicit backward layer
    clone = nl.Bidirectional.from_config(bidi.get_config())
    clone.build((None, None, F))
    assert isinstance(clone.backward_layer, nl.GRU)
    clone.set_weights(bidi.get_weights())
    H.assert_close(clone(x, mask=mask), [forward, backward])


@pytest.mark.parametrize("backward_kwargs, name", [
    (dict(return_sequences=True, go_backwards=False), "go_backwards"),
    (dict(return_sequences=False, go_backwards=True), "return_sequences"),
])
def test_inconsistent_backward_layer_is_rejected(backward_kwargs, name):
    with pytest.raises(ValueError, match=name):
        nl.Bidirectional(nl.GRU(U, return_sequences=True),
                         backward_layer=nl.GRU(U, **backward_kwargs))


@pytest.mark.parametrize("merge_mode", ["ave", None])
def test_config_round_trip(merge_mode):
    bidi = build_bidirectional(
        nl.GRU(U, return_sequences=True, reset_after=True),
        merge_mode=merge_mode, seed=8)
    config = bidi.get_config()
    clone = nl.Bidirectional.from_config(config)
    clone.build((None, None, F))
    clone.set_weights(bidi.get_weights())
    x, mask = H.random_inputs(8), H.MASKS["mixed"]
    H.assert_close(clone(x, mask=mask), bidi(x, mask=mask))
    assert clone.get_config() == config
    assert clone.merge_mode == merge_mode
    assert clone.forward_layer.cell.reset_after
    assert not clone.forward_layer.go_backwards
    assert clone.backward_layer.go_backwards


def test_compute_mask():
    x, mask = H.random_inputs(0), H.MASKS["mixed"]
    sequences = nl.Bidirectional(nl.GRU(U, return_sequences=True))
    np.testing.assert_array_equal(
        H.to_numpy(sequences.compute_mask(x, mask)), mask)
    assert nl.Bidirectional(nl.GRU(U)).compute_mask(x, mask) is None


@pytest.mark.parametrize("case", ["sequences+states+initial", "last+mask"])
def test_gradients_match_finite_differences(case):
    spec = H.GRAD_CASES[case]
    bidi = nl.Bidirectional(nl.LSTM(2, dtype="float64", **spec["layer"]),
                            dtype="float64")
    bidi.build((None, 3, 2))
    H.randomize_weights(bidi, seed=9, scale=0.9)
    rng = np.random.default_rng(9)
    states = ([rng.uniform(-1, 1, (2, 2)) for _ in range(4)]
              if spec["initial_state"] else [])
    H.check_gradients_fd(bidi, rng.uniform(-1, 1, (2, 3, 2)),
                         mask=spec["mask"], initial_state=states)
