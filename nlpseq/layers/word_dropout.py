"""Rare-word dropout: teach a model the unknown-word entry.

When every training word is in the vocabulary, the unknown-word embedding
is never trained, yet every new word at test time maps to it. Lample et al.
(2016) replace each word seen once in training by the unknown word with
probability 0.5 during training. :class:`RareWordDropout` does that on
token ids: a vocabulary sorted by frequency puts the rarest words last, so
"rare" is "id >= ``first_rare_id``".

Example:
    >>> layer = RareWordDropout(first_rare_id=5000, rate=0.5)
    >>> ids = layer(ids, training=True)  # some ids >= 5000 become 1
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nlpseq")
class RareWordDropout(keras.layers.Layer):
    """In training, ids ``>= first_rare_id`` become ``unknown_id`` with
    probability ``rate``; at inference, ids pass unchanged.

    Args:
        first_rare_id: the first id of the rare words.
        rate: the replacement probability.
        unknown_id: the unknown-word id.
        seed: seed of the random draws.
    """

    def __init__(self, first_rare_id, rate=0.5, unknown_id=1, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate!r}")
        self.first_rare_id = int(first_rare_id)
        self.rate = float(rate)
        self.unknown_id = int(unknown_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, ids, training=False):
        if not training or self.rate == 0.0:
            return ids
        draw = keras.random.uniform(ops.shape(ids), seed=self.seed_generator)
        replace = ops.logical_and(ids >= self.first_rare_id, draw < self.rate)
        return ops.where(replace, ops.full_like(ids, self.unknown_id), ids)

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        config = super().get_config()
        config.update({"first_rare_id": self.first_rare_id,
                       "rate": self.rate, "unknown_id": self.unknown_id,
                       "seed": self.seed})
        return config
