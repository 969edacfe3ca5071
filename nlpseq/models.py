"""Keras model classes of the apps (registered for loading).

:class:`Tagger` is a functional model whose loss is computed by the model
itself: the CRF's negative log-likelihood when it ends in a layer named
``crf``, else the per-token cross-entropy of its logits.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nlpseq")
class Tagger(keras.Model):
    """A functional tagging model: build it as ``Tagger(inputs, scores)``.

    Targets are tag indices + 1, with 0 for padding (left out of the loss).
    """

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        mask = ops.greater(y, 0)
        tags = ops.maximum(ops.cast(y, "int32") - 1, 0)
        if any(layer.name == "crf" for layer in self.layers):
            loss = ops.mean(self.get_layer("crf").negative_log_likelihood(
                y_pred, tags, mask))
        else:
            per_token = keras.losses.sparse_categorical_crossentropy(
                tags, y_pred, from_logits=True)
            weight = ops.cast(mask, per_token.dtype)
            loss = ops.sum(per_token * weight) / ops.maximum(
                ops.sum(weight), 1.0)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss
