"""The gated recurrent unit (GRU) cell and layer."""

import keras
from keras import ops

from nlpseq.layers.base import (
    RecurrentCell,
    activation_grad,
    gate_preactivations,
    gate_products,
    get_activation,
    grad_from_output,
    product_over_steps,
    sum_of_products,
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
    with ``reset_after``. From 128 units on, each gate's recurrent product is
    its own in the loop (``h W_z``, ``h W_r``, then ``(r * h) W_h``), so
    ``z``'s runs beside the chain that leads to the candidate. With
    ``reset_after``, the recurrent bias of ``z`` and ``r`` is added to the
    input projection (it only adds); ``b'_h`` stays in the step.

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
    # input projection (faster inference: docs/benchmarks.md).
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
        # else their pre-activations (and the backward recomputes the
        # values); the minimal GRU with one fused product caches its fused
        # pre-activation, one tensor.
        if not (self.reset_gate or self.per_gate_products):
            return False
        return (grad_from_output(self.recurrent_activation)
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
        # z, r and h~ (values or pre-activations; with one fused product,
        # z and r as one tensor, and without the reset gate z and h~ as one),
        # and with reset_after the candidate's recurrent product
        # W_h h_{t-1} + b'_h
        if self.reset_after:
            return 4
        return self.gates - int(not self.per_gate_products)

    def input_bias(self):
        if self.bias is not None and self.reset_after:
            # The recurrent bias of z and r only adds to the input's; the
            # candidate's, b'_h, is scaled by r and stays in the step.
            units = self.units
            return ops.concatenate([
                self.bias[0, :2 * units] + self.bias[1, :2 * units],
                self.bias[0, 2 * units:]])
        return self.bias

    def recurrent_weights(self, dtype=None, weight_mask=None):
        # The kernel per gate (z, r, h~) or whole; reset before the product,
        # the candidate's block is always apart (its product waits for r).
        # With reset_after, b'_h comes last.
        blocks = super().recurrent_weights(dtype, weight_mask)
        if self.reset_gate and not self.reset_after and len(blocks) == 1:
            units = self.units
            blocks = [blocks[0][:, :2 * units], blocks[0][:, 2 * units:]]
        if self.reset_after and self.bias is not None:
            blocks.append(ops.cast(self.bias[1, 2 * self.units:],
                                   blocks[0].dtype))
        return blocks

    def _kernel_blocks(self, weights):
        """The recurrent kernel's blocks among ``weights`` (without b'_h)."""
        if self.reset_after and self.bias is not None:
            return weights[:-1]
        return weights

    def step(self, projected, states, weights, recurrent_mask=None):
        h_tm1 = states[0]
        h_dropped = self._dropped(h_tm1, recurrent_mask)
        sigma, act = self.recurrent_activation, self.activation
        values = self._cache_outputs
        if not self.reset_gate:
            a = gate_preactivations(projected, h_dropped, weights)
            a_z, a_h = a if len(a) == 2 else ops.split(a[0], 2, axis=-1)
            z, candidate = sigma(a_z), act(a_h)
            cache = [z, candidate] if values else a
        elif self.reset_after:
            x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
            h_z, h_r, h_h = gate_products(
                h_dropped, self._kernel_blocks(weights), 3)
            if self.bias is not None:
                h_h = h_h + weights[-1]
            a_z, a_r = x_z + h_z, x_r + h_r
            z, r = sigma(a_z), sigma(a_r)
            a_h = x_h + r * h_h
            candidate = act(a_h)
            cache = [z, r, candidate, h_h] if values else [a_z, a_r, a_h, h_h]
        else:
            # z's product runs beside the chain r -> (r * h) W_h -> h~.
            # (static slices: a split at an index list costs extra
            # operations at every step)
            *w_zr, w_h = weights
            units = self.units
            a_zr = gate_preactivations(projected[..., :2 * units], h_dropped,
                                       w_zr)
            zr = [sigma(a) for a in a_zr]  # z and r, or both as one tensor
            z, r = zr if len(zr) == 2 else ops.split(zr[0], 2, axis=-1)
            a_h = projected[..., 2 * units:] + ops.matmul(
                self._dropped(r * h_tm1, recurrent_mask), w_h)
            candidate = act(a_h)
            cache = zr + [candidate] if values else a_zr + [a_h]
        h = h_tm1 + z * (candidate - h_tm1)  # z * h~ + (1 - z) * h_{t-1}
        return h, [h], cache

    @property
    def trace_names(self):
        if self.reset_gate:
            return ("update", "reset", "candidate", "h")
        return ("update", "candidate", "h")

    def step_values(self, projected, states, new_states, cache, weights):
        # z, r and h~ from the step's cache (values or pre-activations; z
        # and r, or z and h~, as one tensor with one fused product)
        a_z, a_r, a_h = self._cached_gates(cache)
        if self._cache_outputs:
            z, r, candidate = a_z, a_r, a_h
        else:
            sigma = self.recurrent_activation
            z, candidate = sigma(a_z), self.activation(a_h)
            r = sigma(a_r) if a_r is not None else None
        values = {"update": z, "candidate": candidate, "h": new_states[0]}
        if r is not None:
            values["reset"] = r
        return values

    def _cached_gates(self, cache):
        """``(z, r, h~)`` of a step's cache (values or pre-activations, see
        :meth:`step`); ``r`` is ``None`` without the reset gate."""
        if self.reset_after:
            return tuple(cache[:3])
        if self.reset_gate:
            if len(cache) == 2:  # z and r as one tensor
                a_zr, a_h = cache
                a_z, a_r = ops.split(a_zr, 2, axis=-1)
                return a_z, a_r, a_h
            return tuple(cache)
        a_z, a_h = (ops.split(cache[0], 2, axis=-1) if len(cache) == 1
                    else cache)
        return a_z, None, a_h

    def step_backward(self, d_states, states, new_states, cache, weights,
                      transposed, recurrent_mask=None):
        # h_t = z * h~ + (1 - z) * h_{t-1}:
        #   dL/dz = dL/dh * (h~ - h_{t-1}),  dL/dh~ = dL/dh * z,
        #   dL/dh_{t-1} = dL/dh * (1 - z) + (paths through the gates).
        (d_h,) = d_states
        h_tm1 = states[0]
        sigma, act = self.recurrent_activation, self.activation
        a_z, a_r, a_h = self._cached_gates(cache)
        h_h = cache[3] if self.reset_after else None
        if self._cache_outputs:
            # (the cache holds the values, not the pre-activations)
            z, r, candidate = a_z, a_r, a_h
            a_z = a_r = a_h = None
        else:
            z, candidate = sigma(a_z), act(a_h)
            r = sigma(a_r) if self.reset_gate else None
        d_a_h = activation_grad(act, a_h, candidate, d_h * z)
        d_a_z = activation_grad(sigma, a_z, z, d_h * (candidate - h_tm1))
        d_h_tm1 = d_h * (1.0 - z)
        if not self.reset_gate:
            d_a = [d_a_z, d_a_h]
            d_projected = ops.concatenate(d_a, axis=-1)
            d_h_tm1 = d_h_tm1 + self._dropped(
                sum_of_products(d_a, transposed, d_projected), recurrent_mask)
            return d_projected, [d_h_tm1]
        if self.reset_after:
            # h~ = act(x_h + r * (W_h h_{t-1} + b'_h))
            d_a_r = activation_grad(sigma, a_r, r, d_a_h * h_h)
            d_h_tm1 = d_h_tm1 + self._dropped(
                sum_of_products([d_a_z, d_a_r, d_a_h * r],
                                self._kernel_blocks(transposed)),
                recurrent_mask)
            return (ops.concatenate([d_a_z, d_a_r, d_a_h], axis=-1),
                    [d_h_tm1])
        # h~ = act(x_h + W_h (r * h_{t-1}))
        *t_zr, t_h = transposed
        d_reset_h = self._dropped(ops.matmul(d_a_h, t_h), recurrent_mask)
        d_a_r = activation_grad(sigma, a_r, r, d_reset_h * h_tm1)
        d_zr = [d_a_z, d_a_r]
        d_a_zr = ops.concatenate(d_zr, axis=-1) if len(t_zr) == 1 else None
        d_h_tm1 = d_h_tm1 + d_reset_h * r + self._dropped(
            sum_of_products(d_zr, t_zr, d_a_zr), recurrent_mask)
        d_projected = ops.concatenate(
            [d_a_zr, d_a_h] if d_a_zr is not None else d_zr + [d_a_h],
            axis=-1)
        return d_projected, [d_h_tm1]

    def recurrent_gradients(self, d_projected, states, cache, weights,
                            recurrent_mask=None):
        if not self.reset_gate:
            return super().recurrent_gradients(
                d_projected, states, cache, weights, recurrent_mask)
        units = self.units
        per_gate = self.per_gate_products
        h_dropped = self._dropped(states[0], recurrent_mask)
        d_a_zr, d_a_h = d_projected[..., :2 * units], d_projected[..., 2 * units:]
        d_zr = product_over_steps(h_dropped, d_a_zr)
        grads = list(ops.split(d_zr, 2, axis=1)) if per_gate else [d_zr]
        # (with one fused product and the reset before it, z and r are
        # cached as one tensor)
        fused_zr = not (per_gate or self.reset_after)
        r = self._gate_output(cache[0][..., units:] if fused_zr else cache[1])
        if self.reset_after:
            # the candidate's recurrent product has the gradient d_a_h * r
            d_h_h = d_a_h * r
            d_w_h = product_over_steps(h_dropped, d_h_h)
            if per_gate:
                grads.append(d_w_h)
            else:
                grads = [ops.concatenate([d_zr, d_w_h], axis=1)]
            if self.bias is not None:
                grads.append(ops.sum(d_h_h, axis=(0, 1)))
            return grads
        grads.append(product_over_steps(
            self._dropped(r * states[0], recurrent_mask), d_a_h))
        return grads

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
    takes_use_cudnn = True
