"""The time loop: the one place where nlpseq iterates over time steps.

:class:`RNN` runs any :class:`~nlpseq.layers.base.RecurrentCell` over a
``[batch, time, features]`` sequence. ``SimpleRNN``, ``LSTM`` and ``GRU`` are
thin subclasses that only build their cell; ``Bidirectional`` runs two of
them. Everything about time lives here: the input projection for all steps
(one matrix product before the loop; in inference, one per step inside it
for the cells that run faster so), masking, ``go_backwards``,
``initial_state``, dropout masks, ``return_sequences`` and ``return_state``.

The cells' math is written in ``keras.ops``; the loop itself is a
``tf.while_loop`` over ``tf.TensorArray`` buffers, which is what makes it fast
on the TensorFlow backend (the supported one) and lets it compile under
``jit_compile=True``.
"""

import inspect

import keras
import tensorflow as tf
from keras import ops

from nlpseq.layers.base import RecurrentCell


def _step_bounds(t):
    """``[t]`` and ``[t + 1]``: the bounds of step ``t`` on the time axis,
    computed once per step and shared by every read of that step."""
    begin = tf.reshape(t, [1])
    return begin, begin + 1


def _reader(tensor):
    """``read(bounds)``: step ``t`` of a time-major tensor, given
    :func:`_step_bounds` ``(t)``.

    A slice along the first axis shares the tensor's memory (no copy), where
    a ``TensorArray.unstack`` would copy the whole sequence once more.
    """
    return lambda bounds: tf.strided_slice(tensor, bounds[0], bounds[1], [1],
                                           shrink_axis_mask=1)


def _mask_reader(mask):
    """``read(t)``: the mask of step ``t`` as ``[batch, 1]``, ready to
    broadcast over the units. The mask is small, so it is unstacked once
    (one list read per step instead of a slice and a reshape)."""
    steps = tf.shape(mask)[0]
    unstacked = tf.TensorArray(mask.dtype, size=steps).unstack(
        tf.expand_dims(mask, -1))
    return unstacked.read


def _over_steps(step, first, loop_vars, count, static_count, down=False,
                unroll=1):
    """Run ``step(t, *loop_vars) -> (next t, *loop_vars)`` for ``count``
    time steps, ``t`` counting up from ``first`` (or down with ``down``).

    With ``unroll``, the loop body runs that many steps, so that the loop's
    own bookkeeping (several operations per loop variable and iteration) is
    paid once for them; a second loop runs the remaining steps one at a
    time. Returns the final loop variables (without ``t``).
    """
    sign = -1 if down else 1
    end = first + sign * count  # the first step not to run

    def body(t, *loop_vars):
        for _ in range(unroll):
            t, *loop_vars = step(t, *loop_vars)
        return (t, *loop_vars)

    def more(t, *_, needed=1):
        return sign * (end - t) >= needed

    loop_vars = (first, *loop_vars)
    if unroll > 1:
        loop_vars = tf.while_loop(
            lambda *args: more(*args, needed=unroll), body, loop_vars,
            maximum_iterations=(static_count if static_count is not None
                                else count) // unroll,
            parallel_iterations=32)
        if static_count is not None and static_count % unroll == 0:
            return loop_vars[1:]
    loop_vars = tf.while_loop(
        more, step, loop_vars,
        maximum_iterations=unroll - 1 if unroll > 1 else (
            static_count if static_count is not None else count),
        parallel_iterations=32)
    return loop_vars[1:]


def _buffers(count, dtype, steps):
    return [tf.TensorArray(dtype, size=steps) for _ in range(count)]


def _forward(cell, projected, states, weights, mask, recurrent_mask,
             return_sequences, save, project=False):
    """The forward time loop: the final states and, with
    ``return_sequences``, the first state (``h``) after every step; with
    ``save``, also what the backward needs. Masked steps carry the states
    through. With ``project``, ``projected`` holds the raw inputs and each
    step projects its own."""
    steps = tf.shape(projected)[0]
    static_steps = projected.shape[0]
    read_input = _reader(projected)
    if project:
        read_raw = read_input

        def read_input(bounds):
            return cell.project_inputs(read_raw(bounds))

    read_mask = _mask_reader(mask) if mask is not None else None
    dtype = projected.dtype
    # Loop variables: t, the states, then the buffers. Without ``save``: the
    # states h after every step (with return_sequences). With ``save``:
    # every state before the first step and after every step (``steps + 1``
    # entries: what the backward reads as a step's previous and new states,
    # and h's entries after the first are the outputs), then the cell's
    # cache at each step. (An unused buffer would break XLA gradients.)
    if save:
        buffers = [tf.TensorArray(dtype, size=steps + 1).write(0, s)
                   for s in states]
        buffers += _buffers(cell.cache_size, dtype, steps)
    else:
        buffers = _buffers(int(return_sequences), dtype, steps)

    def body(t, states, buffers):
        states = list(states)
        _, new_states, cache = cell.step(
            read_input(_step_bounds(t)), states, weights, recurrent_mask)
        if mask is not None:
            keep = read_mask(t)
            new_states = [
                tf.where(keep, new, old) for new, old in zip(new_states, states)
            ]
        after = t + 1
        if save:
            buffers = [b.write(after, v)
                       for b, v in zip(buffers, new_states)] + [
                b.write(t, v) for b, v in zip(buffers[len(states):], cache)]
        elif return_sequences:
            buffers = [buffers[0].write(t, new_states[0])]
        return after, new_states, buffers

    final_states, buffers = _over_steps(
        body, tf.constant(0), (list(states), buffers), steps, static_steps,
        unroll=cell.steps_per_iteration)
    stacked = [b.stack() for b in buffers]
    if save:
        outputs = stacked[0][1:] if return_sequences else None
        return outputs, list(final_states), stacked
    outputs = stacked[0] if return_sequences else None
    return outputs, list(final_states), []


def _backward(cell, saved, weights, mask, recurrent_mask, d_outputs,
              d_states):
    """Backpropagation through time, from the last step to the first.

    At each step the cell's ``step_backward`` turns the gradient of its new
    states into gradients of its projected input and previous states (the
    textbook BPTT recursion); the loop keeps only the former. The weight
    gradients are then large matrix products over many steps
    (``cell.recurrent_gradients``, from those gradients and what the forward
    pass saved): one for the later half of the steps, computed while the
    loop runs through the earlier half, and one for the earlier half.
    """
    n_states = len(d_states)
    # saved: each state at steps 0..T (before the first step, after each),
    # then the cache of every step
    read_state = [_reader(x) for x in saved[:n_states]]
    read_cache = [_reader(x) for x in saved[n_states:]]
    steps = tf.shape(saved[0])[0] - 1
    static_steps = saved[0].shape[0]
    if static_steps is not None:
        static_steps -= 1
    read_d_out = _reader(d_outputs) if d_outputs is not None else None
    transposed = [ops.transpose(w) if len(w.shape) == 2 else w
                  for w in weights]
    dtype = saved[0].dtype
    read_mask = (_mask_reader(tf.cast(mask, dtype)) if mask is not None
                 else None)

    def body(t, d_states, d_projected_buffer):
        bounds = _step_bounds(t)
        new_bounds = (bounds[1], bounds[1] + 1)  # step t + 1
        prev = [read(bounds) for read in read_state]
        new = [read(new_bounds) for read in read_state]
        cache = [read(bounds) for read in read_cache]
        d_new = list(d_states)
        if read_d_out is not None:
            d_new[0] = d_new[0] + read_d_out(bounds)
        if mask is not None:
            # new = keep * step(prev) + (1 - keep) * prev
            keep = read_mask(t)
            carried = [(1.0 - keep) * d for d in d_new]
            d_new = [keep * d for d in d_new]
        d_projected, d_prev = cell.step_backward(
            d_new, prev, new, cache, weights, transposed, recurrent_mask)
        if mask is not None:
            d_prev = [dp + dc for dp, dc in zip(d_prev, carried)]
        return t - 1, d_prev, d_projected_buffer.write(t, d_projected)

    # The steps in two parts, the later first: while the loop runs through
    # the earlier part, the weight gradients of the later part are computed
    # (large products that do not wait for the loop).
    (buffer,) = _buffers(1, dtype, steps)
    half = steps // 2
    static_half = static_steps // 2 if static_steps is not None else None
    d_states, buffer = _over_steps(
        body, steps - 1, (list(d_states), buffer), steps - half,
        static_steps - static_half if static_steps is not None else None,
        down=True, unroll=cell.steps_per_iteration)
    later = cell.recurrent_gradients(
        buffer.gather(tf.range(half, steps)),
        [s[half:-1] for s in saved[:n_states]],
        [c[half:] for c in saved[n_states:]], weights, recurrent_mask)
    d_initial, buffer = _over_steps(
        body, half - 1, (d_states, buffer), half, static_half, down=True,
        unroll=cell.steps_per_iteration)
    d_projected = buffer.stack()
    earlier = cell.recurrent_gradients(
        d_projected[:half], [s[:half] for s in saved[:n_states]],
        [c[:half] for c in saved[n_states:]], weights, recurrent_mask)
    d_weights = [a + b for a, b in zip(earlier, later)]
    return d_projected, list(d_initial), d_weights


def time_loop(cell, projected, states, mask=None, recurrent_mask=None,
              return_sequences=True, zero_output_for_mask=False,
              manual_gradient=True, project=False):
    """Run ``cell.step`` over time-major ``projected`` inputs.

    Args:
        cell: the cell whose ``step`` is applied.
        projected: ``[time, batch, gates*units]``, the input projections.
        states: list of initial states ``[batch, size]``.
        mask: optional boolean ``[time, batch]``; at a masked step the states
            are carried through unchanged.
        recurrent_mask: optional dropout mask for ``h_{t-1}``.
        return_sequences: whether to collect the output of every step.
        zero_output_for_mask: output zeros (rather than the last valid
            output) at masked steps.
        manual_gradient: differentiate with the cells' hand-written BPTT
            (:func:`_backward`) rather than TensorFlow's automatic
            differentiation of the loop. Both give the same gradients; the
            manual one keeps the per-step work minimal and computes the
            weight gradients as one product over all steps.
        project: ``projected`` holds the raw inputs ``[time, batch,
            features]``, and each step computes its own projection inside
            the loop (without ``manual_gradient`` only).

    Returns:
        ``(last_output, outputs, final_states)``; ``last_output`` is the output
        of the last unmasked step (zeros where every step is masked),
        ``outputs`` is ``[time, batch, units]`` or ``None``.
    """
    weights = cell.recurrent_weights(projected.dtype)
    n_states = len(states)
    if manual_gradient and project:
        raise ValueError("time_loop: `project=True` needs "
                         "`manual_gradient=False`.")
    if manual_gradient:
        @tf.custom_gradient
        def recurrence(projected, *tensors):
            states = list(tensors[:n_states])
            weights = list(tensors[n_states:])
            outputs, final_states, saved = _forward(
                cell, projected, states, weights, mask, recurrent_mask,
                return_sequences, save=True)

            def grad(*upstream):
                upstream = list(upstream)
                d_outputs = upstream.pop(0) if return_sequences else None
                d_states = [_zeros_if_none(d, s)
                            for d, s in zip(upstream, final_states)]
                if d_outputs is not None:
                    d_outputs = _zeros_if_none(d_outputs, outputs)
                d_projected, d_initial, d_weights = _backward(
                    cell, saved, weights, mask, recurrent_mask, d_outputs,
                    d_states)
                return [d_projected] + d_initial + list(d_weights)

            return ([outputs] if return_sequences else []) + final_states, grad

        results = recurrence(projected, *states, *weights)
        outputs = results.pop(0) if return_sequences else None
        final_states = list(results)
    else:
        outputs, final_states, _ = _forward(
            cell, projected, states, weights, mask, recurrent_mask,
            return_sequences, save=False, project=project)

    # The loop carries the states through masked steps; what a masked step
    # outputs follows from the mask alone: zeros with zero_output_for_mask,
    # else the last valid output (the carried h), zeros before the first.
    last_output = final_states[0]
    if mask is not None:
        any_valid = ops.expand_dims(ops.any(mask, axis=0), -1)
        last_output = ops.where(any_valid, last_output,
                                ops.zeros_like(last_output))
        if return_sequences:
            shown = (mask if zero_output_for_mask
                     else ops.cumsum(ops.cast(mask, "int32"), axis=0) > 0)
            outputs = ops.where(ops.expand_dims(shown, -1), outputs,
                                ops.zeros_like(outputs))
    return last_output, outputs, final_states


def _zeros_if_none(gradient, like):
    return tf.zeros_like(like) if gradient is None else gradient


@keras.saving.register_keras_serializable(package="nlpseq")
class RNN(keras.layers.Layer):
    """Runs a recurrent cell over a sequence.

    Args:
        cell: a :class:`~nlpseq.layers.base.RecurrentCell`.
        return_sequences: return the output of every step
            (``[batch, time, units]``) instead of the last one.
        return_state: also return the final states, as
            ``[output, *states]``.
        go_backwards: process the sequence from its last step to its first
            (the outputs then come in that reversed order).
        zero_output_for_mask: with ``return_sequences``, emit zeros at masked
            steps instead of repeating the last valid output.

    Call arguments:
        sequences: ``[batch, time, features]``.
        initial_state: list of tensors ``[batch, size]`` (zeros if omitted).
        mask: boolean ``[batch, time]``; masked steps carry the state through
            unchanged, so right- and left-padded batches give the same final
            state as the unpadded sequences. Taken automatically from an
            ``Embedding(mask_zero=True)``.
        training: enables ``dropout`` / ``recurrent_dropout`` of the cell.
    """

    def __init__(self, cell, return_sequences=False, return_state=False,
                 go_backwards=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not isinstance(cell, RecurrentCell):
            raise ValueError(
                "Received an invalid value for argument `cell`, expected an "
                f"nlpseq RecurrentCell, got {cell!r}."
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True

    @property
    def state_size(self):
        return self.cell.state_size

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape "
                f"[batch, time, features], got {tuple(sequences_shape)}."
            )
        if not self.cell.built:
            self.cell.build(sequences_shape)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        units = self.cell.output_size
        output = ((batch, steps, units) if self.return_sequences
                  else (batch, units))
        if not self.return_state:
            return output
        return [output] + [(batch, size) for size in self.cell.state_size]

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if not self.return_sequences or mask is None:
            return [None] * (1 + len(self.cell.state_size)) \
                if self.return_state else None
        if self.go_backwards:
            mask = ops.flip(mask, axis=1)
        if self.return_state:
            return [mask] + [None] * len(self.cell.state_size)
        return mask

    def get_initial_state(self, batch_size):
        return self.cell.get_initial_state(batch_size)

    def call(self, sequences, initial_state=None, mask=None, training=False,
             sequences_mask=None):
        # (Keras passes the mask as ``sequences_mask`` when the call has
        # other tensor arguments, such as ``initial_state``.)
        if mask is None:
            mask = sequences_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        sequences = ops.convert_to_tensor(sequences, dtype=self.compute_dtype)
        cell = self.cell
        batch = ops.shape(sequences)[0]
        if initial_state is None:
            states = cell.get_initial_state(batch)
        else:
            states = ([initial_state]
                      if not isinstance(initial_state, (list, tuple))
                      else list(initial_state))
            if len(states) != len(cell.state_size):
                raise ValueError(
                    f"`initial_state` of {self.name} must hold "
                    f"{len(cell.state_size)} tensor(s) "
                    f"({', '.join(cell.state_names)}), got {len(states)}."
                )
            states = [ops.cast(s, sequences.dtype) for s in states]

        recurrent_mask = None
        if training:
            if cell.dropout > 0:
                keep = keras.random.dropout(
                    ops.ones_like(sequences[:, 0, :]), cell.dropout,
                    seed=cell.seed_generator)
                sequences = sequences * ops.expand_dims(keep, 1)
            if cell.recurrent_dropout > 0:
                recurrent_mask = keras.random.dropout(
                    ops.ones_like(states[0]), cell.recurrent_dropout,
                    seed=cell.seed_generator)

        # One matrix product for every step: [time, batch, gates * units];
        # or, for the cells that run faster so in inference, one per step
        # inside the loop (``RecurrentCell.project_per_step``).
        per_step = cell.project_per_step and not training
        projected = ops.transpose(sequences, (1, 0, 2))
        if not per_step:
            projected = cell.project_inputs(projected)
        if mask is not None:
            mask = ops.transpose(ops.cast(mask, "bool"), (1, 0))
        if self.go_backwards:
            projected = ops.flip(projected, axis=0)
            if mask is not None:
                mask = ops.flip(mask, axis=0)

        # Training takes the hand-written BPTT; inference needs no gradient
        # and runs the lean loop (still differentiable by TensorFlow).
        last_output, outputs, final_states = time_loop(
            cell, projected, states, mask=mask, recurrent_mask=recurrent_mask,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
            manual_gradient=bool(training), project=per_step)

        output = (ops.transpose(outputs, (1, 0, 2)) if self.return_sequences
                  else last_output)
        if self.return_state:
            return [output] + final_states
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config


class CellLayer(RNN):
    """Base of the thin layers (``SimpleRNN``, ``LSTM``, ``GRU``).

    They take the cell's arguments directly, build the cell, and expose its
    arguments in ``get_config`` so the config reads like the constructor.
    """

    cell_class = None

    def __init__(self, units, return_sequences=False, return_state=False,
                 go_backwards=False, zero_output_for_mask=False, **kwargs):
        cell_kwargs = {
            key: kwargs.pop(key) for key in list(kwargs)
            if key in self.cell_arguments()
        }
        cell = self.cell_class(
            units, name="cell", dtype=kwargs.get("dtype"), **cell_kwargs)
        super().__init__(
            cell, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards,
            zero_output_for_mask=zero_output_for_mask, **kwargs)

    @classmethod
    def cell_arguments(cls):
        """The cell's constructor arguments (besides ``units``)."""
        names = set()
        for klass in cls.cell_class.__mro__:
            if klass is keras.layers.Layer:
                break
            init = klass.__dict__.get("__init__")
            if init is not None:
                names.update(inspect.signature(init).parameters)
        return names - {"self", "units", "kwargs"}

    @property
    def units(self):
        return self.cell.units

    @property
    def activation(self):
        return self.cell.activation

    @property
    def dropout(self):
        return self.cell.dropout

    @property
    def recurrent_dropout(self):
        return self.cell.recurrent_dropout

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_config.pop(key, None)
        config.pop("cell")
        config.update(cell_config)
        return config
