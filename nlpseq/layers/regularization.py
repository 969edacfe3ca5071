"""The regularizers of AWD-LSTM (Merity, Keskar and Socher 2017,
"Regularizing and Optimizing LSTM Language Models") besides the weight
drop of the recurrent kernel (``weight_drop`` of the cells): each a layer
that changes nothing at inference.

- :class:`LockedDropout` — variational dropout on a sequence: one mask per
  sequence, the same at every time step (Gal and Ghahramani 2016).
- :class:`EmbeddingDropout` — whole words dropped: every occurrence of a
  dropped word in the batch reads a zero embedding (Gal and Ghahramani
  2016, §4.2).
- :class:`ActivationRegularization` — AR and TAR: ``alpha`` times the mean
  square of a layer's outputs, and ``beta`` times the mean square of their
  change from one step to the next, added to the loss.

Example:
    >>> x = EmbeddingDropout(0.1)([ids, embedding(ids)], training=True)
    >>> x = LockedDropout(0.4)(lstm(x), training=True)
"""

import keras
from keras import ops


def _check_rate(rate):
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    return rate


@keras.saving.register_keras_serializable(package="nlpseq")
class LockedDropout(keras.layers.Layer):
    """Dropout of ``[batch, time, features]`` with one mask per sequence:
    a feature dropped at one step is dropped at every step (kept ones
    scaled by ``1 / (1 - rate)``); identity at inference.

    Args:
        rate: the fraction of features dropped.
        seed: seed of the masks.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _check_rate(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        shape = ops.shape(inputs)
        mask = keras.random.dropout(
            ops.ones((shape[0], 1, shape[2]), inputs.dtype), self.rate,
            seed=self.seed_generator)
        return inputs * mask

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="nlpseq")
class EmbeddingDropout(keras.layers.Layer):
    """Called on ``[ids, embedded]``: in training, each word of the
    vocabulary is dropped with probability ``rate`` for the whole batch
    (its embedding rows read zero wherever it occurs, the others scaled by
    ``1 / (1 - rate)``); identity at inference.

    Args:
        vocabulary_size: the ids' range.
        rate: the fraction of words dropped.
        seed: seed of the masks.
    """

    def __init__(self, vocabulary_size, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.rate = _check_rate(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=False):
        ids, embedded = inputs
        if not training or self.rate == 0.0:
            return embedded
        keep = keras.random.dropout(
            ops.ones((self.vocabulary_size,), embedded.dtype), self.rate,
            seed=self.seed_generator)
        return embedded * ops.expand_dims(ops.take(keep, ids), -1)

    def compute_output_shape(self, shapes):
        return shapes[1]

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[1]

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size,
                       "rate": self.rate, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="nlpseq")
class ActivationRegularization(keras.layers.Layer):
    """Identity on ``[batch, time, features]`` that, in training, adds
    ``alpha * mean(h²) + beta * mean((h_t - h_{t-1})²)`` to the model's
    losses (AR and TAR; the means over every entry, as AWD-LSTM takes
    them).

    Args:
        alpha: the weight of activation regularization (AR).
        beta: the weight of temporal activation regularization (TAR).
    """

    def __init__(self, alpha=0.0, beta=0.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.beta = float(beta)
        if self.alpha < 0 or self.beta < 0:
            raise ValueError(f"alpha and beta must be 0 or more, got "
                             f"{alpha!r} and {beta!r}")
        self.supports_masking = True
        self.built = True

    def penalty(self, outputs):
        """The value added to the loss for ``outputs``."""
        outputs = ops.cast(outputs, "float32")
        total = ops.convert_to_tensor(0.0)
        if self.alpha:
            total = total + self.alpha * ops.mean(ops.square(outputs))
        if self.beta:
            change = outputs[:, 1:] - outputs[:, :-1]
            total = total + self.beta * ops.mean(ops.square(change))
        return total

    def call(self, inputs, training=False):
        if training and (self.alpha or self.beta):
            self.add_loss(self.penalty(inputs))
        return inputs

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta})
        return config


__all__ = ["ActivationRegularization", "EmbeddingDropout", "LockedDropout"]
