"""The long short-term memory (LSTM) cell and layer."""

import keras
from keras import ops

from nlpseq.layers.base import (
    RecurrentCell,
    activation_grad,
    gate_preactivations,
    get_activation,
    grad_from_output,
    sum_of_products,
)
from nlpseq.layers.rnn import CellLayer


@keras.saving.register_keras_serializable(package="nlpseq")
class LSTMCell(RecurrentCell):
    """LSTM cell: gates, a memory cell ``C`` and a hidden state ``h``.

    With ``[h_{t-1}, x_t]`` the concatenation of the previous hidden state and
    the input, ``σ`` the ``recurrent_activation`` (logistic sigmoid) and
    ``tanh`` the ``activation``::

        i_t  = σ(W_i [h_{t-1}, x_t] + b_i)        input gate
        f_t  = σ(W_f [h_{t-1}, x_t] + b_f)        forget gate
        C~_t = tanh(W_C [h_{t-1}, x_t] + b_C)     candidate
        o_t  = σ(W_o [h_{t-1}, x_t] + b_o)        output gate
        C_t  = f_t * C_{t-1} + i_t * C~_t         memory cell
        h_t  = o_t * tanh(C_t)                    hidden state (the output)

    Each ``W_g [h, x]`` is split into ``x W_g^x + h W_g^h``. The four gates are
    fused, **in the order i, f, C~, o** (Keras' order), into ``kernel``
    ``[input_dim, 4 * units]``, ``recurrent_kernel`` ``[units, 4 * units]``
    and ``bias`` ``[4 * units]``. The input part is computed for all steps at
    once; in the loop, from 128 units on, each gate's ``h W_g^h`` is its own
    product. States are ``[h, C]``.

    Args:
        units: size of ``h`` and ``C``.
        activation: for ``C~`` and the output (default ``"tanh"``).
        recurrent_activation: for the gates (default ``"sigmoid"``).
        unit_forget_bias: start ``b_f`` at 1 so the cell remembers by default
            (Jozefowicz et al., 2015).
        other arguments: as :class:`~nlpseq.layers.SimpleRNNCell`.

    Example:

    >>> import numpy as np
    >>> from nlpseq.layers import LSTM
    >>> x = np.zeros((2, 7, 5), "float32")
    >>> output, h, c = LSTM(3, return_state=True)(x)
    >>> output.shape, h.shape, c.shape
    (TensorShape([2, 3]), TensorShape([2, 3]), TensorShape([2, 3]))
    """

    gates = 4
    state_names = ("h", "c")

    def __init__(self, units, activation="tanh",
                 recurrent_activation="sigmoid", unit_forget_bias=True,
                 **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self._recurrent_activation_name = recurrent_activation
        self.recurrent_activation = get_activation(
            "recurrent_activation", recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def bias_initializer_for_build(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def initializer(shape, dtype=None):
            return ops.concatenate([
                base((units,), dtype=dtype),
                ops.ones((units,), dtype=dtype),
                base((2 * units,), dtype=dtype),
            ])

        return initializer

    @property
    def cache_size(self):
        return 4 if self.per_gate_products else 1

    @property
    def _cache_outputs(self):
        # With per-gate products the step caches the gates' and the
        # candidate's values when the backward can differentiate them from
        # their outputs (sigmoid, tanh), else their pre-activations. With one
        # fused product it caches the fused pre-activation z, one tensor (in
        # small cells the loop's reads and writes cost more than the
        # backward's recomputing the values).
        return (self.per_gate_products
                and grad_from_output(self.recurrent_activation)
                and grad_from_output(self.activation))

    def step(self, projected, states, weights, recurrent_mask=None):
        h_tm1, c_tm1 = states
        h_dropped = self._dropped(h_tm1, recurrent_mask)
        # z_g = x W_g^x + b_g + h_{t-1} W_g^h (per gate, or fused)
        z = gate_preactivations(projected, h_dropped, weights)
        z_i, z_f, z_c, z_o = z if len(z) == 4 else ops.split(z[0], 4, axis=-1)
        sigma, act = self.recurrent_activation, self.activation
        i, f, candidate, o = sigma(z_i), sigma(z_f), act(z_c), sigma(z_o)
        c = f * c_tm1 + i * candidate
        h = o * act(c)
        cache = [i, f, candidate, o] if self._cache_outputs else z
        return h, [h, c], cache

    trace_names = ("input", "forget", "candidate", "output", "c", "h")

    def step_values(self, projected, states, new_states, cache, weights):
        # i, f, C~, o from the step's cache (their values, or their
        # pre-activations, fused or per gate), C_t and h_t from its states
        if self._cache_outputs:
            i, f, candidate, o = cache
        else:
            z_i, z_f, z_c, z_o = (ops.split(cache[0], 4, axis=-1)
                                  if len(cache) == 1 else cache)
            sigma, act = self.recurrent_activation, self.activation
            i, f, candidate, o = sigma(z_i), sigma(z_f), act(z_c), sigma(z_o)
        return {"input": i, "forget": f, "candidate": candidate,
                "output": o, "c": new_states[1], "h": new_states[0]}

    def step_backward(self, d_states, states, new_states, cache, weights,
                      transposed, recurrent_mask=None):
        # Backpropagation through one step, from dL/dh_t and dL/dC_t:
        #   dL/do  = dL/dh * tanh(C_t)
        #   dL/dC  = dL/dC_t + dL/dh * o * tanh'(C_t)
        #   dL/di  = dL/dC * C~,  dL/dC~ = dL/dC * i,  dL/df = dL/dC * C_{t-1}
        #   dL/dC_{t-1} = dL/dC * f,   dL/dh_{t-1} = sum_g W_g^T dL/dz_g
        d_h, d_c = d_states
        c_tm1, c = states[1], new_states[1]
        sigma, act = self.recurrent_activation, self.activation
        if self._cache_outputs:
            i, f, candidate, o = cache
            z_i = z_f = z_c = z_o = None
        else:
            z_i, z_f, z_c, z_o = (ops.split(cache[0], 4, axis=-1)
                                  if len(cache) == 1 else cache)
            i, f, candidate, o = sigma(z_i), sigma(z_f), act(z_c), sigma(z_o)
        tanh_c = act(c)
        d_c = d_c + activation_grad(act, c, tanh_c, d_h * o)
        d_z = [
            activation_grad(sigma, z_i, i, d_c * candidate),
            activation_grad(sigma, z_f, f, d_c * c_tm1),
            activation_grad(act, z_c, candidate, d_c * i),
            activation_grad(sigma, z_o, o, d_h * tanh_c),
        ]
        d_projected = ops.concatenate(d_z, axis=-1)
        d_h_tm1 = self._dropped(
            sum_of_products(d_z, transposed, d_projected), recurrent_mask)
        return d_projected, [d_h_tm1, d_c * f]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = self._serialize_activation(
            self._recurrent_activation_name)
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


@keras.saving.register_keras_serializable(package="nlpseq")
class LSTM(CellLayer):
    """An :class:`LSTMCell` run over time by :class:`~nlpseq.layers.RNN`.

    With ``return_state`` it returns ``[output, h, C]``.
    """

    cell_class = LSTMCell
    takes_use_cudnn = True
