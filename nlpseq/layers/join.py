"""Per-word features joined to the words, keeping the words' steps.

Keras' ``Concatenate`` masks a step only where *every* input masks it: an
input without a mask (per-word features computed from characters) makes
every step real, padding included, and a recurrent layer after it reads
the padding. A tagger's words then depend on how far their sentence was
padded, that is on the other sentences of the batch. :class:`JoinFeatures`
concatenates on the last axis and passes the **first** input's mask on:
the words' steps are the steps.

Example:
    >>> words = keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    >>> x = JoinFeatures()([words, character_features])  # words' mask
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nlpseq")
class JoinFeatures(keras.layers.Layer):
    """``[x, *features]`` -> their concatenation on the last axis, with
    ``x``'s mask (``None`` if ``x`` has none)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return ops.concatenate(
            [ops.cast(x, self.compute_dtype) for x in inputs], axis=-1)

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        widths = [shape[-1] for shape in input_shape]
        width = None if None in widths else sum(widths)
        return tuple(input_shape[0][:-1]) + (width,)
