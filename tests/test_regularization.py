"""AWD-LSTM's regularizers: the cells' ``weight_drop`` (DropConnect on the
recurrent kernel), :class:`LockedDropout`, :class:`EmbeddingDropout` and
:class:`ActivationRegularization`, each against its definition (a
reference layer given the masked kernel, NumPy), off at inference; and the
next-word app's settings: their layers, outputs that do not depend on them
once trained, and a resumed run that reaches the uninterrupted weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from nlpseq.cli import cli
from nlpseq.layers import (
    GRU,
    LSTM,
    ActivationRegularization,
    EmbeddingDropout,
    LockedDropout,
    SimpleRNN,
)
from nlpseq.layers import rnn as rnn_module


def recorded_masks(monkeypatch):
    """The masks ``keras.random.dropout`` draws in the time loop's module,
    recorded (the draws themselves unchanged)."""
    masks = []
    original = rnn_module.keras.random.dropout

    def dropout(*args, **kwargs):
        result = original(*args, **kwargs)
        masks.append(result)
        return result

    monkeypatch.setattr(rnn_module.keras.random, "dropout", dropout)
    return masks


@pytest.mark.parametrize("layer_class, units, implementation", [
    (LSTM, 6, None), (LSTM, 6, 1), (GRU, 6, None), (GRU, 6, 1),
    (SimpleRNN, 6, None)])
def test_weight_drop_is_the_layer_with_the_masked_kernel(
        monkeypatch, layer_class, units, implementation):
    """In training, the outputs are those of the same layer whose recurrent
    kernel is multiplied by the drawn mask, and the kernel's gradient is
    that layer's times the mask (the chain rule through the mask)."""
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    options = {"return_sequences": True}
    if implementation:
        options["implementation"] = implementation
    dropped = layer_class(units, weight_drop=0.5, seed=3, **options)
    reference = layer_class(units, **options)
    dropped.build(x.shape)
    reference.build(x.shape)
    reference.set_weights(dropped.get_weights())
    masks = recorded_masks(monkeypatch)
    with tf.GradientTape() as tape:
        out = dropped(x, training=True)
        loss = tf.reduce_sum(out * out)
    grad = tape.gradient(loss, dropped.cell.recurrent_kernel)
    (mask,) = masks
    mask = mask.numpy()
    assert mask.shape == tuple(dropped.cell.recurrent_kernel.shape)
    assert set(np.unique(mask)) <= {0.0, 2.0}
    reference.cell.recurrent_kernel.assign(
        dropped.cell.recurrent_kernel.numpy() * mask)
    with tf.GradientTape() as tape:
        expected = reference(x, training=True)
        reference_loss = tf.reduce_sum(expected * expected)
    reference_grad = tape.gradient(reference_loss,
                                   reference.cell.recurrent_kernel)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_allclose(grad, reference_grad.numpy() * mask,
                               atol=1e-4)


def test_weight_drop_masks_have_the_rate_and_change_per_batch(monkeypatch):
    layer = LSTM(64, weight_drop=0.3, seed=0)
    x = np.ones((2, 3, 8), "float32")
    masks = recorded_masks(monkeypatch)
    layer(x, training=True)
    layer(x, training=True)
    first, second = (m.numpy() for m in masks)
    assert first.shape == (64, 256)
    assert abs((first == 0).mean() - 0.3) < 0.02  # (16,384 draws)
    np.testing.assert_allclose(first[first > 0], 1 / 0.7, rtol=1e-6)
    assert (first != second).any()


def test_weight_drop_is_off_at_inference_and_in_the_config():
    x = np.random.default_rng(1).normal(size=(2, 7, 5)).astype("float32")
    dropped = LSTM(4, weight_drop=0.6)
    plain = LSTM(4)
    dropped.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(dropped.get_weights())
    np.testing.assert_array_equal(dropped(x), plain(x))
    assert dropped.get_config()["weight_drop"] == 0.6
    assert "weight_drop" not in plain.get_config()  # (as Keras' config)
    again = LSTM.from_config(dropped.get_config())
    assert again.cell.weight_drop == 0.6
    with pytest.raises(ValueError, match="weight_drop"):
        LSTM(4, weight_drop=1.5)


def test_locked_dropout_keeps_one_mask_per_sequence():
    layer = LockedDropout(0.4, seed=1)
    x = np.ones((16, 10, 64), "float32")
    out = layer(x, training=True).numpy()
    np.testing.assert_array_equal(out, np.repeat(out[:, :1], 10, axis=1))
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.6)}
    assert abs((out[:, 0] == 0).mean() - 0.4) < 0.05  # (1,024 draws)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_embedding_dropout_drops_every_occurrence_of_a_word():
    vocabulary = 2000
    layer = EmbeddingDropout(vocabulary, 0.25, seed=2)
    ids = np.concatenate([np.arange(vocabulary), np.arange(vocabulary)])
    ids = ids.reshape(4, vocabulary // 2).astype("int32")
    embedded = np.random.default_rng(2).normal(
        size=ids.shape + (3,)).astype("float32")
    out = layer([ids, embedded], training=True).numpy()
    ratio = np.where(np.abs(embedded) > 1e-6, out / embedded, 0)
    row_scale = ratio[..., 0]
    np.testing.assert_allclose(ratio, np.repeat(row_scale[..., None], 3, -1),
                               atol=1e-5)
    by_word = {}
    for word, scale in zip(ids.ravel(), row_scale.ravel()):
        by_word.setdefault(int(word), set()).add(round(float(scale), 4))
    assert all(len(scales) == 1 for scales in by_word.values())
    scales = np.array([next(iter(s)) for s in by_word.values()])
    assert set(np.unique(scales)) <= {0.0, round(1 / 0.75, 4)}
    assert abs((scales == 0).mean() - 0.25) < 0.04  # (2,000 words)
    np.testing.assert_array_equal(layer([ids, embedded], training=False),
                                  embedded)


def test_ar_and_tar_add_their_definition_to_the_loss():
    h = np.random.default_rng(3).normal(size=(2, 6, 4)).astype("float32")
    layer = ActivationRegularization(alpha=2.0, beta=1.5)
    expected = 2.0 * np.mean(h ** 2) + 1.5 * np.mean(
        (h[:, 1:] - h[:, :-1]) ** 2)
    np.testing.assert_allclose(layer.penalty(h), expected, rtol=1e-6)
    inputs = keras.Input((6, 4))
    model = keras.Model(inputs, layer(inputs))
    np.testing.assert_array_equal(model(h, training=True), h)
    (loss,) = model.losses
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    model(h, training=False)
    assert model.losses == []


# -- the next-word app ---------------------------------------------------------

AWD = ["--weight-drop", "0.5", "--locked-dropout", "--embedding-dropout",
       "0.1", "--ar", "2", "--tar", "1"]
TINY = ["--units", "8", "--embedding-dim", "8", "--vocab-size", "300",
        "--sequence-length", "10", "--batch-size", "16", "--seed", "4"]


def train(*args):
    result = CliRunner().invoke(cli, ["next-word", "train", *map(str, args)])
    return result


def test_the_settings_build_their_layers_and_change_no_prediction(tmp_path):
    from nlpseq.registry import APPS

    result = train("--model-dir", tmp_path / "m", "--epochs", "1", *TINY,
                   *AWD)
    assert result.exit_code == 0, result.output
    task = APPS.get("next-word").load(tmp_path / "m")
    names = {layer.name for layer in task.model.layers}
    assert {"word_dropout", "ar", "tar"} <= names
    assert isinstance(task.model.get_layer("dropout_1"), LockedDropout)
    assert {layer.cell.weight_drop
            for layer in task.backbone.recurrent_layers} == {0.5}
    # the same weights without the training-only settings predict the same
    plain_config = dict(task.config, weight_drop=0.0, locked_dropout=False,
                        embedding_dropout=0.0, ar=0.0, tar=0.0)
    plain = type(task)(plain_config)
    plain.preprocessor = task.preprocessor
    plain.model = plain.build_model()
    plain.model.set_weights(task.model.get_weights())
    texts = ["the company said", "in the"]
    assert plain.predict(texts) == task.predict(texts)
    ids = np.array([[5, 9, 12, 7]], "int32")
    np.testing.assert_array_equal(plain.model(ids), task.model(ids))


@pytest.mark.slow
def test_a_resumed_run_with_the_settings_reaches_the_same_weights(
        tmp_path, interrupted_after_first_epoch):
    straight = tmp_path / "straight"
    result = train("--model-dir", straight, "--epochs", "2", *TINY, *AWD)
    assert result.exit_code == 0, result.output
    resumed = tmp_path / "resumed"
    with interrupted_after_first_epoch():
        result = train("--model-dir", resumed, "--epochs", "2", *TINY, *AWD)
    assert result.exit_code == 1
    result = train("--model-dir", resumed, "--resume")
    assert result.exit_code == 0, result.output
    a = keras.saving.load_model(straight / "model.keras")
    b = keras.saving.load_model(resumed / "model.keras")
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_bad_values_are_one_error_line(tmp_path):
    for args, message in ((["--weight-drop", "1.5"], "--weight-drop"),
                          (["--embedding-dropout", "-0.1"],
                           "--embedding-dropout"),
                          (["--ar", "nan"], "--ar")):
        result = train("--model-dir", tmp_path / "m", *TINY, *args)
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), \
            result.output
        assert message in lines[0]
        assert not (tmp_path / "m").exists()
