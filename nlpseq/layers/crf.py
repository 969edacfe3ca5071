"""A linear-chain conditional random field over per-token tag scores.

Tagging a sentence token by token ignores that tags depend on each other
(``I-PER`` never follows ``B-LOC``). A linear-chain CRF (Lafferty et al.
2001; Lample et al. 2016 for NER) scores a whole tag sequence ``y`` of a
sentence of ``n`` tokens with emission scores ``E`` (from the network) and
learned transition scores:

    score(y) = start[y_1] + sum_t E[t, y_t] + sum_{t>1} A[y_{t-1}, y_t]
               + end[y_n]
    P(y | x) = exp(score(y)) / Z,   Z = sum over all tag sequences

:meth:`CRF.negative_log_likelihood` is ``log Z - score(y)`` with ``log Z``
from the forward algorithm; :meth:`CRF.decode` is Viterbi decoding, the
highest-scoring sequence. Both are dynamic programs over the tags, one step
per token: ``keras.ops`` math in a ``tf.scan`` over time; a mask (padding at the end of
each sentence) leaves the padded steps out: there the forward variables and
the best path carry over unchanged.

In a model, the layer passes the emission scores through unchanged (so its
weights belong to the model and are saved with it); the loss and decoding
are its methods.

Example:
    >>> crf = CRF(5)
    >>> emissions = keras.random.normal((2, 7, 5))
    >>> crf(emissions)  # builds; returns the emissions
    >>> tags = crf.decode(emissions)  # [2, 7] int32
"""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="nlpseq")
class CRF(keras.layers.Layer):
    """Linear-chain CRF: transition weights, forward-algorithm NLL, Viterbi.

    Args:
        num_tags: the number of tags ``K`` (the emissions' last axis).

    Call arguments:
        emissions: ``[batch, time, K]`` scores; returned unchanged.
    """

    def __init__(self, num_tags, **kwargs):
        if kwargs.get("dtype") is None:
            # (numerically sensitive: float32 also under mixed precision)
            kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if not isinstance(num_tags, int) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive integer, got "
                             f"{num_tags!r}")
        self.num_tags = num_tags
        self.supports_masking = True

    def build(self, emissions_shape=None):
        if self.built:
            return
        k = self.num_tags
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        self.transitions = self.add_weight(name="transitions", shape=(k, k),
                                           initializer=init)
        self.start_transitions = self.add_weight(name="start_transitions",
                                                 shape=(k,), initializer=init)
        self.end_transitions = self.add_weight(name="end_transitions",
                                               shape=(k,), initializer=init)
        self.built = True

    def call(self, emissions, mask=None):
        return emissions

    def compute_output_shape(self, emissions_shape):
        return emissions_shape

    # -- the dynamic programs ----------------------------------------------------

    def _prepare(self, emissions, mask, extra_step=False):
        """Tensors, weights in the emissions' dtype (float32 for float16 or
        bfloat16 emissions); with ``extra_step``, one
        masked step appended, so that the scans over steps 2..n never run
        over zero steps (one-token sentences), which compiled code refuses
        to stack."""
        if not self.built:
            self.build(emissions.shape)
        emissions = tf.convert_to_tensor(emissions)
        if emissions.dtype in (tf.float16, tf.bfloat16):
            emissions = tf.cast(emissions, tf.float32)
        dtype = emissions.dtype
        if mask is None:
            mask = ops.ones(ops.shape(emissions)[:2], dtype="bool")
        mask = ops.cast(mask, "bool")
        if extra_step:
            emissions = ops.pad(emissions, [[0, 0], [0, 1], [0, 0]])
            mask = ops.pad(mask, [[0, 0], [0, 1]], constant_values=False)
        return (emissions, mask, ops.cast(self.transitions, dtype),
                ops.cast(self.start_transitions, dtype),
                ops.cast(self.end_transitions, dtype))

    def sequence_score(self, emissions, tags, mask=None):
        """``score(y)`` of the given tags ``[batch, time]`` (int)."""
        emissions, mask, transitions, start, end = self._prepare(emissions,
                                                                 mask)
        tags = ops.cast(tags, "int32")
        weight = ops.cast(mask, emissions.dtype)
        emitted = ops.squeeze(ops.take_along_axis(
            emissions, ops.expand_dims(tags, -1), axis=-1), -1)
        score = ops.take(start, tags[:, 0]) + ops.sum(emitted * weight,
                                                      axis=1)
        flat = tags[:, :-1] * self.num_tags + tags[:, 1:]
        moved = ops.take(ops.reshape(transitions, [-1]), flat)
        score = score + ops.sum(moved * weight[:, 1:], axis=1)
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)
        last = ops.squeeze(ops.take_along_axis(
            tags, ops.expand_dims(ops.maximum(lengths - 1, 0), -1), axis=1),
            -1)
        return score + ops.take(end, last)

    def log_partition(self, emissions, mask=None):
        """``log Z`` by the forward algorithm, ``[batch]``."""
        emissions, mask, transitions, start, end = self._prepare(
            emissions, mask, extra_step=True)
        alpha = start[None, :] + emissions[:, 0]

        def step(alpha, inputs):
            emission, keep = inputs
            new = ops.logsumexp(alpha[:, :, None] + transitions[None], axis=1)
            return ops.where(keep[:, None], new + emission, alpha)

        alphas = tf.scan(step, _time_major(emissions, mask), initializer=alpha)
        alpha = ops.concatenate([alpha[None], alphas], axis=0)[-1]
        return ops.logsumexp(alpha + end[None, :], axis=1)

    def negative_log_likelihood(self, emissions, tags, mask=None):
        """``log Z - score(tags)`` of each sentence, ``[batch]``."""
        return (self.log_partition(emissions, mask)
                - self.sequence_score(emissions, tags, mask))

    def decode(self, emissions, mask=None):
        """The highest-scoring tag sequences (Viterbi), ``[batch, time]``
        int32; padded steps get tag 0."""
        steps = ops.shape(emissions)[1]
        emissions, mask, transitions, start, end = self._prepare(
            emissions, mask, extra_step=True)
        k = self.num_tags
        delta = start[None, :] + emissions[:, 0]
        identity = ops.broadcast_to(ops.arange(k, dtype="int32")[None, :],
                                    ops.shape(delta))

        def forward(carried, inputs):
            delta, _ = carried
            emission, keep = inputs
            scores = delta[:, :, None] + transitions[None]
            pointer = ops.cast(ops.argmax(scores, axis=1), "int32")
            new = ops.max(scores, axis=1) + emission
            return (ops.where(keep[:, None], new, delta),
                    ops.where(keep[:, None], pointer, identity))

        deltas, pointers = tf.scan(forward, _time_major(emissions, mask),
                                   initializer=(delta, identity))
        delta = ops.concatenate([delta[None], deltas], axis=0)[-1]
        best = ops.cast(ops.argmax(delta + end[None, :], axis=1), "int32")

        # Back along the pointers: the tag at step t from the tag at t + 1.
        def backward(tag, pointer):
            return ops.squeeze(ops.take_along_axis(pointer, tag[:, None],
                                                   axis=1), 1)

        earlier = tf.scan(backward, pointers, initializer=best, reverse=True)
        path = ops.concatenate([earlier, best[None, :]], axis=0)
        path = ops.transpose(path, (1, 0))
        return ops.where(mask, path, ops.zeros_like(path))[:, :steps]

    def get_config(self):
        config = super().get_config()
        config["num_tags"] = self.num_tags
        return config


def _time_major(emissions, mask):
    """Steps 2..n of the emissions and the mask, time first (for the scans
    that start from step 1)."""
    return (ops.transpose(emissions[:, 1:], (1, 0, 2)),
            ops.transpose(mask[:, 1:], (1, 0)))
