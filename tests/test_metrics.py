"""Tests of nlpseq.metrics against counts made with plain Python loops."""

import json
import re

import numpy as np
import pytest

from nlpseq.metrics import classification_report, format_report

NAMES = ["negative", "neutral", "pos"]


def loop_report(y_true, y_pred, k):
    """Accuracy, per-class scores and confusion matrix, counted by hand."""
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred):
        confusion[t][p] += 1
    scores = []
    for c in range(k):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        scores.append((precision, recall, f1, tp + fn))
    correct = sum(1 for t, p in zip(y_true, y_pred) if t == p)
    return correct / len(y_true), scores, confusion


@pytest.mark.parametrize("seed", range(5))
def test_report_matches_loop_counts(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 200))
    y_true = rng.integers(0, 3, size=n).tolist()
    # Predictions right about 60% of the time, otherwise random.
    y_pred = [t if rng.random() < 0.6 else int(rng.integers(0, 3))
              for t in y_true]
    accuracy, scores, confusion = loop_report(y_true, y_pred, 3)
    report = classification_report(y_true, y_pred, NAMES)
    assert report["count"] == n
    assert report["class_names"] == NAMES
    assert report["confusion_matrix"] == confusion
    assert report["accuracy"] == pytest.approx(accuracy)
    for name, (precision, recall, f1, support) in zip(NAMES, scores):
        entry = report["per_class"][name]
        assert entry["precision"] == pytest.approx(precision)
        assert entry["recall"] == pytest.approx(recall)
        assert entry["f1"] == pytest.approx(f1)
        assert entry["support"] == support
    assert report["macro_f1"] == pytest.approx(
        sum(s[2] for s in scores) / 3)
    # JSON-ready: plain Python numbers only.
    assert json.loads(json.dumps(report)) == report


def test_hand_computed_example():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 2, 1, 1, 2, 2, 0]
    report = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert report["confusion_matrix"] == [[1, 1, 1], [0, 2, 0], [1, 0, 2]]
    assert report["accuracy"] == pytest.approx(5 / 8)
    a, b, c = (report["per_class"][n] for n in "abc")
    assert (a["precision"], a["recall"]) == pytest.approx((1 / 2, 1 / 3))
    assert a["f1"] == pytest.approx(0.4)
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx(
        (2 / 3, 1.0, 0.8))
    assert (c["precision"], c["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert [a["support"], b["support"], c["support"]] == [3, 2, 3]
    assert report["macro_f1"] == pytest.approx((0.4 + 0.8 + 2 / 3) / 3)


def test_class_never_predicted_has_precision_zero():
    y_true = [0, 1, 2, 2, 1, 0]
    y_pred = [0, 0, 2, 2, 0, 0]  # class 1 never predicted
    report = classification_report(y_true, y_pred, NAMES)
    neutral = report["per_class"]["neutral"]
    assert neutral == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                       "support": 2}
    assert report["per_class"]["negative"]["precision"] == pytest.approx(0.5)
    assert report["per_class"]["negative"]["recall"] == 1.0


def test_class_absent_from_truth_has_recall_zero_and_counts_in_macro_f1():
    y_true = [0, 0, 1, 1]
    y_pred = [0, 2, 1, 1]  # class 2 predicted but never true
    report = classification_report(y_true, y_pred, NAMES)
    pos = report["per_class"]["pos"]
    assert pos == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    negative_f1 = 2 * 1.0 * 0.5 / 1.5
    assert report["macro_f1"] == pytest.approx((negative_f1 + 1.0 + 0.0) / 3)


def field_ends(line):
    return [m.end() for m in re.finditer(r"\S+", line)]


def test_format_report_tables():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2] * 2 + [0] * 100
    y_pred = [0, 1, 2, 1, 1, 2, 2, 0] * 2 + [0] * 100
    report = classification_report(y_true, y_pred, NAMES)
    text = format_report(report)
    lines = text.split("\n")
    assert lines[0] == f"accuracy  {report['accuracy']:.4f}  (116 texts)"
    assert lines[1] == f"macro F1  {report['macro_f1']:.4f}"
    header = lines[3]
    assert header.split() == ["class", "precision", "recall", "f1",
                              "support"]
    # One row per class, numbers right-aligned under their headers.
    rows = lines[4:4 + len(NAMES)]
    for name, row in zip(NAMES, rows):
        entry = report["per_class"][name]
        fields = row.split()
        assert fields[0] == name
        assert [float(v) for v in fields[1:4]] == pytest.approx(
            [entry["precision"], entry["recall"], entry["f1"]], abs=5e-5)
        assert int(fields[4]) == entry["support"]
        assert field_ends(row)[1:] == field_ends(header)[1:]
        assert row.index(fields[1]) > len("negative")  # names padded
    # The confusion matrix: header of names, then one row per true class.
    start = lines.index(
        "confusion matrix (rows: true class, columns: predicted)")
    matrix_header, matrix_rows = lines[start + 1], lines[start + 2:]
    assert matrix_header.split() == NAMES
    assert len(matrix_rows) == len(NAMES)
    for name, row, counts in zip(NAMES, matrix_rows,
                                 report["confusion_matrix"]):
        assert row.split() == [name] + [str(v) for v in counts]
        assert field_ends(row)[1:] == field_ends(matrix_header)
    assert report["confusion_matrix"][0][0] == 102  # a 3-digit cell fits


def test_format_report_short_names_and_wide_counts():
    y_true = [0] * 12345 + [1]
    y_pred = [0] * 12345 + [0]
    report = classification_report(y_true, y_pred, ["x", "y"])
    lines = format_report(report).split("\n")
    header = lines[3]
    assert header.startswith("class  precision")  # "class" sets the width
    assert lines[4].startswith("x      ")
    matrix = lines[lines.index(
        "confusion matrix (rows: true class, columns: predicted)") + 1:]
    assert matrix[1].split() == ["x", "12345", "0"]
    assert matrix[2].split() == ["y", "1", "0"]
    assert field_ends(matrix[1])[1:] == field_ends(matrix[0])
    assert field_ends(matrix[2])[1:] == field_ends(matrix[0])
