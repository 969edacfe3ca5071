"""Fitting the NB-weighted logistic regression of a classifier's
:class:`~nlpseq.layers.NgramLogits` layer (``--ngram-buckets``).

Wang & Manning (2012) scale a text's binary word and bigram features by
their naive-Bayes log-count ratios and fit a logistic regression on them: on
sentiment a linear model that rivals far larger ones. For class ``k`` (the
positive class of a binary classifier; each class against the others with
more), over the training texts' binary feature rows ``x``::

    p = 1 + sum of x over the texts of class k
    q = 1 + sum of x over the other texts
    r = log((p / sum(p)) / (q / sum(q)))
    z = (x * r) . w + b
    minimize  mean(log(1 + exp(-y z)))  +  |w|^2 / (2 C n)

(``y`` = ±1, ``n`` texts: liblinear's ``C``). The objective is convex; it is
minimized over the whole training set at once with Adam. The layer's table
holds ``r * w`` and its bias ``b``: its logits are the model's ``z``.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from nlpseq.training import pad

LOG = logging.getLogger(__name__)


def feature_rows(layer, x, chunk=256):
    """``(rows, columns)``: the distinct features of each token-id row of
    ``x`` (a list of 1-D arrays), as the layer computes them."""
    rows, columns = [], []
    for start in range(0, len(x), chunk):
        features, present = (np.asarray(a) for a in
                             layer.features(pad(x[start:start + chunk])))
        row, position = np.nonzero(present)
        rows.append(row + start)
        columns.append(features[row, position])
    if not rows:
        return np.zeros(0, "int64"), np.zeros(0, "int64")
    return (np.concatenate(rows).astype("int64"),
            np.concatenate(columns).astype("int64"))


def nb_ratios(rows, columns, targets, size):
    """The log-count ratios ``[size, outputs]`` of binary feature rows
    (``targets``: ``[texts, outputs]`` of 0/1)."""
    ratios = np.zeros((size, targets.shape[1]), "float64")
    for k in range(targets.shape[1]):
        positive = targets[rows, k] > 0
        p = 1.0 + np.bincount(columns[positive], minlength=size)
        q = 1.0 + np.bincount(columns[~positive], minlength=size)
        ratios[:, k] = np.log(p / p.sum()) - np.log(q / q.sum())
    return ratios.astype("float32")


def fit_logistic(rows, columns, targets, ratios, c=1.0, iterations=300,
                 learning_rate=0.05):
    """``(w, b, loss)``: the weights ``[size, outputs]`` and biases
    ``[outputs]`` that minimize the objective of the module's docstring
    for each output, and the objective at them."""
    import tensorflow as tf

    count, outputs = targets.shape
    size = ratios.shape[0]
    order = np.lexsort((columns, rows))
    x = tf.SparseTensor(np.stack([rows[order], columns[order]], 1),
                        tf.ones(len(rows)), (count, size))
    y = tf.constant(targets, tf.float32)
    r = tf.constant(ratios)
    w = tf.Variable(tf.zeros((size, outputs)))
    b = tf.Variable(tf.zeros((outputs,)))
    penalty = 1.0 / (2.0 * c * count)
    optimizer = tf.keras.optimizers.Adam(learning_rate)

    def objective():
        z = tf.sparse.sparse_dense_matmul(x, r * w) + b
        loss = tf.reduce_mean(tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(y, z), axis=1))
        return loss + penalty * tf.reduce_sum(w * w)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = objective()
        optimizer.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))
        return loss

    for _ in range(iterations):
        step()
    return w.numpy(), b.numpy(), float(objective())


def fit_ngram_logits(layer, x, targets, c=1.0, iterations=300):
    """Fit ``layer`` (an :class:`~nlpseq.layers.NgramLogits`) on token-id
    rows ``x`` and 0/1 ``targets`` ``[texts, outputs]``; returns the
    fitted model's accuracy on them (for the log)."""
    start = time.perf_counter()
    rows, columns = feature_rows(layer, x)
    targets = np.asarray(targets, "float32")
    ratios = nb_ratios(rows, columns, targets, layer.features_size)
    w, b, loss = fit_logistic(rows, columns, targets, ratios, c, iterations)
    table = ratios * w
    layer.table.assign(table)
    layer.bias.assign(b)
    z = np.zeros(targets.shape, "float64")
    np.add.at(z, rows, table[columns])
    z += b
    if targets.shape[1] == 1:
        accuracy = float(np.mean((z[:, 0] > 0) == (targets[:, 0] > 0)))
    else:
        accuracy = float(np.mean(np.argmax(z, 1) == np.argmax(targets, 1)))
    LOG.info("Fitted the n-gram model: %d texts, %d distinct features "
             "present, objective %.4f, training accuracy %.4f (%.0f s)",
             len(x), len(np.unique(columns)), loss, accuracy,
             time.perf_counter() - start)
    return accuracy
