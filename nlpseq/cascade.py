"""The classifier's cascade: the n-gram model decides alone where it is sure.

A classifier with an n-gram model (``--ngram-buckets``) adds the n-gram
model's logits to the network's. The n-gram model costs a few thousand
operations a text; the recurrent network costs about a million per token.
Where the n-gram model's **margin** (the gap between its two largest
logits: ``|logit|`` for two classes) is above a threshold, the cascade takes
its answer and the network does not run for that text; the other texts of
the batch run through the whole model, as without the cascade.

The threshold is chosen on validation data (:func:`choose_threshold`) and
kept in the model's ``preprocessor.json``; the SavedModel, the ONNX export
and the Python API run :func:`cascaded` with it.

Example:
    >>> import numpy as np
    >>> margins(np.array([[2.0], [-0.5]]))
    array([2. , 0.5])
"""

from __future__ import annotations

import numpy as np

from nlpseq.config import Setting

#: The default accuracy the cascade may give up on the validation data,
#: in points (0.1 = a tenth of a percentage point).
TOLERANCE = 0.1
#: ``cascade``'s tolerance as a setting: a finite number of points, 0 to 100.
TOLERANCE_SETTING = Setting("tolerance", float, TOLERANCE, "accuracy points "
                            "the cascade may lose", minimum=0.0,
                            maximum=100.0)


def margins(logits):
    """The margin of each row of n-gram ``logits`` ``[n, outputs]`` (NumPy):
    ``|logit|`` for one output (two classes, a sigmoid), else the largest
    logit less the second largest."""
    logits = np.asarray(logits, dtype="float64")
    if logits.shape[-1] == 1:
        return np.abs(logits[:, 0])
    top = np.sort(logits, axis=-1)
    return top[:, -1] - top[:, -2]


def choose_threshold(margin, alone_correct, full_correct,
                     tolerance=TOLERANCE):
    """The threshold that lets the n-gram model decide alone on as many texts
    as it can while the accuracy stays within ``tolerance`` points of the
    full model's.

    The texts are taken in order of decreasing margin: the first ``k`` are
    decided by the n-gram model, the others by the full model. ``k`` is the
    largest count for which **every** count up to it keeps the accuracy
    within the tolerance (a safe prefix, not a lucky count after a dip), and
    where the margins allow a cut (ties stay together).

    Args:
        margin: ``[n]`` the n-gram model's margins (:func:`margins`).
        alone_correct: ``[n]`` whether the n-gram model alone is right.
        full_correct: ``[n]`` whether the full model is right.
        tolerance: accuracy points the cascade may lose (``0.1``).

    Returns:
        A dict: ``threshold`` (texts with a margin above it are decided by
        the n-gram model), ``decided_alone`` (the share of the texts decided
        so), ``accuracy`` and ``full_accuracy`` (on these texts),
        ``tolerance`` and ``texts``.
    """
    margin = np.asarray(margin, dtype="float64")
    alone = np.asarray(alone_correct, dtype="float64")
    full = np.asarray(full_correct, dtype="float64")
    n = len(margin)
    if n == 0 or not (len(alone) == len(full) == n):
        raise ValueError("choose_threshold needs one margin and two "
                         "outcomes for each of at least one text")
    if not np.all(np.isfinite(margin)):
        raise ValueError("the n-gram model's margins are not all finite")
    order = np.argsort(-margin, kind="stable")
    margin, alone, full = margin[order], alone[order], full[order]
    # accuracy when the first k texts (k = 0..n) are decided alone
    gains = np.concatenate([[0.0], np.cumsum(alone - full)])
    accuracy = (full.sum() + gains) / n
    floor = full.mean() - tolerance / 100.0
    safe = np.flatnonzero(accuracy < floor - 1e-12)
    last = (safe[0] - 1) if len(safe) else n
    # a cut only between two different margins
    cuttable = np.concatenate([[True], margin[:-1] > margin[1:], [True]])
    k = int(np.flatnonzero(cuttable[:last + 1])[-1])
    if k == 0:
        threshold = float(margin[0])  # (none above it)
    elif k == n:
        threshold = -1.0  # (every margin is at least 0)
    else:
        threshold = float((margin[k - 1] + margin[k]) / 2.0)
    return {"threshold": threshold, "decided_alone": k / n,
            "accuracy": float(accuracy[k]),
            "full_accuracy": float(full.mean()),
            "tolerance": float(tolerance), "texts": n}


def cascaded(ids, ngram_logits, network, threshold, to_probabilities):
    """The cascade in the graph: class probabilities ``[batch, classes]``.

    Args:
        ids: ``[batch, time]`` int32 token ids.
        ngram_logits: maps ``ids`` to the n-gram model's logits
            ``[batch, outputs]``.
        network: maps ids of some of the rows ``[rows, time]`` to the full
            model's probabilities ``[rows, classes]`` (called once, on the
            rows whose margin is at most ``threshold``, which may be none).
        threshold: texts with a margin above it are decided by the n-gram
            model.
        to_probabilities: maps n-gram logits ``[batch, outputs]`` to class
            probabilities ``[batch, classes]``.
    """
    import tensorflow as tf

    logits = tf.cast(ngram_logits(ids), tf.float32)
    if logits.shape[-1] == 1:
        margin = tf.abs(logits[:, 0])
    else:
        top = tf.math.top_k(logits, k=2).values
        margin = top[:, 0] - top[:, 1]
    rest = tf.cast(tf.where(margin <= threshold)[:, 0], tf.int32)
    probabilities = tf.cast(to_probabilities(logits), tf.float32)
    computed = tf.cast(network(tf.gather(ids, rest)), tf.float32)
    return tf.tensor_scatter_nd_update(probabilities, rest[:, None],
                                       computed)


__all__ = ["TOLERANCE", "cascaded", "choose_threshold", "margins"]
