"""The simple (Elman) recurrent cell and layer."""

import keras
from keras import ops

from nlpseq.layers.base import (
    RecurrentCell,
    activation_grad,
    grad_from_output,
)
from nlpseq.layers.rnn import CellLayer


@keras.saving.register_keras_serializable(package="nlpseq")
class SimpleRNNCell(RecurrentCell):
    """Elman cell: ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)``.

    The output is ``h_t``; the read-out ``y_t = W_hy h_t + b_y`` (usually with
    a softmax) is a ``Dense`` layer placed after the recurrent layer.

    Weights (row-vector convention, ``x_t W`` rather than ``W x_t``):
    ``kernel`` is ``W_xh`` transposed, ``[input_dim, units]``;
    ``recurrent_kernel`` is ``W_hh`` transposed, ``[units, units]``;
    ``bias`` is ``b_h``, ``[units]``. With a zero bias and a zero initial
    state the first step carries no information from the recurrence, so keep
    ``use_bias=True``.

    Args:
        units: size of the hidden state ``h``.
        activation: ``"tanh"`` (default), ``"relu"``, ``"sigmoid"``, ... or a
            callable.
        use_bias, *_initializer, *_regularizer: as in Keras.
        dropout, recurrent_dropout: rates for the inputs and for ``h_{t-1}``.
        seed: seed of the dropout masks.

    Example:

    >>> import numpy as np
    >>> from nlpseq.layers import SimpleRNN
    >>> x = np.zeros((2, 7, 5), "float32")       # [batch, time, features]
    >>> SimpleRNN(3, return_sequences=True)(x).shape
    TensorShape([2, 7, 3])
    """

    gates = 1
    state_names = ("h",)
    # Its step is a handful of operations, fewer than the loop's own per
    # iteration, so four steps per iteration are faster (docs/benchmarks.md).
    # The gated cells' steps are long enough that their larger graphs would
    # cost more to trace than the loop saves.
    steps_per_iteration = 4

    @property
    def cache_size(self):
        # The backward step needs h for tanh and sigmoid (their derivatives
        # come from the output; the loop keeps h as the new state), the
        # pre-activation a for any other activation.
        return 0 if grad_from_output(self.activation) else 1

    trace_names = ("pre_activation", "h")

    def _pre_activation(self, projected, h_tm1, weights, recurrent_mask=None):
        # a = W_xh x_t + b_h + W_hh h_{t-1}
        (w_h,) = weights
        return projected + ops.matmul(self._dropped(h_tm1, recurrent_mask),
                                      w_h)

    def step(self, projected, states, weights, recurrent_mask=None):
        a = self._pre_activation(projected, states[0], weights, recurrent_mask)
        h = self.activation(a)
        return h, [h], [] if grad_from_output(self.activation) else [a]

    def step_values(self, projected, states, new_states, cache, weights):
        # (for tanh and sigmoid the step caches nothing: the pre-activation
        # is recomputed here, by the step's own function)
        a = cache[0] if cache else self._pre_activation(
            projected, states[0], weights)
        return {"pre_activation": a, "h": new_states[0]}

    def step_backward(self, d_states, states, new_states, cache, weights,
                      transposed, recurrent_mask=None):
        # a = W_x x + W_h h_{t-1} + b;  h = act(a)
        # dL/da = dL/dh * act'(a);  dL/dh_{t-1} = W_h^T dL/da
        (d_h,) = d_states
        if grad_from_output(self.activation):
            a, h = None, new_states[0]
        else:
            a = cache[0]
            h = self.activation(a)
        d_a = activation_grad(self.activation, a, h, d_h)
        d_h_tm1 = self._dropped(ops.matmul(d_a, transposed[0]), recurrent_mask)
        return d_a, [d_h_tm1]


@keras.saving.register_keras_serializable(package="nlpseq")
class SimpleRNN(CellLayer):
    """A :class:`SimpleRNNCell` run over time by :class:`~nlpseq.layers.RNN`.

    Takes the cell's arguments (``units``, ``activation``, ``dropout``, ...)
    and the loop's (``return_sequences``, ``return_state``, ``go_backwards``).
    With ``return_state`` it returns ``[output, h]``.
    """

    cell_class = SimpleRNNCell
