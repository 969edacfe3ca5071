"""Classification metrics and their readable tables.

Example:
    >>> report = classification_report([0, 0, 1, 1], [0, 1, 1, 1], ["neg", "pos"])
    >>> report["accuracy"], report["confusion_matrix"]
    (0.75, [[1, 1], [0, 2]])
"""

from __future__ import annotations

import numpy as np


def classification_report(y_true, y_pred, class_names) -> dict:
    """Accuracy, per-class precision/recall/F1, macro-F1, confusion matrix.

    Args:
        y_true, y_pred: class indices.
        class_names: the name of each index.

    Returns:
        A JSON-ready dict; ``confusion_matrix[i][j]`` counts texts of class
        ``i`` predicted as ``j``. A class never predicted has precision 0; one
        absent from ``y_true`` has recall 0 (and counts in macro-F1).
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp = confusion[i, i]
        predicted = confusion[:, i].sum()
        actual = confusion[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = (2 * precision * recall / (precision + recall)
              if precision + recall else 0.0)
        per_class[name] = {"precision": float(precision),
                           "recall": float(recall), "f1": float(f1),
                           "support": int(actual)}
    total = int(confusion.sum())
    return {
        "accuracy": float(np.trace(confusion) / total) if total else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "count": total,
        "per_class": per_class,
        "class_names": list(class_names),
        "confusion_matrix": confusion.tolist(),
    }


def format_report(report) -> str:
    """The report as aligned text tables."""
    names = report["class_names"]
    width = max([len(n) for n in names] + [5])
    lines = [
        f"accuracy  {report['accuracy']:.4f}  ({report['count']} texts)",
        f"macro F1  {report['macro_f1']:.4f}",
        "",
        f"{'class':<{width}}  precision  recall      f1  support",
    ]
    for name in names:
        c = report["per_class"][name]
        lines.append(f"{name:<{width}}  {c['precision']:9.4f}  "
                     f"{c['recall']:6.4f}  {c['f1']:6.4f}  {c['support']:7d}")
    cell = max([len(n) for n in names]
               + [len(str(v)) for row in report["confusion_matrix"]
                  for v in row])
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * width + "".join(f"  {n:>{cell}}" for n in names)]
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"  {v:>{cell}}"
                                                  for v in row))
    return "\n".join(lines)
