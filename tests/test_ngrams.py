"""HashedBigrams against a NumPy implementation of its formula."""

import keras
import numpy as np
import pytest

from nlpseq.layers import HashedBigrams
from nlpseq.layers.ngrams import MULTIPLIER


def numpy_bigrams(ids, buckets, vocabulary):
    out = np.zeros_like(ids)
    for b, row in enumerate(ids):
        previous = 0
        for t, token in enumerate(row):
            if token:
                key = (int(previous) * vocabulary + int(token)) % 2**31
                out[b, t] = 1 + (key * MULTIPLIER % 2**31) % (buckets - 1)
            previous = token
    return out


def test_buckets_follow_the_formula_and_padding_stays_zero():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30000, size=(4, 9))
    ids[1, 6:] = 0  # right padding
    ids[2, :3] = 0  # left padding
    layer = HashedBigrams(1000, vocabulary=30000)
    got = keras.ops.convert_to_numpy(layer(ids))
    np.testing.assert_array_equal(got, numpy_bigrams(ids, 1000, 30000))
    assert got.dtype == np.int32
    assert got.min() >= 0 and got.max() < 1000
    assert (got[1, 6:] == 0).all() and (got[2, :3] == 0).all()
    assert (got[ids > 0] > 0).all()


def test_the_pair_decides_the_bucket():
    layer = HashedBigrams(10 ** 6, vocabulary=100)
    got = keras.ops.convert_to_numpy(layer(np.array([[5, 7, 5, 7, 9, 7]])))
    assert got[0, 1] == got[0, 3]  # (5, 7) twice
    assert len({got[0, 0], got[0, 1], got[0, 2], got[0, 4], got[0, 5]}) == 5


def test_config_round_trip_and_bad_buckets():
    layer = HashedBigrams(77, vocabulary=500, name="b")
    again = HashedBigrams.from_config(layer.get_config())
    assert (again.buckets, again.vocabulary, again.name) == (77, 500, "b")
    with pytest.raises(ValueError, match="buckets.*got 1"):
        HashedBigrams(1)


# -- NgramLogits and its NB-weighted logistic regression ----------------------


def numpy_features(ids, buckets, vocabulary):
    """Each row's set of features: its token ids and vocabulary + its
    bigram buckets (padding excluded)."""
    bigrams = numpy_bigrams(ids, buckets, vocabulary)
    return [{int(t) for t in row if t} | {vocabulary + int(b) for b in brow
                                          if b}
            for row, brow in zip(ids, bigrams)]


def test_ngram_logits_sum_the_table_over_each_texts_distinct_features():
    from nlpseq.layers import NgramLogits

    rng = np.random.default_rng(1)
    ids = rng.integers(1, 6, size=(5, 8))  # a small vocabulary: repeats
    ids[1, 5:] = 0
    ids[3, :] = 0  # an empty text
    layer = NgramLogits(6, 11, outputs=2, activation="softmax")
    layer.build()
    table = rng.normal(size=(17, 2)).astype("float32")
    layer.table.assign(table)
    layer.bias.assign(np.array([0.5, -0.25], "float32"))
    expected = np.array([table[sorted(f)].sum(0) if f else np.zeros(2)
                         for f in numpy_features(ids, 11, 6)]) + [0.5, -0.25]
    got = keras.ops.convert_to_numpy(layer.ngram_logits(ids))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    logits = rng.normal(size=(5, 2)).astype("float32")
    trained = keras.ops.convert_to_numpy(layer([ids, logits], training=True))
    inferred = keras.ops.convert_to_numpy(layer([ids, logits]))
    np.testing.assert_allclose(trained, keras.ops.convert_to_numpy(
        keras.activations.softmax(logits)), rtol=1e-6)
    np.testing.assert_allclose(inferred, keras.ops.convert_to_numpy(
        keras.activations.softmax(logits + expected)), rtol=1e-5, atol=1e-6)
    again = NgramLogits.from_config(layer.get_config())
    assert (again.vocabulary, again.buckets, again.outputs, again.weight) \
        == (6, 11, 2, 1.0)


def test_nb_ratios_and_the_fitted_regression_are_optimal():
    from nlpseq.layers import NgramLogits
    from nlpseq.ngram_model import (
        feature_rows,
        fit_logistic,
        fit_ngram_logits,
        nb_ratios,
    )

    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, size=60)
    # class 1 texts use words 2..6 more, class 0 words 5..9
    x = [rng.integers(2, 7, size=rng.integers(1, 9)) if y else
         rng.integers(5, 10, size=rng.integers(1, 9)) for y in labels]
    layer = NgramLogits(10, 13)
    layer.build()
    rows, columns = feature_rows(layer, x, chunk=7)
    sets = [numpy_features(np.asarray([row]), 13, 10)[0] for row in x]
    dense = np.zeros((60, 23))
    for i, features in enumerate(sets):
        dense[i, sorted(features)] = 1
    got = np.zeros((60, 23))
    got[rows, columns] = 1
    np.testing.assert_array_equal(got, dense)
    assert len(rows) == dense.sum()  # each feature once

    targets = labels[:, None].astype("float32")
    ratios = nb_ratios(rows, columns, targets, 23)
    p = 1 + dense[labels == 1].sum(0)
    q = 1 + dense[labels == 0].sum(0)
    np.testing.assert_allclose(
        ratios[:, 0], np.log(p / p.sum() / (q / q.sum())), rtol=1e-5)

    c = 0.5
    w, b, loss = fit_logistic(rows, columns, targets, ratios, c=c,
                              iterations=3000, learning_rate=0.05)
    xr = dense * ratios[:, 0]
    sign = 2 * labels - 1

    def objective(w, b):
        z = xr @ w + b
        return (np.mean(np.logaddexp(0, -sign * z))
                + (w @ w) / (2 * c * len(labels)))

    # the gradient (NumPy, from the definition) vanishes at the fit
    z = xr @ w[:, 0] + b[0]
    g = -sign / (1 + np.exp(sign * z)) / len(labels)
    grad_w = xr.T @ g + w[:, 0] / (c * len(labels))
    start_w = xr.T @ (-sign * 0.5 / len(labels))
    assert np.abs(grad_w).max() < 1e-3 * np.abs(start_w).max()
    assert abs(g.sum()) < 1e-3 * abs((-sign * 0.5).mean())
    assert loss == pytest.approx(objective(w[:, 0], b[0]), rel=1e-4)
    assert objective(w[:, 0], b[0]) < objective(np.zeros(23), 0.0)

    accuracy = fit_ngram_logits(layer, x, targets, c=c, iterations=300)
    logits = keras.ops.convert_to_numpy(layer.ngram_logits(
        keras.ops.convert_to_tensor(np.stack(
            [np.pad(r, (0, 8 - len(r))) for r in x]).astype("int32"))))
    table = keras.ops.convert_to_numpy(layer.table)[:, 0]
    np.testing.assert_allclose(
        logits[:, 0], dense @ table + keras.ops.convert_to_numpy(
            layer.bias)[0], rtol=1e-4, atol=1e-4)
    assert (table[dense.sum(0) == 0] == 0).all()  # unseen: no weight
    assert accuracy == np.mean((logits[:, 0] > 0) == (labels == 1))
    assert accuracy > 0.8
