"""The gated recurrent unit (GRU) cell and layer."""

import keras
from keras import ops

from nlpseq.layers.base import (
    RecurrentCell,
    activation_grad,
    get_activation,
    grad_from_output,
    product_over_steps,
)
from nlpseq.layers.rnn import CellLayer


@keras.saving.register_keras_serializable(package="nlpseq")
class GRUCell(RecurrentCell):
    """GRU cell: an update gate, an optional reset gate, one state ``h``.

    With ``σ`` the ``recurrent_activation`` and ``tanh`` the ``activation``::

        z_t  = σ(W_z [h_{t-1}, x_t] + b_z)                 update gate
        r_t  = σ(W_r [h_{t-1}, x_t] + b_r)                 reset gate
        h~_t = tanh(W_h (r_t * h_{t-1}) + W_x x_t + b_h)   candidate
        h_t  = z_t * h~_t + (1 - z_t) * h_{t-1}

    ``z = 1`` takes the new candidate, ``z = 0`` carries the old state through.
    (Keras' GRU names the complement ``1 - z`` its update gate; copying its
    weights means negating the update-gate columns.)

    Variants:

    - ``reset_gate=False``: the minimal GRU, ``h~_t = tanh(W_h h_{t-1} +
      W_x x_t + b_h)``, two gates.
    - ``reset_after=True``: the reset gate is applied after the recurrent
      product, ``h~_t = tanh(r_t * (W_h h_{t-1} + b'_h) + W_x x_t + b_h)``, the
      cuDNN-compatible form with a second (recurrent) bias.

    Gates are fused in the order **z, r, h~** (``z, h~`` without the reset
    gate) into ``kernel`` ``[input_dim, gates * units]`` and
    ``recurrent_kernel`` ``[units, gates * units]``; ``bias`` is
    ``[gates * units]``, or ``[2, 3 * units]`` (input bias, recurrent bias)
    with ``reset_after``.

    Example:

    >>> import numpy as np
    >>> from nlpseq.layers import GRU
    >>> x = np.zeros((2, 7, 5), "float32")
    >>> GRU(3, reset_gate=False)(x).shape
    TensorShape([2, 3])
    """

    state_names = ("h",)
    # Its step is a longer chain of small operations than the LSTM's (two
    # products in sequence without reset_after), which leaves room for the
    # input projection: 8-13 % faster inference (``bench/cells.py``).
    project_per_step = True

    def __init__(self, units, activation="tanh",
                 recurrent_activation="sigmoid", reset_gate=True,
                 reset_after=False, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self._recurrent_activation_name = recurrent_activation
        self.recurrent_activation = get_activation(
            "recurrent_activation", recurrent_activation)
        self.reset_gate = bool(reset_gate)
        self.reset_after = bool(reset_after)
        if self.reset_after and not self.reset_gate:
            raise ValueError(
                "Received an invalid value for argument `reset_after`, "
                "expected False when `reset_gate=False`, got True."
            )

    @property
    def _cache_outputs(self):
        # The step caches the gates' and the candidate's values when the
        # backward can differentiate them from their outputs (sigmoid, tanh),
        # else their pre-activations (and recomputes the values).
        return (self.reset_gate and grad_from_output(self.recurrent_activation)
                and grad_from_output(self.activation))

    def _gate_output(self, cached):
        """A gate's value from what the step cached."""
        return cached if self._cache_outputs else self.recurrent_activation(
            cached)

    @property
    def gates(self):
        return 3 if self.reset_gate else 2

    def bias_shape(self):
        if self.reset_after:
            return (2, 3 * self.units)
        return (self.gates * self.units,)

    @property
    def cache_size(self):
        return 1 if not self.reset_gate else (4 if self.reset_after else 2)

    def input_bias(self):
        if self.bias is not None and self.reset_after:
            return self.bias[0]
        return self.bias

    def recurrent_weights(self, dtype=None):
        kernel = ops.cast(self.recurrent_kernel, dtype or self.compute_dtype)
        if not self.reset_gate:
            return [kernel]
        if self.reset_after:
            if self.bias is None:
                return [kernel]
            return [kernel, ops.cast(self.bias[1], kernel.dtype)]
        # Reset before the product: z and r use h_{t-1}, the candidate uses
        # r * h_{t-1}; two products with the two column blocks.
        return [kernel[:, :2 * self.units], kernel[:, 2 * self.units:]]

    def step(self, projected, states, weights, recurrent_mask=None):
        h_tm1 = states[0]
        h_dropped = self._dropped(h_tm1, recurrent_mask)
        sigma, act = self.recurrent_activation, self.activation
        if not self.reset_gate:
            a = projected + ops.matmul(h_dropped, weights[0])
            a_z, a_h = ops.split(a, 2, axis=-1)
            z, candidate = sigma(a_z), act(a_h)
            cache = [a]
        elif self.reset_after:
            recurrent = ops.matmul(h_dropped, weights[0])
            if len(weights) > 1:
                recurrent = recurrent + weights[1]
            x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
            h_z, h_r, h_h = ops.split(recurrent, 3, axis=-1)
            a_z, a_r = x_z + h_z, x_r + h_r
            z, r = sigma(a_z), sigma(a_r)
            a_h = x_h + r * h_h
            candidate = act(a_h)
            cache = ([z, r, h_h, candidate] if self._cache_outputs
                     else [a_z, a_r, h_h, a_h])
        else:
            w_zr, w_h = weights
            # (static slices: a split at an index list costs extra
            # operations at every step)
            x_zr = projected[..., :2 * self.units]
            x_h = projected[..., 2 * self.units:]
            a_zr = x_zr + ops.matmul(h_dropped, w_zr)
            zr = sigma(a_zr)
            z, r = ops.split(zr, 2, axis=-1)
            a_h = x_h + ops.matmul(
                self._dropped(r * h_tm1, recurrent_mask), w_h)
            candidate = act(a_h)
            cache = [zr, candidate] if self._cache_outputs else [a_zr, a_h]
        h = h_tm1 + z * (candidate - h_tm1)  # z * h~ + (1 - z) * h_{t-1}
        return h, [h], cache

    def step_backward(self, d_states, states, new_states, cache, weights,
                      transposed, recurrent_mask=None):
        # h_t = z * h~ + (1 - z) * h_{t-1}:
        #   dL/dz = dL/dh * (h~ - h_{t-1}),  dL/dh~ = dL/dh * z,
        #   dL/dh_{t-1} = dL/dh * (1 - z) + (paths through the gates).
        (d_h,) = d_states
        h_tm1 = states[0]
        sigma, act = self.recurrent_activation, self.activation
        if not self.reset_gate:
            (a,) = cache
            a_z, a_h = ops.split(a, 2, axis=-1)
            z, candidate = sigma(a_z), act(a_h)
            d_a = ops.concatenate([
                activation_grad(sigma, a_z, z, d_h * (candidate - h_tm1)),
                activation_grad(act, a_h, candidate, d_h * z),
            ], axis=-1)
            d_h_tm1 = d_h * (1.0 - z) + self._dropped(
                ops.matmul(d_a, transposed[0]), recurrent_mask)
            return d_a, [d_h_tm1]

        if self.reset_after:
            a_z, a_r, h_h, a_h = cache
        else:
            a_zr, a_h = cache
            a_z, a_r = ops.split(a_zr, 2, axis=-1)
        if self._cache_outputs:
            # (the cache holds the values, not the pre-activations)
            z, r, candidate = a_z, a_r, a_h
            a_z = a_r = a_h = None
        else:
            z, r, candidate = sigma(a_z), sigma(a_r), act(a_h)
        d_a_h = activation_grad(act, a_h, candidate, d_h * z)
        d_a_z = activation_grad(sigma, a_z, z, d_h * (candidate - h_tm1))
        d_h_tm1 = d_h * (1.0 - z)
        if self.reset_after:
            # h~ = act(x_h + r * (W_h h_{t-1} + b'_h))
            d_a_r = activation_grad(sigma, a_r, r, d_a_h * h_h)
            d_recurrent = ops.concatenate([d_a_z, d_a_r, d_a_h * r], axis=-1)
            d_h_tm1 = d_h_tm1 + self._dropped(
                ops.matmul(d_recurrent, transposed[0]), recurrent_mask)
            return ops.concatenate([d_a_z, d_a_r, d_a_h], axis=-1), [d_h_tm1]
        # h~ = act(x_h + W_h (r * h_{t-1}))
        d_reset_h = self._dropped(
            ops.matmul(d_a_h, transposed[1]), recurrent_mask)
        d_a_r = activation_grad(sigma, a_r, r, d_reset_h * h_tm1)
        d_a_zr = ops.concatenate([d_a_z, d_a_r], axis=-1)
        d_h_tm1 = d_h_tm1 + d_reset_h * r + self._dropped(
            ops.matmul(d_a_zr, transposed[0]), recurrent_mask)
        return ops.concatenate([d_a_zr, d_a_h], axis=-1), [d_h_tm1]

    def recurrent_gradients(self, d_projected, states, cache, weights,
                            recurrent_mask=None):
        if not self.reset_gate:
            return super().recurrent_gradients(
                d_projected, states, cache, weights, recurrent_mask)
        units = self.units
        h_tm1 = states[0]
        h_dropped = self._dropped(h_tm1, recurrent_mask)
        d_a_zr, d_a_h = d_projected[..., :2 * units], d_projected[..., 2 * units:]
        if self.reset_after:
            # the recurrent product's gradient is d_a_h * r in the h~ block
            r = self._gate_output(cache[1])
            grads = [ops.concatenate([
                product_over_steps(h_dropped, d_a_zr),
                product_over_steps(h_dropped, d_a_h * r)], axis=-1)]
            if len(weights) > 1:
                grads.append(ops.concatenate([
                    ops.sum(d_a_zr, axis=(0, 1)),
                    ops.sum(d_a_h * r, axis=(0, 1))], axis=-1))
            return grads
        r = self._gate_output(cache[0][..., units:])
        return [product_over_steps(h_dropped, d_a_zr),
                product_over_steps(self._dropped(r * h_tm1, recurrent_mask),
                                   d_a_h)]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = self._serialize_activation(
            self._recurrent_activation_name)
        config["reset_gate"] = self.reset_gate
        config["reset_after"] = self.reset_after
        return config


@keras.saving.register_keras_serializable(package="nlpseq")
class GRU(CellLayer):
    """A :class:`GRUCell` run over time by :class:`~nlpseq.layers.RNN`.

    With ``return_state`` it returns ``[output, h]``.
    """

    cell_class = GRUCell
