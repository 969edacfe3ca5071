"""Keras model classes of the apps (registered for loading).

:class:`Tagger` is a functional model whose loss is computed by the model
itself: the CRF's negative log-likelihood when it holds a
:class:`~nlpseq.layers.CRF` layer (found by type), else the per-token
cross-entropy of its logits. :class:`Translator` computes the per-token
cross-entropy of the target words, optionally with label smoothing.
"""

import keras
import numpy as np
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


@keras.saving.register_keras_serializable(package="nlpseq")
class LanguageModel(keras.Model):
    """A functional language model: ``LanguageModel(ids, logits)``, whose
    training may use a sampled softmax (:meth:`sample_softmax`).

    With ``sampled`` > 0, a training step reads only the hidden states (the
    output layer's inputs ``h``) and computes a softmax over the true next
    token and ``S = sampled`` distinct tokens drawn from the log-uniform
    (Zipfian) distribution over the ids, which are in order of frequency:
    ``P(c) = log((c + 2) / (c + 1)) / log(V + 1)`` (Jean et al., 2015).
    Each logit ``h·w_c + b_c`` is corrected by ``-log q(c)``, ``q(c)`` the
    probability that ``c`` is drawn (:func:`inclusion`); a drawn token that
    is the true one is left out of that row. The draws of a step depend
    only on the seed and the optimizer's step count, so a resumed run draws
    what the uninterrupted run drew. Every other call -- validation,
    evaluation, prediction -- computes the logits over the whole vocabulary:
    the loss they report is exact. Targets are token ids, 0 for padding
    (left out of the loss).
    """

    sampled = 0
    sampling_seed = 0

    def sample_softmax(self, hidden, output, count, seed=0):
        """Train with a sampled softmax of ``count`` tokens (0: the full
        softmax).

        Args:
            hidden: a model (sharing this model's layers) from the ids to
                the output layer's inputs ``[batch, time, features]``.
            output: a function returning the output layer's ``(weights
                [vocabulary, features], biases [vocabulary])``.
            seed: the draws' seed.
        """
        # (kept out of Keras' tracking: the layers are this model's own)
        self.__dict__["_sampled_parts"] = (hidden, output)
        self.sampled = int(count)
        self.sampling_seed = int(seed)

    def call(self, inputs, training=None, mask=None, **kwargs):
        if training and self.sampled:
            hidden, _ = self.__dict__["_sampled_parts"]
            return hidden(inputs, training=True)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        if training and self.sampled:
            loss = self.sampled_loss(y, y_pred)
        else:
            loss = masked_cross_entropy(y, y_pred)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return per_replica(loss)

    def candidates(self, vocabulary):
        """This step's ``sampled`` distinct draws ``[S]`` (int32) from the
        log-uniform distribution over ``vocabulary`` ids: the ``S`` largest
        of ``log P(c) + g_c`` with Gumbel noise ``g`` (sampling without
        replacement)."""
        import tensorflow as tf

        step = tf.cast(self.optimizer.iterations, tf.int32)
        uniform = tf.random.stateless_uniform(
            [vocabulary], seed=tf.stack([self.sampling_seed, step]),
            minval=1e-20, maxval=1.0)
        gumbel = -tf.math.log(-tf.math.log(uniform))
        log_p = tf.constant(np.log(log_uniform(vocabulary)), tf.float32)
        return tf.math.top_k(log_p + gumbel, k=self.sampled).indices

    def log_expected_count(self, ids, vocabulary):
        """``log`` of the probability that id ``c`` is among the ``S``
        draws: ``1 - (1 - P(c)) ** T``, with ``T`` the number of draws with
        replacement that give ``S`` distinct ids on average."""
        import tensorflow as tf

        table = self.__dict__.get("_log_inclusion")
        if table is None or len(table) != vocabulary:
            table = np.log(inclusion(log_uniform(vocabulary), self.sampled))
            self.__dict__["_log_inclusion"] = table
        return tf.gather(tf.constant(table, tf.float32), ids)

    def sampled_loss(self, targets, hidden):
        """Mean sampled-softmax loss over the real (non-zero) targets."""
        import tensorflow as tf

        _, output = self.__dict__["_sampled_parts"]
        weights, biases = output()
        weights = tf.cast(weights, tf.float32)
        biases = tf.cast(biases, tf.float32)
        vocabulary = int(weights.shape[0])
        h = tf.cast(tf.reshape(hidden, [-1, tf.shape(hidden)[-1]]),
                    tf.float32)
        labels = tf.cast(tf.reshape(targets, [-1]), tf.int32)
        drawn = self.candidates(vocabulary)
        true = (tf.reduce_sum(h * tf.gather(weights, labels), axis=-1)
                + tf.gather(biases, labels)
                - self.log_expected_count(labels, vocabulary))
        others = (tf.matmul(h, tf.gather(weights, drawn), transpose_b=True)
                  + tf.gather(biases, drawn)
                  - self.log_expected_count(drawn, vocabulary))
        hits = tf.equal(labels[:, None], drawn[None, :])
        others = tf.where(hits, tf.constant(-1e9, tf.float32), others)
        logits = tf.concat([true[:, None], others], axis=1)
        per_token = tf.reduce_logsumexp(logits, axis=1) - true
        weight = tf.cast(labels > 0, tf.float32)
        return tf.reduce_sum(per_token * weight) / tf.maximum(
            tf.reduce_sum(weight), 1.0)


def log_uniform(vocabulary):
    """``P(c) = log((c + 2) / (c + 1)) / log(V + 1)`` for ``c`` in ``0 ..
    V - 1`` (NumPy): Zipf's law over ids in order of frequency."""
    c = np.arange(vocabulary, dtype="float64")
    return np.log((c + 2.0) / (c + 1.0)) / np.log(vocabulary + 1.0)


def inclusion(p, count):
    """The probability that each id is among ``count`` distinct draws from
    ``p``: ``1 - (1 - p) ** T``, ``T`` chosen (by bisection) so that these
    sum to ``count`` (as TensorFlow's unique samplers estimate it)."""
    if count >= len(p):
        return np.ones_like(p)
    low, high = float(count), float(count)
    while np.sum(-np.expm1(high * np.log1p(-p))) < count:
        high *= 2.0
    for _ in range(100):
        middle = (low + high) / 2.0
        if np.sum(-np.expm1(middle * np.log1p(-p))) < count:
            low = middle
        else:
            high = middle
    return np.maximum(-np.expm1(high * np.log1p(-p)), 1e-30)
