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
                unroll=1, python_loop=False):
    """Run ``step(t, *loop_vars) -> (next t, *loop_vars)`` for ``count``
    time steps, ``t`` counting up from ``first`` (or down with ``down``).

    With ``unroll``, the loop body runs that many steps, so that the loop's
    own bookkeeping (several operations per loop variable and iteration) is
    paid once for them; a second loop runs the remaining steps one at a
    time. With ``python_loop`` (``unroll=True`` of the layers; the number
    of steps must be static) the steps are unrolled in Python instead: no
    ``tf.while_loop``, one copy of the step per time step in the graph.
    Returns the final loop variables (without ``t``).
    """
    if python_loop and static_count is not None:
        t = first
        for _ in range(static_count):
            t, *loop_vars = step(t, *loop_vars)
        return tuple(loop_vars)
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
             return_sequences, save, project=False, unroll=False):
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
        unroll=cell.steps_per_iteration, python_loop=unroll)
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
              manual_gradient=True, project=False, unroll=False,
              weight_mask=None):
    """Run ``cell.step`` over time-major ``projected`` inputs.

    Args:
        cell: the cell whose ``step`` is applied.
        projected: ``[time, batch, gates*units]``, the input projections.
        states: list of initial states ``[batch, size]``.
        mask: optional boolean ``[time, batch]``; at a masked step the states
            are carried through unchanged.
        recurrent_mask: optional dropout mask for ``h_{t-1}``.
        return_sequences: whether to collect the output of every step.
        weight_mask: optional DropConnect mask of the recurrent kernel
            (``weight_drop``), applied once before the first step; the
            gradients reach the kernel through it.
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
        unroll: run the forward steps as a Python loop (one copy of the step
            per time step in the graph) rather than a ``tf.while_loop``;
            needs a static number of steps (else the while loop runs).

    Returns:
        ``(last_output, outputs, final_states)``; ``last_output`` is the output
        of the last unmasked step (zeros where every step is masked),
        ``outputs`` is ``[time, batch, units]`` or ``None``.
    """
    weights = (cell.recurrent_weights(projected.dtype) if weight_mask is None
               else cell.recurrent_weights(projected.dtype, weight_mask))
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
                return_sequences, save=True, unroll=unroll)

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
            return_sequences, save=False, project=project, unroll=unroll)

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


class _CellStep:
    """Any Keras cell (``call(inputs, states)`` and ``state_size``) as the
    time loop's cell: its input projection is the input itself, it has no
    recurrent weights of its own for the loop and no hand-written backward
    (the loop runs without ``manual_gradient``: TensorFlow differentiates
    it). Its loop states are ``[output, *cell states flattened]``: carrying
    the output as a state lets the loop treat masked steps, the last output
    and the output sequence as for nlpseq's cells, whose output is their
    first state."""

    cache_size = 0
    steps_per_iteration = 1
    project_per_step = False

    def __init__(self, cell, structure, training):
        self.cell = cell
        self.structure = structure
        self.call = cell if callable(cell) else cell.call
        self.kwargs = {}
        if _call_has_training(cell):
            self.kwargs["training"] = training

    def project_inputs(self, inputs):
        return inputs

    def recurrent_weights(self, dtype=None):
        return []

    def step(self, inputs, states, weights, recurrent_mask=None):
        cell_states = keras.tree.pack_sequence_as(self.structure, states[1:])
        output, new_states = self.call(inputs, cell_states, **self.kwargs)
        new_states = keras.tree.flatten(new_states)
        return output, [output] + new_states, []


def _call_has_training(cell):
    call = getattr(cell, "call", None)
    if call is None:
        return False
    try:
        return "training" in inspect.signature(call).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _configure_dropout(cell, inputs, states):
    """Draw the dropout masks of Keras' cells (``DropoutRNNCell``) before
    the loop, as ``keras.layers.RNN`` does, so that every step reuses them;
    for a stack, each cell's masks from its own inputs."""
    state = states[0] if isinstance(states, (list, tuple)) else states
    if hasattr(cell, "get_dropout_mask") and hasattr(
            cell, "get_recurrent_dropout_mask"):
        cell.get_dropout_mask(inputs)
        cell.get_recurrent_dropout_mask(state)
    if isinstance(cell, keras.layers.StackedRNNCells):
        for inner, inner_states in zip(cell.cells, states):
            _configure_dropout(inner, inputs, inner_states)
            inner_states = (list(inner_states)
                            if keras.tree.is_nested(inner_states)
                            else [inner_states])
            call = inner if callable(inner) else inner.call
            inputs, _ = call(inputs, inner_states)


def _reset_dropout(cell):
    if hasattr(cell, "reset_dropout_mask"):
        cell.reset_dropout_mask()
    if hasattr(cell, "reset_recurrent_dropout_mask"):
        cell.reset_recurrent_dropout_mask()
    if isinstance(cell, keras.layers.StackedRNNCells):
        for inner in cell.cells:
            _reset_dropout(inner)


@keras.saving.register_keras_serializable(package="nlpseq")
class RNN(keras.layers.Layer):
    """Runs a recurrent cell over a sequence.

    Args:
        cell: a :class:`~nlpseq.layers.base.RecurrentCell` (nlpseq's cells:
            the fast loop with the hand-written backward); or any Keras cell,
            that is any object with ``call(inputs, states)`` returning
            ``(output, new_states)`` and a ``state_size`` (``keras.layers.
            LSTMCell``, your own cell, ...), or a list of cells (stacked as
            ``keras.layers.StackedRNNCells``): the same loop, differentiated
            by TensorFlow.
        return_sequences: return the output of every step
            (``[batch, time, units]``) instead of the last one.
        return_state: also return the final states, as
            ``[output, *states]``.
        go_backwards: process the sequence from its last step to its first
            (the outputs then come in that reversed order).
        stateful: carry the final states of a batch over as the initial
            states of the next batch (row ``i`` continues row ``i``), as in
            Keras: a long sequence can be fed in chunks (streaming
            inference). Needs a static batch size; ``reset_state()`` (or
            ``reset_states()``) sets the states back to zeros.
        unroll: unroll the loop in Python (one copy of the step per time
            step in the graph) instead of a ``tf.while_loop``; needs a known
            number of steps. The outputs are the same; as in Keras, it can
            be faster for short sequences and uses more memory.
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
                 go_backwards=False, stateful=False, unroll=False,
                 zero_output_for_mask=False, **kwargs):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if isinstance(cell, (list, tuple)):
            cell = keras.layers.StackedRNNCells(list(cell))
        if "call" not in dir(cell):
            raise ValueError(
                "Received an invalid value for argument `cell`, expected an "
                "RNN cell (an object with a `call` method and a `state_size` "
                f"attribute), got {cell!r}."
            )
        if "state_size" not in dir(cell):
            raise ValueError(
                "Received an invalid value for argument `cell`, expected an "
                "RNN cell with a `state_size` attribute (single integer or "
                f"list of integers, one per state), got {cell!r}."
            )
        # One dtype policy for the layer and its cell: the layer's when given
        # (``RNN(LSTMCell(4), dtype="mixed_float16")``), else the cell's.
        if isinstance(cell, keras.layers.Layer):
            if kwargs.get("dtype") is None:
                kwargs["dtype"] = cell.dtype_policy
            elif (keras.dtype_policies.get(kwargs["dtype"]).name
                  != cell.dtype_policy.name):
                cell.dtype_policy = kwargs["dtype"]
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        # stateful: the states carried between batches (not weights: not
        # saved, as in Keras)
        self._state_variables = None
        self._expected_batch_size = None

    @property
    def fast(self):
        """Whether the cell is an nlpseq cell: the fast loop with the
        hand-written backward (else TensorFlow differentiates the loop)."""
        return isinstance(self.cell, RecurrentCell)

    @property
    def state_size(self):
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    @property
    def _flat_state_size(self):
        return keras.tree.flatten(self.state_size)

    @property
    def _output_size(self):
        size = getattr(self.cell, "output_size", None)
        if size is None:
            size = self._flat_state_size[0]
        return size

    @property
    def states(self):
        """The carried states of a ``stateful`` layer (variables), or
        ``None``."""
        return self._state_variables

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape "
                f"[batch, time, features], got {tuple(sequences_shape)}."
            )
        if isinstance(self.cell, keras.layers.Layer) and not self.cell.built:
            if self.fast:
                self.cell.build(sequences_shape)
            else:
                self.cell.build((sequences_shape[0],)
                                + tuple(sequences_shape[2:]))
                self.cell.built = True
        if self.stateful:
            if self._state_variables is not None:
                self.reset_state()
            else:
                if sequences_shape[0] is None:
                    raise ValueError(
                        "When using `stateful=True` in a RNN, the batch size "
                        "must be static. Found dynamic batch size: "
                        f"sequence.shape={tuple(sequences_shape)}"
                    )
                self._create_state_variables(sequences_shape[0])

    def _create_state_variables(self, batch_size):
        # (assigned past Keras' attribute tracking: the states are not
        # weights of the layer, as in keras.layers.RNN)
        structure = self.get_initial_state(batch_size)
        states = keras.tree.flatten(structure)
        variables = [
            keras.Variable(state, trainable=False,
                           dtype=keras.backend.standardize_dtype(state.dtype),
                           name="rnn_state")
            for state in states
        ]
        object.__setattr__(self, "_state_variables", variables)
        object.__setattr__(self, "_state_structure", structure)
        object.__setattr__(self, "_expected_batch_size", int(batch_size))

    def reset_state(self):
        """Set the carried states of a ``stateful`` layer back to zeros."""
        if self._state_variables is not None:
            for variable in self._state_variables:
                variable.assign(ops.zeros_like(variable.value))

    def reset_states(self):
        """Alias of :meth:`reset_state` (Keras 2's name)."""
        self.reset_state()

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        units = self._output_size
        output = ((batch, steps, units) if self.return_sequences
                  else (batch, units))
        if not self.return_state:
            return output
        states = []
        for size in self.state_size:
            if isinstance(size, (list, tuple)):
                states.append([(batch, s) for s in size])
            else:
                states.append((batch, size))
        return [output] + states

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if not self.return_sequences or mask is None:
            return [None] * (1 + len(self.state_size)) \
                if self.return_state else None
        if self.go_backwards:
            mask = ops.flip(mask, axis=1)
        if self.return_state:
            return [mask] + [None] * len(self.state_size)
        return mask

    def get_initial_state(self, batch_size):
        if self.fast:
            return self.cell.get_initial_state(batch_size)
        get_initial_state = getattr(self.cell, "get_initial_state", None)
        if get_initial_state is None:
            dtype = getattr(self.cell, "compute_dtype", self.compute_dtype)
            return [ops.zeros((batch_size, size), dtype=dtype)
                    for size in self.state_size]
        states = get_initial_state(batch_size=batch_size)
        if not keras.tree.is_nested(states):
            states = [states]
        return list(states)

    def _cell_dtype(self):
        return getattr(self.cell, "compute_dtype", self.compute_dtype)

    def call(self, sequences, initial_state=None, mask=None, training=False,
             sequences_mask=None):
        # (Keras passes the mask as ``sequences_mask`` when the call has
        # other tensor arguments, such as ``initial_state``.)
        if mask is None:
            mask = sequences_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.unroll and sequences.shape[1] is None:
            raise ValueError(
                "Cannot unroll a RNN if the time dimension is undefined. "
                "Pass `unroll=False`, or give the time dimension to the "
                "model's `Input()` (its `shape` or `batch_shape`)."
            )
        if self.stateful:
            batch = sequences.shape[0]
            if (self._expected_batch_size is not None and batch is not None
                    and batch != self._expected_batch_size):
                raise ValueError(
                    "If an RNN is stateful, the batch size of the input "
                    "sequences must be the same as the batch size of the "
                    "initial state. \n- Expected batch size: "
                    f"{self._expected_batch_size}\n- Received batch size: "
                    f"{batch}"
                )
            if initial_state is None:
                initial_state = keras.tree.pack_sequence_as(
                    self._state_structure,
                    [v.value for v in self._state_variables])
        # The cell computes in its own dtype (the layer's unless the cell was
        # given another); the results come out in the layer's.
        sequences = ops.convert_to_tensor(sequences, dtype=self._cell_dtype())
        if mask is not None:
            mask = ops.transpose(ops.cast(mask, "bool"), (1, 0))
        if self.fast:
            output, final_states = self._run_cell(
                sequences, initial_state, mask, training)
        else:
            output, final_states = self._run_keras_cell(
                sequences, initial_state, mask, training)
        if self.stateful:
            for variable, state in zip(self._state_variables,
                                       keras.tree.flatten(final_states)):
                variable.assign(ops.cast(state, variable.dtype))
        output = ops.cast(output, self.compute_dtype)
        if self.return_state:
            final_states = keras.tree.map_structure(
                lambda s: ops.cast(s, self.compute_dtype), final_states)
            return [output] + list(final_states)
        return output

    def trace(self, inputs, mask=None, initial_state=None):
        """Run the layer step by step and return every step's gate values.

        The tracing API (``nlpseq lab gates`` draws it): the cell's own
        :meth:`~nlpseq.layers.base.RecurrentCell.step` runs at each step,
        without dropout, and
        :meth:`~nlpseq.layers.base.RecurrentCell.step_values` names its
        intermediate values: ``pre_activation``, ``h`` (simple RNN);
        ``input``, ``forget``, ``candidate``, ``output``, ``c``, ``h``
        (LSTM); ``update``, ``reset``, ``candidate``, ``h`` (GRU; no
        ``reset`` without the reset gate). It is a separate, eager Python
        loop over the steps, meant for short texts; calling the layer (the
        fast loop, in training and inference) is unchanged by it.

        Args:
            inputs: ``[batch, time, features]``.
            mask: optional boolean ``[batch, time]``; masked steps carry the
                states through and their values are zeros.
            initial_state: optional list of the cell's initial states.

        Returns:
            ``(outputs, values)``: ``outputs`` ``[batch, time, units]``, the
            hidden state after each step, and ``values`` a dict from each
            name to ``[batch, time, units]``, as NumPy arrays. Both are in
            the order of the input's steps, also with ``go_backwards``
            (step ``t`` is the one that read input ``t``).

        Example:

        >>> import numpy as np
        >>> from nlpseq.layers import LSTM
        >>> layer = LSTM(3)
        >>> outputs, values = layer.trace(np.zeros((1, 4, 2), "float32"))
        >>> sorted(values), values["forget"].shape
        (['c', 'candidate', 'forget', 'h', 'input', 'output'], (1, 4, 3))
        """
        import numpy as np

        cell = self.cell
        if not self.fast:
            raise ValueError(
                f"{type(self).__name__}.trace needs one of nlpseq's cells, "
                f"got {type(cell).__name__}.")
        sequences = ops.convert_to_tensor(inputs, dtype=self._cell_dtype())
        if len(sequences.shape) != 3:
            raise ValueError(
                "trace expects inputs of shape [batch, time, features], got "
                f"{tuple(sequences.shape)}.")
        if not self.built:
            self.build(sequences.shape)
        batch, steps = sequences.shape[0], sequences.shape[1]
        if initial_state is None:
            states = cell.get_initial_state(batch)
        else:
            states = [ops.cast(s, sequences.dtype) for s in (
                initial_state if isinstance(initial_state, (list, tuple))
                else [initial_state])]
        keep = (None if mask is None
                else np.asarray(ops.convert_to_numpy(mask), bool))
        projected = cell.project_inputs(sequences)
        weights = cell.recurrent_weights(projected.dtype)
        order = range(steps - 1, -1, -1) if self.go_backwards else range(
            steps)
        outputs = [None] * steps
        values = {name: [None] * steps for name in cell.trace_names}
        for t in order:
            _, new_states, step_values = cell.trace_step(
                projected[:, t], states, weights)
            if keep is not None:
                row = ops.convert_to_tensor(keep[:, t:t + 1])
                new_states = [ops.where(row, new, old)
                              for new, old in zip(new_states, states)]
                step_values = {
                    name: ops.where(row, value, ops.zeros_like(value))
                    for name, value in step_values.items()}
            states = new_states
            outputs[t] = ops.convert_to_numpy(states[0])
            for name, value in step_values.items():
                values[name][t] = ops.convert_to_numpy(value)
        return (np.stack(outputs, axis=1),
                {name: np.stack(v, axis=1) for name, v in values.items()})

    def _run_cell(self, sequences, initial_state, mask, training):
        """An nlpseq cell: the fast loop (hand-written backward in
        training)."""
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

        recurrent_mask = weight_mask = None
        if training:
            if getattr(cell, "weight_drop", 0) > 0:
                weight_mask = keras.random.dropout(
                    ops.ones_like(cell.recurrent_kernel), cell.weight_drop,
                    seed=cell.seed_generator)
            if cell.dropout > 0:
                keep = keras.random.dropout(
                    ops.ones_like(sequences[:, 0, :]), cell.dropout,
                    seed=cell.seed_generator)
                sequences = sequences * ops.expand_dims(keep, 1)
            if cell.recurrent_dropout > 0:
                recurrent_mask = keras.random.dropout(
                    ops.ones_like(states[0]), cell.recurrent_dropout,
                    seed=cell.seed_generator)

        if self.go_backwards and mask is not None:
            mask = ops.flip(mask, axis=0)

        def run(per_step):
            # One matrix product for every step: [time, batch, gates *
            # units]; or, with ``per_step``, one per step inside the loop.
            projected = ops.transpose(sequences, (1, 0, 2))
            if not per_step:
                projected = cell.project_inputs(projected)
            if self.go_backwards:
                projected = ops.flip(projected, axis=0)
            # Training takes the hand-written BPTT; inference needs no
            # gradient and runs the lean loop (still differentiable by
            # TensorFlow).
            last_output, outputs, final_states = time_loop(
                cell, projected, states, mask=mask,
                recurrent_mask=recurrent_mask, weight_mask=weight_mask,
                return_sequences=self.return_sequences,
                zero_output_for_mask=self.zero_output_for_mask,
                manual_gradient=bool(training), project=per_step,
                unroll=self.unroll)
            output = (ops.transpose(outputs, (1, 0, 2))
                      if self.return_sequences else last_output)
            return output, list(final_states)

        # The cells that run faster so in inference project each step's
        # input inside the loop from a batch of
        # ``PROJECT_PER_STEP_FROM_BATCH`` rows on (``project_per_step``);
        # a smaller batch's step time is its number of operations, and it
        # takes the one product before the loop. (A batch known only when
        # the graph runs chooses then.)
        if not (cell.project_per_step and not training):
            return run(False)
        least = cell.PROJECT_PER_STEP_FROM_BATCH
        batch = sequences.shape[0]
        if batch is not None or least <= 1:
            return run(batch is None or batch >= least)
        return tf.cond(tf.shape(sequences)[0] >= least,
                       lambda: run(True), lambda: run(False))

    def _run_keras_cell(self, sequences, initial_state, mask, training):
        """Any other cell: the same loop over ``cell(x_t, states)``,
        differentiated by TensorFlow."""
        cell = self.cell
        dtype = sequences.dtype
        batch = ops.shape(sequences)[0]
        if initial_state is None:
            initial_state = self.get_initial_state(batch)
        elif not keras.tree.is_nested(initial_state):
            initial_state = [initial_state]
        structure = list(initial_state)
        flat = keras.tree.flatten(structure)
        if len(flat) != len(self._flat_state_size):
            raise ValueError(
                f"`initial_state` of {self.name} must hold "
                f"{len(self._flat_state_size)} tensor(s), got {len(flat)}."
            )
        flat = [ops.convert_to_tensor(s, dtype=dtype) for s in flat]
        structure = keras.tree.pack_sequence_as(structure, flat)
        _configure_dropout(cell, sequences[:, 0, :], structure)
        step = _CellStep(cell, structure, training)
        zeros = ops.zeros((batch, self._output_size), dtype=dtype)
        inputs = ops.transpose(sequences, (1, 0, 2))
        if self.go_backwards:
            inputs = ops.flip(inputs, axis=0)
            if mask is not None:
                mask = ops.flip(mask, axis=0)
        last_output, outputs, final_states = time_loop(
            step, inputs, [zeros] + flat, mask=mask,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
            manual_gradient=False, unroll=self.unroll)
        _reset_dropout(cell)
        output = (ops.transpose(outputs, (1, 0, 2)) if self.return_sequences
                  else last_output)
        return output, keras.tree.pack_sequence_as(structure,
                                                   final_states[1:])

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The layer of ``config``, its cell deserialized with
        ``custom_objects``, as Keras' ``RNN.from_config`` does (a user's
        own cell class need not be registered)."""
        config = dict(config)
        if isinstance(config.get("cell"), dict):
            config["cell"] = keras.saving.deserialize_keras_object(
                config["cell"], custom_objects=custom_objects)
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config


_CELL_ARGUMENTS = {}


class CellLayer(RNN):
    """Base of the thin layers (``SimpleRNN``, ``LSTM``, ``GRU``).

    They take the cell's arguments directly, build the cell, and expose its
    arguments in ``get_config`` so the config reads like the constructor.
    """

    cell_class = None
    #: whether the layer takes Keras' ``use_cudnn`` (``LSTM``, ``GRU``)
    takes_use_cudnn = False

    def __init__(self, units, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False,
                 zero_output_for_mask=False, **kwargs):
        use_cudnn = kwargs.pop("use_cudnn", "auto") \
            if self.takes_use_cudnn else None
        cell_kwargs = {
            key: kwargs.pop(key) for key in list(kwargs)
            if key in self.cell_arguments()
        }
        cell = self.cell_class(
            units, name="cell", dtype=kwargs.get("dtype"), **cell_kwargs)
        super().__init__(
            cell, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards,
            stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, **kwargs)
        if self.takes_use_cudnn:
            # Accepted as in Keras. nlpseq's loop is its own on every
            # device: on a CPU this changes nothing, and on a GPU nlpseq
            # does not call cuDNN (``to_keras`` converts a model to Keras'
            # layers, which do).
            if use_cudnn not in ("auto", True, False):
                raise ValueError(
                    "Received an invalid value for argument `use_cudnn`, "
                    "expected one of 'auto', True, False, got "
                    f"{use_cudnn!r}."
                )
            self.use_cudnn = use_cudnn

    @classmethod
    def cell_arguments(cls):
        """The cell's constructor arguments (besides ``units``)."""
        names = _CELL_ARGUMENTS.get(cls.cell_class)
        if names is None:
            names = set()
            for klass in cls.cell_class.__mro__:
                if klass is keras.layers.Layer:
                    break
                init = klass.__dict__.get("__init__")
                if init is not None:
                    names.update(inspect.signature(init).parameters)
            names = frozenset(names - {"self", "units", "kwargs"})
            _CELL_ARGUMENTS[cls.cell_class] = names
        return names

    def __getattr__(self, name):
        # The cell's arguments read as the layer's (``layer.units``,
        # ``layer.kernel_constraint``, ...), as in Keras.
        if name != "cell" and name in type(self).cell_arguments():
            cell = self.__dict__.get("cell")
            if cell is not None:
                return getattr(cell, name)
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'")

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
        if self.takes_use_cudnn:
            config["use_cudnn"] = self.use_cudnn
        return config
