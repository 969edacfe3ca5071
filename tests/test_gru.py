"""GRU: update gate, optional reset gate (SPEC section 1).

nlpseq follows the SPEC, ``h_t = z * h~ + (1 - z) * h_{t-1}``; Keras' GRU
computes ``h_t = z_k * h_{t-1} + (1 - z_k) * h~``, i.e. its update gate is
``1 - z``. To copy weights from ``keras.layers.GRU`` into nlpseq's GRU the
update-gate (z) columns of ``kernel``, ``recurrent_kernel`` and ``bias`` are
negated, since ``σ(-a) = 1 - σ(a)``
(:func:`layer_helpers.keras_weights_for_nlpseq`).
"""

import keras
import layer_helpers as H
import numpy as np
import pytest

from nlpseq.layers import GRU, GRUCell

B, T, F, U = H.BATCH, H.TIME, H.FEATURES, H.UNITS

# Every test runs with the recurrent products fused and per gate.
pytestmark = pytest.mark.usefixtures("recurrent_products")

VARIANTS = {
    "reset_before": {},
    "reset_after": {"reset_after": True},
    "minimal": {"reset_gate": False},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("return_sequences, return_state, go_backwards", [
    (False, False, False),
    (True, True, True),
])
def test_layer_basics(variant, return_sequences, return_state, go_backwards,
                      use_bias):
    output = (B, T, U) if return_sequences else (B, U)
    shapes = [output, (B, U)] if return_state else output
    H.check_layer(
        lambda: GRU(U, return_sequences=return_sequences,
                    return_state=return_state, go_backwards=go_backwards,
                    use_bias=use_bias, **VARIANTS[variant]),
        (B, T, F), shapes, expected_num_weights=3 if use_bias else 2)


@pytest.mark.parametrize("variant, gates, bias_shape", [
    ("reset_before", 3, (3 * U,)),
    ("reset_after", 3, (2, 3 * U)),
    ("minimal", 2, (2 * U,)),
])
def test_weight_shapes(variant, gates, bias_shape):
    layer = GRU(U, **VARIANTS[variant])
    layer.build((None, None, F))
    cell = layer.cell
    assert tuple(cell.kernel.shape) == (F, gates * U)
    assert tuple(cell.recurrent_kernel.shape) == (U, gates * U)
    assert tuple(cell.bias.shape) == bias_shape
    assert cell.state_size == [U]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize(H.REFERENCE_ARGS, H.REFERENCE_CASES)
def test_matches_reference(mask_kind, go_backwards, return_sequences,
                           return_state, with_initial_state, variant):
    H.check_against_reference(GRU, VARIANTS[variant], mask_kind, go_backwards,
                              return_sequences, return_state,
                              with_initial_state)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_reference_without_bias(variant):
    H.check_against_reference(GRU, {"use_bias": False, **VARIANTS[variant]},
                              "mixed", False, True, True, True)


def test_reset_after_differs_from_reset_before():
    # Same weights (recurrent bias zero): the two variants differ only by
    # where r is applied, and that must show.
    x = H.random_inputs(0)
    before = H.build_layer(GRU, return_sequences=True)
    after = H.build_layer(GRU, return_sequences=True, reset_after=True)
    weights = before.get_weights()
    after.set_weights(weights[:2] + [np.stack([weights[2],
                                               np.zeros(3 * U, "float32")])])
    assert not np.allclose(H.to_numpy(before(x)), H.to_numpy(after(x)),
                           atol=1e-4)


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_source", [None, "embedding"])
def test_keras_parity(mask_source, return_sequences, go_backwards,
                      reset_after):
    H.check_keras_parity(GRU, keras.layers.GRU, {"reset_after": reset_after},
                         mask_source, return_sequences, go_backwards)


def test_keras_parity_needs_the_update_gate_negated():
    # Copying Keras' weights as they are does *not* give Keras' output: the
    # two GRUs really use complementary update gates.
    keras_layer = keras.layers.GRU(U, return_sequences=True)
    nl_layer = GRU(U, return_sequences=True, reset_after=True)
    x = H.random_inputs(0)
    keras_layer(x)
    nl_layer(x)
    H.randomize_weights(keras_layer, seed=2)
    nl_layer.set_weights(keras_layer.get_weights())
    assert not np.allclose(H.to_numpy(nl_layer(x)),
                           H.to_numpy(keras_layer(x)), atol=1e-3)
    nl_layer.set_weights(H.keras_weights_for_nlpseq(keras_layer, U))
    H.assert_close(nl_layer(x), keras_layer(x))


# With sigmoid and tanh the step caches the gates' values, with another
# activation their pre-activations: the backward step goes both ways.
GRAD_VARIANTS = {
    **VARIANTS,
    "reset_before_softsign": {"activation": "softsign"},
    "reset_after_softsign": {"reset_after": True, "activation": "softsign"},
    "minimal_softsign": {"reset_gate": False, "activation": "softsign"},
}


@pytest.mark.parametrize("variant", list(GRAD_VARIANTS))
@pytest.mark.parametrize("case", list(H.GRAD_CASES))
def test_gradients_match_finite_differences(case, variant):
    H.check_gradient_case(GRU, GRAD_VARIANTS[variant], case)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("mask_kind", ["right", "left", "mixed"])
def test_masked_last_state_equals_truncated_sequence(mask_kind, variant):
    H.check_truncated_last_state(GRU, VARIANTS[variant], mask_kind)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("which", ["input", "recurrent"])
def test_dropout(which, variant):
    H.check_dropout(GRU, VARIANTS[variant], which)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cell_call_is_one_reference_step(variant):
    H.check_cell_call(GRUCell, VARIANTS[variant])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_update_gate_semantics(variant):
    # SPEC: z = 1 takes the new candidate, z = 0 carries h_{t-1} unchanged.
    cell = GRUCell(U, **VARIANTS[variant])
    x_t = H.random_inputs(1, (2, F))
    h = H.random_inputs(2, (2, U))
    cell(x_t, [h])
    big = 40.0
    for z_bias in (-big, big):
        H.randomize_weights(cell, seed=5)
        weights = cell.get_weights()
        # z gets no input, no recurrence, and a huge bias of either sign
        weights[0][:, :U] = 0.0
        weights[1][:, :U] = 0.0
        bias = weights[2]
        bias[..., :U] = 0.0
        bias.reshape(-1, bias.shape[-1])[0, :U] = z_bias
        cell.set_weights(weights)
        new_h, _ = cell(x_t, [h])
        if z_bias < 0:
            H.assert_close(new_h, h)  # carried through
        else:
            # the candidate: what the reference gives with z forced to 1
            ref = H.reference_cell(cell)
            expected, _ = ref.step(x_t, [h])
            H.assert_close(new_h, expected)
            assert not np.allclose(H.to_numpy(new_h), h, atol=1e-3)


@pytest.mark.parametrize("factory", [GRU, GRUCell])
@pytest.mark.parametrize("kwargs, name, value", [
    ({"units": 0}, "units", 0),
    ({"units": -3}, "units", -3),
    ({"units": 2.5}, "units", 2.5),
    ({"units": 4, "activation": "foo"}, "activation", "foo"),
    ({"units": 4, "recurrent_activation": "foo"}, "recurrent_activation",
     "foo"),
    ({"units": 4, "dropout": 1.5}, "dropout", 1.5),
    ({"units": 4, "reset_gate": False, "reset_after": True}, "reset_after",
     True),
])
def test_bad_arguments(factory, kwargs, name, value):
    with pytest.raises(ValueError) as info:
        factory(**kwargs)
    H.assert_message_names(str(info.value), name, value)
