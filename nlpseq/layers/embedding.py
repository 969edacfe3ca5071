"""An embedding that is also the output layer (tied input/output weights).

:class:`TiedEmbedding` maps token ids to vectors like ``keras.layers.Embedding``
and, called with ``reverse=True``, maps vectors back to one logit per
vocabulary entry with the transposed matrix: ``logits = h E^T + b``. Sharing
the matrix (Press & Wolf 2017; Inan et al. 2017) halves a language model's
parameters and usually lowers its perplexity.

Example:
    >>> import keras
    >>> embedding = TiedEmbedding(1000, 64)
    >>> ids = keras.Input((None,), dtype="int32")
    >>> h = keras.layers.LSTM(64, return_sequences=True)(embedding(ids))
    >>> logits = embedding(h, reverse=True)  # [batch, time, 1000]
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nlpseq")
class TiedEmbedding(keras.layers.Layer):
    """Token ids to vectors, and (``reverse=True``) vectors to logits.

    Args:
        input_dim: the vocabulary size.
        output_dim: the size of the vectors.
        mask_zero: id 0 is padding (the forward call emits a mask).
        use_bias: add a learned bias per vocabulary entry to the logits.
        embeddings_initializer: initializer of the shared matrix.

    Call arguments:
        inputs: token ids (forward) or vectors ``[..., output_dim]``
            (``reverse=True``).
        reverse: project vectors onto the vocabulary (logits in float32,
            also under a mixed precision policy).
    """

    def __init__(self, input_dim, output_dim, mask_zero=False, use_bias=True,
                 embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.mask_zero = bool(mask_zero)
        self.use_bias = bool(use_bias)
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer)
        self.supports_masking = True

    def build(self, input_shape=None):
        if self.built:
            return
        # (the weights are read at full precision: not autocast)
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer, autocast=False)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.input_dim,),
                                        initializer="zeros", autocast=False)
        self.built = True

    def call(self, inputs, reverse=False):
        if not reverse:
            return ops.cast(ops.take(self.embeddings,
                                     ops.cast(inputs, "int32"), axis=0),
                            self.compute_dtype)
        # the logits in float32 also under mixed precision (a softmax over
        # the vocabulary follows)
        logits = ops.matmul(ops.cast(inputs, "float32"),
                            ops.transpose(self.embeddings))
        if self.use_bias:
            logits = logits + self.bias
        return logits

    def compute_mask(self, inputs, mask=None):
        if "int" not in keras.backend.standardize_dtype(inputs.dtype):
            return mask  # reverse: the vectors' own (time) mask
        return ops.not_equal(inputs, 0) if self.mask_zero else None

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            shape = tuple(inputs.shape[:-1]) + (self.input_dim,)
        else:
            shape = tuple(inputs.shape) + (self.output_dim,)
        return keras.KerasTensor(
            shape, dtype="float32" if reverse else self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
            "use_bias": self.use_bias,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer),
        })
        return config
