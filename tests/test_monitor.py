"""``--monitor``: the kept epoch and early stopping follow the task's own
validation metric (the tagger's entity F1 by default, the classifier's
accuracy on request) instead of the validation loss; the history, the
summary line and the report show it."""

import csv
import json

import pytest
from click.testing import CliRunner

import nlpseq
from nlpseq.cli import cli

NER_TINY = dict(units=16, embedding_dim=16, char_dim=8, char_units=8,
                batch_size=16, epochs=4, patience=0, seed=1,
                learning_rate=0.02)


def history(folder):
    with open(folder / "history.csv", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_the_tagger_keeps_the_epoch_of_the_highest_validation_f1(tmp_path):
    folder = tmp_path / "ner"
    task = nlpseq.train("ner", model_dir=folder, **NER_TINY)
    assert task.config["monitor"] == "f1"
    f1 = [float(row["val_f1"]) for row in history(folder)]
    assert len(f1) == 4 and max(f1) > 0
    best = f1.index(max(f1))
    state = json.loads((folder / "checkpoints" / "state.json").read_text())
    assert (state["monitor"], state["mode"], state["best_epoch"]) == (
        "val_f1", "max", best)
    # the published model is that epoch's: its F1 is the history's best
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["f1"] == pytest.approx(max(f1), abs=1e-6)
    # and the report draws the F1 curve
    page = (folder / "report.html").read_text()
    assert "val_f1" in page


def test_the_classifier_keeps_the_most_accurate_epoch_on_request(tmp_path):
    folder = tmp_path / "sentiment"
    result = CliRunner().invoke(cli, [
        "sentiment", "train", "--model-dir", str(folder), "--units", "4",
        "--embedding-dim", "4", "--epochs", "3", "--patience", "0",
        "--seed", "3", "--monitor", "accuracy"])
    assert result.exit_code == 0, result.output
    accuracy = [float(r["val_accuracy"]) for r in history(folder)]
    best = accuracy.index(max(accuracy))
    assert (f"kept epoch {best + 1}, the highest val_accuracy "
            f"({max(accuracy):.4f})") in result.output
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(max(accuracy), abs=1e-6)


def test_a_monitor_the_family_does_not_have_is_refused(tmp_path):
    result = CliRunner().invoke(cli, [
        "sentiment", "train", "--model-dir", str(tmp_path / "m"),
        "--monitor", "f1"])
    assert result.exit_code != 0
    assert "accuracy" in result.output and "macro_f1" in result.output
    assert not (tmp_path / "m").exists()
