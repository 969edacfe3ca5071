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


@keras.saving.register_keras_serializable(package="nlpseq")
class NgramLogits(keras.layers.Layer):
    """A linear model over the set of a text's words and word bigrams, its
    logits added to a network's in inference.

    Inputs ``[token_ids, logits]`` (``[batch, time]``, ``[batch, outputs]``).
    The features of a text are the distinct ids among its token ids (not 0,
    padding) and ``vocabulary + b`` for the distinct bucket ids ``b`` of
    :class:`HashedBigrams`: a binary bag of words and bigrams, as in the
    NB-weighted logistic regression of Wang & Manning (2012). Its logits::

        ngram = bias + sum over the text's features f of table[f]

    The weights are not trained with the network: they are fitted
    beforehand (:func:`nlpseq.ngram_model.fit_ngram_logits`). In training
    the layer gives ``activation(logits)``: the network learns alone; in
    inference ``activation(logits + weight * ngram)``, an ensemble of the
    two.

    Args:
        vocabulary: the number of token ids.
        buckets: the number of bigram bucket ids (:class:`HashedBigrams`).
        outputs: the number of logits.
        weight: the weight of the n-gram model's logits.
        activation: ``sigmoid`` or ``softmax`` (applied to the sum).
    """

    def __init__(self, vocabulary, buckets, outputs=1, weight=1.0,
                 activation="sigmoid", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.vocabulary, self.buckets = int(vocabulary), int(buckets)
        self.outputs, self.weight = int(outputs), float(weight)
        self.activation = keras.activations.get(activation)
        self._activation_name = activation
        self.bigrams = HashedBigrams(self.buckets, self.vocabulary,
                                     name="ngram_bigrams")

    @property
    def features_size(self):
        return self.vocabulary + self.buckets

    def build(self, shapes=None):
        self.table = self.add_weight(
            name="table", shape=(self.features_size, self.outputs),
            initializer="zeros", trainable=False)
        self.bias = self.add_weight(name="bias", shape=(self.outputs,),
                                    initializer="zeros", trainable=False)
        self.built = True

    def features(self, ids):
        """``(features, present)``: each row's feature ids, sorted
        ``[batch, 2 * time]``, and whether each is one of the row's
        distinct features (not padding, not a repeat)."""
        ids = ops.cast(ids, "int32")
        bigrams = self.bigrams(ids)
        features = ops.concatenate(
            [ids, ops.where(bigrams > 0, bigrams + self.vocabulary, 0)],
            axis=1)
        features = ops.sort(features, axis=-1)
        new = ops.concatenate(
            [ops.ones_like(features[:, :1], "bool"),
             ops.not_equal(features[:, 1:], features[:, :-1])], axis=1)
        return features, ops.logical_and(new, features > 0)

    def ngram_logits(self, ids):
        """The n-gram model's logits ``[batch, outputs]``."""
        features, present = self.features(ids)
        weights = ops.take(self.table, features, axis=0)
        weights = weights * ops.cast(present, weights.dtype)[..., None]
        return ops.sum(weights, axis=1) + self.bias

    def call(self, inputs, training=None):
        ids, logits = inputs
        logits = ops.cast(logits, "float32")
        if not training:
            logits = logits + self.weight * self.ngram_logits(ids)
        return self.activation(logits)

    def compute_output_shape(self, shapes):
        return shapes[1]

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary": self.vocabulary,
                       "buckets": self.buckets, "outputs": self.outputs,
                       "weight": self.weight,
                       "activation": self._activation_name})
        return config
