"""Hashed word bigrams: the bag-of-n-grams features of fastText.

Joulin et al. (2017) classify text with the mean of word and word-bigram
embeddings, the bigrams hashed into a fixed number of buckets; on IMDB that
linear model alone is a strong baseline. :class:`HashedBigrams` turns token
ids into bigram bucket ids inside the model, so a model fed token ids (and a
SavedModel fed raw strings) needs nothing more; an ``Embedding`` with
``mask_zero=True`` and a masked mean then make the bag.

Example:
    >>> import numpy as np
    >>> HashedBigrams(1000)(np.array([[5, 7, 9, 0]])).shape
    TensorShape([1, 4])
"""

import keras
from keras import ops

#: Odd multiplier of the hash (MurmurHash2's), below 2**31 so that a key
#: below 2**31 times it fits in 63 bits.
MULTIPLIER = 1540483477


@keras.saving.register_keras_serializable(package="nlpseq")
class HashedBigrams(keras.layers.Layer):
    """Token ids ``[batch, time]`` to bigram bucket ids ``[batch, time]``.

    Step ``t`` holds the bucket of the pair (token ``t-1``, token ``t``), with
    id 0 standing before the first token::

        key    = (id_{t-1} * vocabulary + id_t) mod 2**31
        bucket = 1 + (key * MULTIPLIER mod 2**31) mod (buckets - 1)

    and 0 where token ``t`` is padding (id 0), so ``Embedding(buckets, ...,
    mask_zero=True)`` masks what the token ids masked.

    Args:
        buckets: number of bucket ids, padding included (at least 2).
        vocabulary: the number of token ids (pairs then have distinct keys
            while ``vocabulary ** 2 <= 2**31``).
    """

    def __init__(self, buckets, vocabulary=1 << 15, **kwargs):
        super().__init__(**kwargs)
        if int(buckets) < 2:
            raise ValueError(
                f"Received an invalid value for argument `buckets`, expected "
                f"an integer >= 2, got {buckets!r}.")
        self.buckets = int(buckets)
        self.vocabulary = int(vocabulary)
        self.supports_masking = True
        self.built = True

    def call(self, ids):
        ids = ops.cast(ids, "int64")
        previous = ops.pad(ids[:, :-1], [[0, 0], [1, 0]])
        key = ops.mod(previous * self.vocabulary + ids, 1 << 31)
        hashed = ops.mod(key * MULTIPLIER, 1 << 31)
        bucket = 1 + ops.mod(hashed, self.buckets - 1)
        return ops.cast(ops.where(ids > 0, bucket, 0), "int32")

    def compute_output_shape(self, shape):
        return shape

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({"buckets": self.buckets,
                       "vocabulary": self.vocabulary})
        return config
