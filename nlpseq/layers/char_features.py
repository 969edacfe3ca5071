"""Character-level features of each word, for taggers.

:class:`CharacterFeatures` turns the characters of every token into one
vector per token: an embedding of each character, then either a
bidirectional nlpseq recurrent layer over the characters whose two final
states are concatenated (Lample et al. 2016), or a convolution followed by
max pooling over the characters (Ma & Hovy 2016). Padding characters are
masked in both. Spelling (capitals, suffixes, digits) is what lets a tagger
handle words it has never seen.

Example:
    >>> features = CharacterFeatures(100, mode="lstm", char_dim=25, units=25)
    >>> char_ids = keras.ops.ones((2, 7, 12), dtype="int32")
    >>> features(char_ids).shape   # [batch, time, 2 * units]
    (2, 7, 50)
"""

import keras
from keras import ops

from nlpseq.registry import CELLS

MODES = ("lstm", "cnn")


@keras.saving.register_keras_serializable(package="nlpseq")
class CharacterFeatures(keras.layers.Layer):
    """Character ids ``[batch, time, chars]`` -> features ``[batch, time,
    features]`` (``2 * units`` for ``lstm``, ``units`` filters for ``cnn``).

    Args:
        vocabulary_size: character vocabulary size (0 pads).
        mode: ``"lstm"`` (a bidirectional recurrent layer of ``cell``) or
            ``"cnn"`` (a convolution of ``kernel_size`` characters).
        char_dim: size of the character embeddings.
        units: recurrent units per direction, or convolution filters.
    """

    def __init__(self, vocabulary_size, mode="lstm", char_dim=25, units=25,
                 cell="lstm", kernel_size=3, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.vocabulary_size = int(vocabulary_size)
        self.mode = mode
        self.char_dim = int(char_dim)
        self.units = int(units)
        self.cell = cell
        self.kernel_size = int(kernel_size)
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.char_dim, name="char_embedding")
        if mode == "lstm":
            from nlpseq.layers.bidirectional import Bidirectional

            self.encoder = Bidirectional(
                CELLS.get(cell)(self.units, name=f"char_{cell}"),
                name="char_bidirectional")
        else:
            self.encoder = keras.layers.Conv1D(
                self.units, self.kernel_size, padding="same",
                activation="tanh", name="char_conv")

    def build(self, char_ids_shape):
        self.embedding.build((None, None))
        self.encoder.build((None, None, self.char_dim))
        self.built = True

    def call(self, char_ids, training=False):
        import tensorflow as tf

        shape = ops.shape(char_ids)
        size = 2 * self.units if self.mode == "lstm" else self.units
        flat = ops.reshape(char_ids, (-1, shape[2]))  # [batch*time, chars]
        # Only the real words are encoded (padding words, often half of a
        # batch of sentences, are left out); their features go back in
        # place, zeros elsewhere.
        present = tf.where(ops.any(ops.not_equal(flat, 0), axis=1))
        words = tf.gather_nd(flat, present)
        mask = ops.not_equal(words, 0)
        x = self.embedding(words)
        if self.mode == "lstm":
            features = self.encoder(x, mask=mask, training=training)
        else:
            # padding characters read as zeros, as beyond the word's edge.
            # One blank word goes first and is dropped after: TensorFlow's
            # convolution of an empty batch returns its input's shape.
            x = ops.concatenate(
                [ops.zeros((1, shape[2], self.char_dim), x.dtype), x], axis=0)
            mask = ops.concatenate(
                [ops.ones((1, shape[2]), "bool"), mask], axis=0)
            x = self.encoder(x * ops.cast(mask, x.dtype)[:, :, None])
            x = ops.where(mask[:, :, None], x, ops.full_like(x, -1e9))
            features = tf.reduce_max(x, axis=1)[1:]
        features = tf.scatter_nd(present, features,
                                 tf.stack([tf.shape(flat, out_type=tf.int64)[0],
                                           tf.constant(size, tf.int64)]))
        return ops.reshape(features, (shape[0], shape[1], size))

    def compute_output_shape(self, char_ids_shape):
        size = 2 * self.units if self.mode == "lstm" else self.units
        return tuple(char_ids_shape[:2]) + (size,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary_size": self.vocabulary_size, "mode": self.mode,
            "char_dim": self.char_dim, "units": self.units,
            "cell": self.cell, "kernel_size": self.kernel_size,
        })
        return config
