"""``--average-last N``: a run ends on the mean of the weights of the N
epochs up to the kept one (checkpoint averaging), checked against the
weights of runs stopped after each of those epochs (the same seeded
trajectory), after a kill and a resume too; and its bad values."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from nlpseq.cli import cli

TINY = ["--units", "8", "--embedding-dim", "8", "--vocab-size", "300",
        "--sequence-length", "10", "--batch-size", "16", "--seed", "5",
        "--patience", "0"]


def train(*args):
    return CliRunner().invoke(cli, ["next-word", "train", *map(str, args)])


def weights(folder):
    return keras.saving.load_model(folder / "model.keras").get_weights()


@pytest.fixture(scope="module")
def epoch_weights(tmp_path_factory):
    """The weights after 2 and after 3 epochs of the same seeded run."""
    root = tmp_path_factory.mktemp("epochs")
    found = {}
    for epochs in (2, 3):
        result = train("--model-dir", root / str(epochs), "--epochs", epochs,
                       "--keep", "last", *TINY)
        assert result.exit_code == 0, result.output
        found[epochs] = weights(root / str(epochs))
    return found


def check_mean(folder, epoch_weights):
    for got, a, b in zip(weights(folder), epoch_weights[2], epoch_weights[3]):
        if np.issubdtype(got.dtype, np.floating):
            np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-5,
                                       atol=1e-6)


def test_average_epochs_sets_the_mean_of_the_kept_window(tmp_path):
    """The averaging itself on a small model: the mean of the float
    weights of the epochs ``kept - n + 1 .. kept`` found in the folder."""
    from nlpseq.training import EPOCH_WEIGHTS, average_epochs

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    saved = {}
    for epoch in (1, 2, 3):
        values = [np.full(w.shape, float(epoch * 10 + i), "float32")
                  for i, w in enumerate(model.get_weights())]
        model.set_weights(values)
        model.save_weights(tmp_path / EPOCH_WEIGHTS.format(epoch))
        saved[epoch] = values
    assert average_epochs(model, tmp_path, kept=3, n=2) == [2, 3]
    for got, a, b in zip(model.get_weights(), saved[2], saved[3]):
        np.testing.assert_allclose(got, (a + b) / 2)
    assert average_epochs(model, tmp_path, kept=2, n=5) == [1, 2]
    for got, a, b in zip(model.get_weights(), saved[1], saved[2]):
        np.testing.assert_allclose(got, (a + b) / 2)


@pytest.mark.slow
def test_the_run_ends_on_the_mean_of_the_last_epochs(tmp_path,
                                                     epoch_weights):
    model = tmp_path / "m"
    result = train("--model-dir", model, "--epochs", 3, "--keep", "last",
                   "--average-last", 2, *TINY)
    assert result.exit_code == 0, result.output
    assert "the weights are the mean of epochs 2-3 (--average-last 2)" in \
        result.output
    check_mean(model, epoch_weights)
    # the metrics are those of the averaged model
    metrics = json.loads((model / "metrics.json").read_text())
    from nlpseq.registry import APPS

    task = APPS.get("next-word").load(model)
    again = task.evaluate(str(type(task).default_valid))
    assert again["perplexity"] == pytest.approx(metrics["perplexity"],
                                                rel=1e-4)


@pytest.mark.slow
def test_a_resumed_run_averages_the_same_epochs(
        tmp_path, epoch_weights, interrupted_after_first_epoch):
    model = tmp_path / "m"
    with interrupted_after_first_epoch():
        result = train("--model-dir", model, "--epochs", 3, "--keep",
                       "last", "--average-last", 2, *TINY)
    assert result.exit_code == 1
    result = train("--model-dir", model, "--resume")
    assert result.exit_code == 0, result.output
    check_mean(model, epoch_weights)


def test_bad_values_are_one_error_line(tmp_path):
    for value in ("0", "1", "-2", "x"):
        result = train("--model-dir", tmp_path / "m", "--average-last",
                       value, *TINY)
        assert result.exit_code != 0
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("Error:") and "average-last" in \
            lines[-1], result.output
        assert not (tmp_path / "m").exists()
