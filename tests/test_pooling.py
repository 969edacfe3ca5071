"""Tests of nlpseq.layers.pooling.SequencePooling against NumPy references."""

import keras
import numpy as np
import pytest

from nlpseq.layers.pooling import MODES, SequencePooling

BATCH, TIME, FEATURES = 7, 6, 4


def reference(x, mask, mode):
    """Pooling written with explicit loops over rows, float64."""
    x = np.asarray(x, dtype=np.float64)
    if mask is None:
        mask = np.ones(x.shape[:2], dtype=bool)
    rows = []
    for row, valid in zip(x, mask):
        steps = [row[t] for t in range(len(valid)) if valid[t]]
        zeros = np.zeros(x.shape[-1])
        if mode == "last":
            rows.append(steps[-1] if steps else zeros)
            continue
        parts = []
        if mode in ("max", "max_mean"):
            parts.append(np.max(steps, axis=0) if steps else zeros)
        if mode in ("mean", "max_mean"):
            parts.append(np.mean(steps, axis=0) if steps else zeros)
        rows.append(np.concatenate(parts))
    return np.stack(rows)


def random_masks(rng):
    """Right-padded rows, left-padded rows, a full row, an empty row."""
    mask = np.zeros((BATCH, TIME), dtype=bool)
    lengths = rng.integers(1, TIME, size=BATCH)
    for i, length in enumerate(lengths):
        if i % 2 == 0:
            mask[i, :length] = True  # right-padded
        else:
            mask[i, TIME - length:] = True  # left-padded
    mask[BATCH - 2] = True  # nothing padded
    mask[BATCH - 1] = False  # everything padded
    return mask


def padded_inputs(rng, mask, low=-3.0, high=3.0):
    """Random values on valid steps, zeros on padded ones (as after a RNN
    that zeroes masked outputs)."""
    x = rng.uniform(low, high, size=(BATCH, TIME, FEATURES))
    return (x * mask[..., None]).astype("float32")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_pooling_matches_reference(mode, seed):
    rng = np.random.default_rng(seed)
    mask = random_masks(rng)
    x = padded_inputs(rng, mask)
    out = keras.ops.convert_to_numpy(SequencePooling(mode)(x, mask=mask))
    expected = reference(x, mask, mode)
    width = FEATURES * (2 if mode == "max_mean" else 1)
    assert out.shape == (BATCH, width)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[-1], np.zeros(width))


@pytest.mark.parametrize("mode", MODES)
def test_masked_steps_with_garbage_values_never_contribute(mode):
    rng = np.random.default_rng(5)
    mask = random_masks(rng)
    # Large values on padded steps: they would win "max" and move "mean".
    x = rng.normal(size=(BATCH, TIME, FEATURES))
    x = np.where(mask[..., None], x, 100.0).astype("float32")
    out = keras.ops.convert_to_numpy(SequencePooling(mode)(x, mask=mask))
    np.testing.assert_allclose(out, reference(x, mask, mode), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("mode", ["max", "max_mean"])
def test_max_of_negative_values_ignores_padding_zeros(mode):
    rng = np.random.default_rng(3)
    mask = random_masks(rng)
    x = padded_inputs(rng, mask, low=-5.0, high=-0.5)  # valid steps < 0
    out = keras.ops.convert_to_numpy(SequencePooling(mode)(x, mask=mask))
    expected = reference(x, mask, mode)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    peaks = out[:-1, :FEATURES]  # rows with at least one valid step
    assert (peaks < 0).all()


def test_max_with_single_valid_step_and_uniform_values():
    x = np.full((2, 3, 2), -7.0, dtype="float32")
    mask = np.array([[False, True, False], [True, True, True]])
    out = keras.ops.convert_to_numpy(SequencePooling("max")(x, mask=mask))
    np.testing.assert_array_equal(out, np.full((2, 2), -7.0))


@pytest.mark.parametrize("mode", MODES)
def test_no_mask_pools_all_steps(mode):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(BATCH, TIME, FEATURES)).astype("float32")
    out = keras.ops.convert_to_numpy(SequencePooling(mode)(x))
    np.testing.assert_allclose(out, reference(x, None, mode), rtol=1e-6,
                               atol=1e-6)
    if mode == "last":
        np.testing.assert_array_equal(out, x[:, -1])


def test_last_picks_last_valid_step_of_irregular_mask():
    x = np.arange(1, 6, dtype="float32").reshape(1, 5, 1)
    mask = np.array([[True, False, True, True, False]])
    out = keras.ops.convert_to_numpy(SequencePooling("last")(x, mask=mask))
    assert out.tolist() == [[4.0]]


def test_bad_mode():
    with pytest.raises(ValueError) as caught:
        SequencePooling("min")
    assert str(caught.value) == (
        "Received an invalid value for argument `mode`, expected one of "
        "'last', 'max', 'mean', 'max_mean', got 'min'.")


@pytest.mark.parametrize("mode", MODES)
def test_config_round_trip(mode):
    layer = SequencePooling(mode, name="pool")
    config = layer.get_config()
    assert config["mode"] == mode and config["name"] == "pool"
    copy = SequencePooling.from_config(config)
    assert copy.mode == mode and copy.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer))
    assert isinstance(revived, SequencePooling) and revived.mode == mode
    rng = np.random.default_rng(2)
    mask = random_masks(rng)
    x = padded_inputs(rng, mask)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(revived(x, mask=mask)),
        keras.ops.convert_to_numpy(layer(x, mask=mask)))


@pytest.mark.parametrize("mode", MODES)
def test_output_shape(mode):
    layer = SequencePooling(mode)
    width = 2 * FEATURES if mode == "max_mean" else FEATURES
    assert layer.compute_output_shape((None, None, FEATURES)) == (None, width)
    symbolic = layer(keras.Input((None, FEATURES)))
    assert tuple(symbolic.shape) == (None, width)


@pytest.mark.parametrize("mode", MODES)
def test_mask_from_embedding_in_functional_model(mode):
    vocabulary, dim = 9, 3
    ids_in = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(vocabulary, dim, mask_zero=True)(ids_in)
    pooled = SequencePooling(mode)(embedded)
    assert getattr(pooled, "_keras_mask", None) is None  # consumed here
    model = keras.Model(ids_in, pooled)
    # A padding row (id 0) that would win "max" and move "mean" and "last".
    table = np.random.default_rng(4).normal(size=(vocabulary, dim))
    table[0] = 10.0
    model.layers[1].embeddings.assign(table.astype("float32"))
    ids = np.array([[3, 5, 2, 0, 0],   # right-padded
                    [0, 0, 7, 1, 4],   # left-padded
                    [8, 6, 1, 2, 3],   # full
                    [0, 0, 0, 0, 0]],  # empty
                   dtype="int32")
    out = keras.ops.convert_to_numpy(model(ids))
    mask = ids != 0
    np.testing.assert_allclose(out, reference(table[ids], mask, mode),
                               rtol=1e-6, atol=1e-6)
    # Without the mask the padding embeddings (row 0 of the table) would
    # count: the result differs, so the mask really was propagated.
    unmasked = reference(table[ids], None, mode)
    assert not np.allclose(out[:2], unmasked[:2])
