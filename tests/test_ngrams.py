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
