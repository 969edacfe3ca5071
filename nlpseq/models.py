"""Keras model classes of the apps (registered for loading).

:class:`Tagger` is a functional model whose loss is computed by the model
itself: the CRF's negative log-likelihood when it holds a
:class:`~nlpseq.layers.CRF` layer (found by type), else the per-token
cross-entropy of its logits. :class:`Translator` computes the per-token
cross-entropy of the target words, optionally with label smoothing.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nlpseq")
class Tagger(keras.Model):
    """A functional tagging model: build it as ``Tagger(inputs, scores)``.

    Targets are tag indices + 1, with 0 for padding (left out of the loss).
    """

    def crf_layer(self):
        """The model's :class:`~nlpseq.layers.CRF` layer, or ``None``."""
        from nlpseq.layers.crf import CRF

        return next((layer for layer in self.layers
                     if isinstance(layer, CRF)), None)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        mask = ops.greater(y, 0)
        tags = ops.maximum(ops.cast(y, "int32") - 1, 0)
        crf = self.crf_layer()
        if crf is not None:
            # (a mean that is 0, not NaN, over an empty batch: a replica's
            # share of a short last batch may be empty)
            likelihood = crf.negative_log_likelihood(y_pred, tags, mask)
            loss = ops.sum(likelihood) / ops.maximum(
                ops.cast(ops.shape(likelihood)[0], likelihood.dtype), 1.0)
        else:
            per_token = keras.losses.sparse_categorical_crossentropy(
                tags, y_pred, from_logits=True)
            weight = ops.cast(mask, per_token.dtype)
            loss = ops.sum(per_token * weight) / ops.maximum(
                ops.sum(weight), 1.0)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return per_replica(loss)


def per_replica(loss):
    """``loss`` divided by the replicas of the ``tf.distribute`` strategy
    in use (1 without one), as Keras' compiled losses are: the replicas'
    gradients are summed, so that each replica's share makes the mean
    over the global batch, and the logged loss is multiplied back."""
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        loss = loss * ops.cast(1.0 / replicas, loss.dtype)
    return loss


def masked_cross_entropy(targets, logits, label_smoothing=0.0):
    """Mean cross-entropy over the real (non-zero) target ids.

    With label smoothing ``e``, the target distribution puts ``1 - e`` on the
    right word and spreads ``e`` evenly over the vocabulary:
    ``(1 - e) * -log p(y) + e * mean_v(-log p(v))``.
    """
    targets = ops.cast(targets, "int32")
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(targets, -1),
                                 axis=-1)[..., 0]
    per_token = -picked
    if label_smoothing:
        per_token = ((1.0 - label_smoothing) * per_token
                     - label_smoothing * ops.mean(log_probs, axis=-1))
    weight = ops.cast(ops.greater(targets, 0), per_token.dtype)
    return ops.sum(per_token * weight) / ops.maximum(ops.sum(weight), 1.0)


@keras.saving.register_keras_serializable(package="nlpseq")
class Translator(keras.Model):
    """A functional encoder-decoder: ``Translator([source, decoder_input],
    logits)``. Targets are target word ids, 0 for padding (left out of the
    loss). ``label_smoothing`` is saved with the model."""

    label_smoothing = 0.0

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        loss = masked_cross_entropy(
            y, y_pred, self.label_smoothing if training else 0.0)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return per_replica(loss)

    def get_config(self):
        config = super().get_config()
        config["label_smoothing"] = self.label_smoothing
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        smoothing = config.pop("label_smoothing", 0.0)
        model = super().from_config(config, custom_objects=custom_objects)
        model.label_smoothing = smoothing
        return model
