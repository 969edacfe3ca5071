"""Global attention of a decoder over an encoder's outputs.

For each decoder state ``q_t`` (the query) and encoder outputs ``m_1..m_S``
(the memory), a score ``e_{t,s}`` is computed for every source position, the
scores of padded positions are ruled out, and

    a_t = softmax_s(e_{t,s}),        c_t = sum_s a_{t,s} m_s

is the context vector of step ``t``. Two scores:

- ``luong`` (multiplicative, Luong et al. 2015, "general"):
  ``e_{t,s} = q_t^T W_a m_s``;
- ``bahdanau`` (additive, Bahdanau et al. 2015):
  ``e_{t,s} = v_a^T tanh(W_q q_t + W_m m_s)``.

The memory's part of the score (``W_a m_s`` or ``W_m m_s``) does not depend
on the query, so :meth:`Attention.keys` computes it once per sentence and
:meth:`Attention.attend` reuses it at every decoder step.

Example:
    >>> import numpy as np
    >>> attention = Attention("luong")
    >>> query = np.zeros((2, 3, 8), "float32")     # [batch, steps, q]
    >>> memory = np.ones((2, 5, 6), "float32")     # [batch, source, m]
    >>> context, weights = attention(query, memory)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
"""

import keras
from keras import ops

from nlpseq.layers.base import check_choice, check_positive_int

KINDS = ("luong", "bahdanau")


@keras.saving.register_keras_serializable(package="nlpseq")
class Attention(keras.layers.Layer):
    """Luong (multiplicative) or Bahdanau (additive) attention.

    Args:
        kind: ``"luong"`` or ``"bahdanau"``.
        units: size of the additive score's hidden layer (``bahdanau``;
            default: the query size).

    Call arguments:
        query: ``[batch, steps, q]``, the decoder states.
        memory: ``[batch, source, m]``, the encoder outputs.
        memory_mask: optional boolean ``[batch, source]``; False marks
            padding, which gets no attention.

    Returns:
        ``[context, weights]``: ``[batch, steps, m]`` and ``[batch, steps,
        source]``.
    """

    def __init__(self, kind="luong", units=None, **kwargs):
        super().__init__(**kwargs)
        self.kind = check_choice("kind", kind, KINDS)
        self.units = None if units is None else check_positive_int(
            "units", units)

    def build(self, query_shape, memory_shape, memory_mask_shape=None):
        query_size, memory_size = query_shape[-1], memory_shape[-1]
        if self.kind == "luong":
            self.memory_kernel = self.add_weight(
                name="memory_kernel", shape=(memory_size, query_size),
                initializer="glorot_uniform")
        else:
            units = self.units or query_size
            self.memory_kernel = self.add_weight(
                name="memory_kernel", shape=(memory_size, units),
                initializer="glorot_uniform")
            self.query_kernel = self.add_weight(
                name="query_kernel", shape=(query_size, units),
                initializer="glorot_uniform")
            self.score_vector = self.add_weight(
                name="score_vector", shape=(units,),
                initializer="glorot_uniform")

    def keys(self, memory):
        """The query-independent part of the scores: ``[batch, source, k]``."""
        return ops.matmul(memory, ops.cast(self.memory_kernel, memory.dtype))

    def attend(self, query, keys, memory, memory_mask=None):
        """``(context, weights)`` of ``query`` given precomputed ``keys``."""
        if self.kind == "luong":
            scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
        else:
            projected = ops.matmul(query, ops.cast(self.query_kernel,
                                                   query.dtype))
            hidden = ops.tanh(ops.expand_dims(projected, 2)
                              + ops.expand_dims(keys, 1))
            scores = ops.einsum("btsu,u->bts", hidden,
                                ops.cast(self.score_vector, hidden.dtype))
        # (the softmax in float32 also under mixed precision; the weights
        # come back in the memory's dtype)
        scores = ops.cast(scores, "float32")
        if memory_mask is not None:
            keep = ops.expand_dims(ops.cast(memory_mask, "bool"), 1)
            scores = ops.where(keep, scores,
                               ops.full_like(scores, -1e9))
        weights = ops.cast(ops.softmax(scores, axis=-1), memory.dtype)
        return ops.matmul(weights, memory), weights

    def call(self, query, memory, memory_mask=None):
        context, weights = self.attend(query, self.keys(memory), memory,
                                       memory_mask)
        return [context, weights]

    def compute_output_shape(self, query_shape, memory_shape,
                             memory_mask_shape=None):
        return [tuple(query_shape[:-1]) + (memory_shape[-1],),
                tuple(query_shape[:-1]) + (memory_shape[1],)]

    def compute_mask(self, query, memory, memory_mask=None):
        return [None, None]

    def get_config(self):
        config = super().get_config()
        config.update({"kind": self.kind, "units": self.units})
        return config
