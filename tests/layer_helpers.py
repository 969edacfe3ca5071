"""Shared test helpers: NumPy reference cells, a reference time loop, checks.

The reference cells are written from the equations of SPEC section 1, in the
notation taught there (``W [h_{t-1}, x_t]`` on column vectors), in float64
NumPy, and independently of nlpseq's own code: they only read the fused weight
layout that nlpseq documents (and shares with Keras):

- ``kernel`` ``[input_dim, gates * units]``: column block ``g`` is ``W^x_g``
  transposed (the part of ``W_g`` that multiplies ``x_t``);
- ``recurrent_kernel`` ``[units, gates * units]``: block ``g`` is ``W^h_g``
  transposed (the part of ``W_g`` that multiplies ``h_{t-1}``);
- ``bias`` ``[gates * units]`` (GRU ``reset_after``: ``[2, 3 * units]``, the
  input bias then the recurrent bias).

Gate order: LSTM ``i, f, C~, o``; GRU ``z, r, h~`` (``z, h~`` without the
reset gate).

So ``W_g [h_{t-1}, x_t] = W^h_g h_{t-1} + W^x_g x_t`` with
``W_g = [recurrent_kernel_g^T | kernel_g^T]``. With a batch of row vectors
``v`` (shape ``[batch, n]``), ``W v`` for every row is ``v @ W.T``; see
:func:`matvec`.
"""

import itertools
import re

import keras
import numpy as np
import tensorflow as tf

from nlpseq import layers as nl

BATCH, TIME, FEATURES, UNITS = 3, 6, 4, 5
ATOL = 1e-5

# ---------------------------------------------------------------------------
# Activations and small linear-algebra helpers
# ---------------------------------------------------------------------------


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "relu": lambda a: np.maximum(a, 0.0),
    "linear": lambda a: a,
    None: lambda a: a,
}


def matvec(W, v):
    """``W v`` for each row vector of the batch ``v`` ([batch, n])."""
    return v @ W.T


def concat(h, x):
    """``[h_{t-1}, x_t]`` for a batch of row vectors."""
    return np.concatenate([h, x], axis=-1)


def gate_blocks(matrix, gates):
    """Split a fused ``[..., gates * units]`` weight into its gate blocks."""
    return np.split(np.asarray(matrix, np.float64), gates, axis=-1)


def gate_matrices(kernel, recurrent_kernel, gates):
    """``W_g`` acting on ``[h_{t-1}, x_t]``, one per gate ([units, units+in])."""
    return [
        np.concatenate([wh.T, wx.T], axis=1)
        for wh, wx in zip(gate_blocks(recurrent_kernel, gates),
                          gate_blocks(kernel, gates))
    ]


# ---------------------------------------------------------------------------
# Reference cells
# ---------------------------------------------------------------------------


class RefCell:
    """A reference cell: ``step(x_t, states, recurrent_mask)``.

    ``recurrent_mask`` (optional, ``[batch, units]``) is the variational
    dropout mask multiplied onto ``h_{t-1}`` wherever it enters a product
    with a recurrent weight (the carried state itself is not dropped).
    """

    state_names = ("h",)

    def __init__(self, units):
        self.units = units

    def initial_states(self, batch):
        return [np.zeros((batch, self.units)) for _ in self.state_names]


# Each reference cell's ``step`` leaves the values it computed, by name, in
# ``values`` (the gates, the candidate and the states): the reference of the
# layers' tracing API.


class RefSimpleRNN(RefCell):
    """``h_t = act(W_hh h_{t-1} + W_xh x_t + b_h)``."""

    def __init__(self, kernel, recurrent_kernel, bias=None,
                 activation="tanh"):
        super().__init__(np.shape(recurrent_kernel)[0])
        self.W_xh = np.asarray(kernel, np.float64).T
        self.W_hh = np.asarray(recurrent_kernel, np.float64).T
        self.b_h = (np.zeros(self.units) if bias is None
                    else np.asarray(bias, np.float64))
        self.act = ACTIVATIONS[activation]

    def step(self, x, states, recurrent_mask=None):
        (h_prev,) = states
        h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        a = matvec(self.W_hh, h_in) + matvec(self.W_xh, x) + self.b_h
        h = self.act(a)
        self.values = {"pre_activation": a, "h": h}
        return h, [h]


class RefLSTM(RefCell):
    """The LSTM of SPEC section 1 (gates i, f, C~, o)."""

    state_names = ("h", "c")

    def __init__(self, kernel, recurrent_kernel, bias=None):
        super().__init__(np.shape(recurrent_kernel)[0])
        self.W_i, self.W_f, self.W_C, self.W_o = gate_matrices(
            kernel, recurrent_kernel, 4)
        if bias is None:
            bias = np.zeros(4 * self.units)
        self.b_i, self.b_f, self.b_C, self.b_o = gate_blocks(bias, 4)

    def step(self, x, states, recurrent_mask=None):
        h_prev, C_prev = states
        h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        hx = concat(h_in, x)
        f = sigmoid(matvec(self.W_f, hx) + self.b_f)
        i = sigmoid(matvec(self.W_i, hx) + self.b_i)
        C_tilde = np.tanh(matvec(self.W_C, hx) + self.b_C)
        C = f * C_prev + i * C_tilde
        o = sigmoid(matvec(self.W_o, hx) + self.b_o)
        h = o * np.tanh(C)
        self.values = {"input": i, "forget": f, "candidate": C_tilde,
                       "output": o, "c": C, "h": h}
        return h, [h, C]


class RefGRU(RefCell):
    """The GRU of SPEC section 1 and its two variants.

    - default: reset gate applied to ``h_{t-1}`` before the product,
      ``h~ = tanh(W_h (r * h_{t-1}) + W_x x_t + b_h)``;
    - ``reset_after``: ``h~ = tanh(r * (W_h h_{t-1} + b'_h) + W_x x_t + b_h)``
      and every gate gets both biases (input and recurrent);
    - ``reset_gate=False`` (minimal GRU): ``h~ = tanh(W_h h_{t-1} + W_x x_t
      + b_h)``, gates z and h~ only.

    In every case ``h_t = z * h~ + (1 - z) * h_{t-1}``.
    """

    def __init__(self, kernel, recurrent_kernel, bias=None, reset_gate=True,
                 reset_after=False):
        super().__init__(np.shape(recurrent_kernel)[0])
        self.reset_gate = reset_gate
        self.reset_after = reset_after
        gates = 3 if reset_gate else 2
        units = self.units
        kernel = np.asarray(kernel, np.float64)
        recurrent_kernel = np.asarray(recurrent_kernel, np.float64)
        if bias is None:
            bias = np.zeros((2, 3 * units) if reset_after else gates * units)
        bias = np.asarray(bias, np.float64)
        wx = gate_blocks(kernel, gates)
        wh = gate_blocks(recurrent_kernel, gates)
        # The update (and reset) gates act on [h_{t-1}, x_t].
        self.W_z = np.concatenate([wh[0].T, wx[0].T], axis=1)
        if reset_gate:
            self.W_r = np.concatenate([wh[1].T, wx[1].T], axis=1)
        # The candidate keeps its two halves apart (the reset gate sits
        # between them).
        self.W_h, self.W_x = wh[-1].T, wx[-1].T
        if reset_after:
            b_in, b_rec = gate_blocks(bias[0], 3), gate_blocks(bias[1], 3)
            self.b_z = b_in[0] + b_rec[0]
            self.b_r = b_in[1] + b_rec[1]
            self.b_h, self.b_h_rec = b_in[2], b_rec[2]
        else:
            blocks = gate_blocks(bias, gates)
            self.b_z, self.b_h = blocks[0], blocks[-1]
            if reset_gate:
                self.b_r = blocks[1]

    def step(self, x, states, recurrent_mask=None):
        (h_prev,) = states
        h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        hx = concat(h_in, x)
        z = sigmoid(matvec(self.W_z, hx) + self.b_z)
        r = None
        if not self.reset_gate:
            h_tilde = np.tanh(matvec(self.W_h, h_in) + matvec(self.W_x, x)
                              + self.b_h)
        elif self.reset_after:
            r = sigmoid(matvec(self.W_r, hx) + self.b_r)
            h_tilde = np.tanh(r * (matvec(self.W_h, h_in) + self.b_h_rec)
                              + matvec(self.W_x, x) + self.b_h)
        else:
            r = sigmoid(matvec(self.W_r, hx) + self.b_r)
            h_tilde = np.tanh(matvec(self.W_h, r * h_in)
                              + matvec(self.W_x, x) + self.b_h)
        h = z * h_tilde + (1.0 - z) * h_prev
        self.values = {"update": z, "candidate": h_tilde, "h": h}
        if r is not None:
            self.values["reset"] = r
        return h, [h]


def nlpseq_cell(layer):
    """The nlpseq cell of a layer (or the cell itself)."""
    return layer.cell if isinstance(layer, nl.RNN) else layer


def reference_cell(layer):
    """A reference cell holding the current weights of an nlpseq layer/cell."""
    cell = nlpseq_cell(layer)
    config = cell.get_config()
    kernel = keras.ops.convert_to_numpy(cell.kernel)
    recurrent = keras.ops.convert_to_numpy(cell.recurrent_kernel)
    bias = (None if cell.bias is None
            else keras.ops.convert_to_numpy(cell.bias))
    if isinstance(cell, nl.LSTMCell):
        assert config["activation"] == "tanh"
        assert config["recurrent_activation"] == "sigmoid"
        return RefLSTM(kernel, recurrent, bias)
    if isinstance(cell, nl.GRUCell):
        assert config["activation"] == "tanh"
        assert config["recurrent_activation"] == "sigmoid"
        return RefGRU(kernel, recurrent, bias,
                      reset_gate=config["reset_gate"],
                      reset_after=config["reset_after"])
    if isinstance(cell, nl.SimpleRNNCell):
        return RefSimpleRNN(kernel, recurrent, bias,
                            activation=config["activation"])
    raise TypeError(f"no reference for {type(cell).__name__}")


# ---------------------------------------------------------------------------
# Reference time loop
# ---------------------------------------------------------------------------


def reference_rnn(cell, x, mask=None, initial_state=None, go_backwards=False,
                  return_sequences=False, return_state=False,
                  zero_output_for_mask=False, recurrent_mask=None):
    """Run a reference cell over ``x`` ([batch, time, features]).

    - masked steps carry every state through unchanged; the output emitted at
      a masked step is the previous output (zeros before the first valid
      step) or zeros with ``zero_output_for_mask``;
    - ``go_backwards`` processes the steps from last to first, and the
      sequence of outputs comes out in that processing order;
    - the returned "last output" is the output of the last valid step.
    """
    x = np.asarray(x, np.float64)
    batch, steps = x.shape[:2]
    if mask is None:
        mask = np.ones((batch, steps), bool)
    mask = np.asarray(mask, bool)
    if initial_state is None:
        states = cell.initial_states(batch)
    else:
        states = [np.asarray(s, np.float64) for s in initial_state]
    last = np.zeros((batch, cell.units))
    outputs = []
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    for t in order:
        output, new_states = cell.step(x[:, t], states, recurrent_mask)
        keep = mask[:, t][:, None]
        states = [np.where(keep, new, old)
                  for new, old in zip(new_states, states)]
        fill = np.zeros_like(last) if zero_output_for_mask else last
        outputs.append(np.where(keep, output, fill))
        last = np.where(keep, output, last)
    result = np.stack(outputs, axis=1) if return_sequences else last
    if return_state:
        return [result] + states
    return result


# ---------------------------------------------------------------------------
# Data and weights
# ---------------------------------------------------------------------------

MASKS = {
    # rows of different lengths, padding at the end
    "right": np.array([[1, 1, 1, 1, 1, 1],
                       [1, 1, 1, 1, 0, 0],
                       [1, 1, 0, 0, 0, 0]], bool),
    # padding at the start
    "left": np.array([[1, 1, 1, 1, 1, 1],
                      [0, 0, 1, 1, 1, 1],
                      [0, 0, 0, 0, 0, 1]], bool),
    # both kinds in one batch
    "mixed": np.array([[1, 1, 1, 0, 0, 0],
                       [0, 0, 1, 1, 1, 1],
                       [1, 1, 1, 1, 1, 1]], bool),
}


def random_inputs(seed=0, shape=(BATCH, TIME, FEATURES), dtype="float32"):
    """Random inputs; padded positions hold random values too (not zeros),
    so that a padded step that leaks into the result is noticed."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, shape).astype(dtype)


def randomize_weights(layer, seed=0, scale=0.6):
    """Replace every weight of ``layer`` by uniform noise (biases included:
    a zero bias would hide bias bugs)."""
    keras.utils.set_random_seed(seed)
    layer.set_weights([
        np.random.uniform(-scale, scale, w.shape).astype(w.dtype)
        for w in layer.get_weights()
    ])


def to_numpy(value):
    if isinstance(value, (list, tuple)):
        return [to_numpy(v) for v in value]
    return keras.ops.convert_to_numpy(value)


def assert_close(actual, expected, atol=ATOL, rtol=0.0):
    actual, expected = to_numpy(actual), to_numpy(expected)
    if isinstance(expected, list):
        assert isinstance(actual, list), type(actual)
        assert len(actual) == len(expected), (len(actual), len(expected))
        for a, e in zip(actual, expected):
            assert_close(a, e, atol=atol, rtol=rtol)
        return
    assert np.shape(actual) == np.shape(expected), (
        np.shape(actual), np.shape(expected))
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol)


def build_layer(layer_class, units=UNITS, features=FEATURES, seed=0,
                **kwargs):
    """An nlpseq layer built on ``[None, None, features]`` with random weights."""
    layer = layer_class(units, **kwargs)
    layer.build((None, None, features))
    randomize_weights(layer, seed)
    return layer


# ---------------------------------------------------------------------------
# Keras <-> nlpseq weights
# ---------------------------------------------------------------------------


def keras_weights_for_nlpseq(keras_layer, units):
    """Weights of a ``keras.layers.SimpleRNN/LSTM/GRU`` in nlpseq's form.

    SimpleRNN and LSTM share the layout (LSTM gates i, f, c, o in both).

    GRU: nlpseq follows the SPEC, ``h_t = z * h~ + (1 - z) * h_{t-1}``, while
    Keras computes ``h_t = z_k * h_{t-1} + (1 - z_k) * h~``: Keras' update
    gate is the complement, ``z = 1 - z_k``. As ``σ(-a) = 1 - σ(a)``, negating
    every term of the update gate's pre-activation (the z columns of
    ``kernel`` and ``recurrent_kernel`` and of both bias rows) turns one into
    the other. The reset gate and the candidate are the same in both.
    """
    weights = [np.array(w) for w in keras_layer.get_weights()]
    if isinstance(keras_layer, keras.layers.GRU):
        for w in weights:
            w[..., :units] *= -1.0
    return weights


# ---------------------------------------------------------------------------
# Error messages
# ---------------------------------------------------------------------------


def assert_message_names_argument(message, name):
    """The message names the argument (as a whole word)."""
    assert re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message), message


def assert_message_names(message, name, value):
    """The message names the argument and shows the offending value."""
    assert_message_names_argument(message, name)
    shown = repr(value) if isinstance(value, str) else str(value)
    assert re.search(
        rf"(?<![\w.]){re.escape(shown)}(?!\w|\.\d)", message), message


# ---------------------------------------------------------------------------
# Generic layer check
# ---------------------------------------------------------------------------


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_layer(make_layer, input_shape, expected_output_shapes,
                expected_num_weights, seed=0):
    """Shapes, weight count, config round trip and one training step.

    Args:
        make_layer: zero-argument factory of a fresh (unbuilt) layer.
        input_shape: ``(batch, time, features)``.
        expected_output_shapes: the shape of each output, in order (a single
            tuple for a single output).
        expected_num_weights: ``len(layer.weights)`` once built.
    """
    if isinstance(expected_output_shapes, tuple):
        expected_output_shapes = [expected_output_shapes]
    x = random_inputs(seed, input_shape)
    layer = make_layer()
    outputs = _as_list(layer(x))

    # shapes, eager and as declared by compute_output_shape
    assert [tuple(o.shape) for o in outputs] == [
        tuple(s) for s in expected_output_shapes]
    declared = layer.compute_output_shape(input_shape)
    if isinstance(declared, tuple) and all(
            isinstance(d, (int, type(None))) for d in declared):
        declared = [declared]
    assert [tuple(d) for d in declared] == [
        tuple(s) for s in expected_output_shapes]
    symbolic = _as_list(make_layer()(keras.Input(input_shape[1:])))
    assert [tuple(s.shape)[1:] for s in symbolic] == [
        tuple(s)[1:] for s in expected_output_shapes]

    # weights
    assert len(layer.weights) == expected_num_weights
    assert len(layer.trainable_weights) == expected_num_weights
    randomize_weights(layer, seed)
    outputs = _as_list(layer(x))

    # config round trip: same class, same config, same outputs
    config = layer.get_config()
    clone = type(layer).from_config(config)
    clone(x)
    assert len(clone.weights) == expected_num_weights
    clone.set_weights(layer.get_weights())
    assert_close(_as_list(clone(x)), outputs)
    assert clone.get_config() == config

    # one step of gradient descent lowers the loss and changes every weight
    # (the loss reads every output, e.g. both halves with merge_mode=None)
    rng = np.random.default_rng(seed + 1)
    targets = [rng.uniform(-1, 1, tuple(o.shape)).astype("float32")
               for o in outputs]

    def loss_fn():
        outs = _as_list(layer(x, training=True))
        return sum(keras.ops.mean((o - t) ** 2)
                   for o, t in zip(outs, targets))

    before = [np.array(w) for w in layer.get_weights()]
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads)
    optimizer = keras.optimizers.SGD(learning_rate=0.05)
    optimizer.apply_gradients(zip(grads, layer.trainable_weights))
    after = layer.get_weights()
    for old, new in zip(before, after):
        assert not np.allclose(old, new)
    assert float(loss_fn()) < float(loss)


# ---------------------------------------------------------------------------
# Generic gradient check
# ---------------------------------------------------------------------------


# The tiny cases of the gradient checks (batch 2, time 3, features 2,
# units 2), chosen to go through every path of backpropagation through time:
# per-step outputs, last output, final states, initial states, masks with
# left and right padding, zero outputs at masked steps, backward processing,
# and the dropout masks of training.
GRAD_MASK = np.array([[1, 1, 0], [0, 1, 1]], bool)
GRAD_CASES = {
    "sequences+states+initial": dict(
        layer=dict(return_sequences=True, return_state=True),
        mask=None, initial_state=True, training=False),
    "last+mask": dict(
        layer=dict(return_sequences=False),
        mask=GRAD_MASK, initial_state=False, training=False),
    "backwards+mask+zero_output+states": dict(
        layer=dict(return_sequences=True, return_state=True,
                   go_backwards=True, zero_output_for_mask=True),
        mask=GRAD_MASK, initial_state=True, training=False),
    "sequences+mask+dropout": dict(
        layer=dict(return_sequences=True, dropout=0.3,
                   recurrent_dropout=0.3, seed=4),
        mask=GRAD_MASK, initial_state=False, training=True),
}


def check_gradient_case(layer_class, layer_kwargs, case, seed=3):
    """Gradients of a scalar loss with respect to ``kernel``,
    ``recurrent_kernel``, ``bias``, the inputs and the initial states equal
    central finite differences (float64, eps 1e-6)."""
    spec = GRAD_CASES[case]
    layer = layer_class(2, dtype="float64", **spec["layer"], **layer_kwargs)
    layer.build((None, 3, 2))
    randomize_weights(layer, seed=seed, scale=0.9)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (2, 3, 2))
    states = ([rng.uniform(-1, 1, (2, size))
               for size in nlpseq_cell(layer).state_size]
              if spec["initial_state"] else [])
    check_gradients_fd(layer, x, mask=spec["mask"], initial_state=states,
                       training=spec["training"])


def check_gradients_fd(layer, x, mask=None, initial_state=(), training=False,
                       eps=1e-6, rtol=1e-6, atol=1e-9):
    """Gradients of ``sum_k <output_k, probe_k>`` with respect to every
    trainable weight, the inputs and the initial states equal central finite
    differences. ``layer`` must be a built float64 layer.

    With ``training`` the layer's non-trainable variables (the dropout seed
    generators) are restored before every evaluation, so that every
    evaluation draws the same dropout masks.
    """
    assert layer.compute_dtype == "float64"
    x_var = tf.Variable(np.asarray(x, np.float64), name="x")
    state_vars = [tf.Variable(np.asarray(s, np.float64), name=f"state{i}")
                  for i, s in enumerate(initial_state)]
    frozen = [v.numpy() for v in layer.non_trainable_variables]
    mask = None if mask is None else tf.constant(mask)

    def outputs():
        for variable, value in zip(layer.non_trainable_variables, frozen):
            variable.assign(value)
        return _as_list(layer(x_var, mask=mask, training=training,
                              initial_state=state_vars or None))

    rng = np.random.default_rng(11)
    probes = [tf.constant(rng.uniform(-1, 1, tuple(o.shape)))
              for o in outputs()]

    @tf.function
    def loss():
        return tf.add_n([tf.reduce_sum(o * p)
                         for o, p in zip(outputs(), probes)])

    targets = list(layer.trainable_weights) + [x_var] + state_vars
    with tf.GradientTape() as tape:
        value = loss()
    grads = tape.gradient(value, targets)
    for var, grad in zip(targets, grads):
        name = getattr(var, "path", var.name)
        assert grad is not None, name
        base = np.array(var.numpy())
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            shifted = base.copy()
            shifted[index] = base[index] + eps
            var.assign(shifted)
            plus = float(loss())
            shifted[index] = base[index] - eps
            var.assign(shifted)
            minus = float(loss())
            numeric[index] = (plus - minus) / (2 * eps)
        var.assign(base)
        assert np.abs(numeric).max() > 1e-4, name  # not a vacuous check
        np.testing.assert_allclose(to_numpy(grad), numeric, rtol=rtol,
                                   atol=atol, err_msg=name)


# ---------------------------------------------------------------------------
# Dropout: which fixed mask explains a training-mode output?
# ---------------------------------------------------------------------------


def candidate_masks(width, rate):
    """Every 0 / 1/(1-rate) mask of the given width."""
    scale = 1.0 / (1.0 - rate)
    return [np.array(bits, np.float64) * scale
            for bits in itertools.product((0.0, 1.0), repeat=width)]


def matching_masks(ref_cell, x_row, output_row, rate, kind,
                   return_sequences=True, atol=ATOL):
    """The per-sequence masks that reproduce one row of a training output.

    ``kind`` is ``"input"`` (a mask on the features of every ``x_t``) or
    ``"recurrent"`` (a mask on ``h_{t-1}``). A mask that is redrawn at each
    step matches none of them (with overwhelming probability).
    """
    x_row = np.asarray(x_row, np.float64)[None]
    width = x_row.shape[-1] if kind == "input" else ref_cell.units
    found = []
    for m in candidate_masks(width, rate):
        if kind == "input":
            expected = reference_rnn(ref_cell, x_row * m,
                                     return_sequences=return_sequences)
        else:
            expected = reference_rnn(ref_cell, x_row, recurrent_mask=m[None],
                                     return_sequences=return_sequences)
        if np.allclose(expected[0], output_row, atol=atol, rtol=0):
            found.append(m)
    return found


# ---------------------------------------------------------------------------
# Checks shared by the three cell test modules
# ---------------------------------------------------------------------------


def random_states(layer, seed=5, batch=BATCH):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (batch, size)).astype(layer.compute_dtype)
            for size in nlpseq_cell(layer).state_size]


# (mask_kind, go_backwards, return_sequences, return_state, initial_state):
# every mask kind with both directions and both output kinds, return_state
# on in half of them, plus initial states across masks and directions.
REFERENCE_CASES = [
    (mask_kind, go_backwards, return_sequences,
     return_sequences != go_backwards, False)
    for mask_kind in (None, "right", "left", "mixed")
    for go_backwards in (False, True)
    for return_sequences in (False, True)
] + [
    (None, False, True, True, True),
    ("mixed", True, False, True, True),
    ("right", False, False, False, True),
    ("left", True, True, True, True),
]
REFERENCE_ARGS = ("mask_kind, go_backwards, return_sequences, return_state, "
                  "with_initial_state")


def check_against_reference(layer_class, layer_kwargs, mask_kind,
                            go_backwards, return_sequences, return_state,
                            with_initial_state):
    """The layer and the NumPy reference loop agree to 1e-5."""
    layer = build_layer(layer_class, go_backwards=go_backwards,
                        return_sequences=return_sequences,
                        return_state=return_state, **layer_kwargs)
    x = random_inputs(1)
    mask = None if mask_kind is None else MASKS[mask_kind]
    initial_state = random_states(layer) if with_initial_state else None
    got = layer(x, mask=mask, initial_state=initial_state)
    expected = reference_rnn(
        reference_cell(layer), x, mask=mask, initial_state=initial_state,
        go_backwards=go_backwards, return_sequences=return_sequences,
        return_state=return_state)
    assert_close(got, expected)
    if return_state:
        n_states = len(nlpseq_cell(layer).state_size)
        assert isinstance(got, (list, tuple)) and len(got) == 1 + n_states
    # A mask, a backward pass or an initial state must change something,
    # otherwise the parametrization tests nothing.
    plain = reference_rnn(reference_cell(layer), x,
                          return_sequences=return_sequences)
    changed = (mask_kind, go_backwards, with_initial_state) != (
        None, False, False)
    first = expected[0] if return_state else expected
    assert changed == (not np.allclose(first, plain, atol=1e-4))


def make_keras_inputs(mask_source, seed=3):
    """Model inputs and the mask they carry: float inputs without a mask, or
    token ids (0 = padding, right- and left-padded rows) through an
    ``Embedding(mask_zero=True)``."""
    if mask_source is None:
        return random_inputs(seed), None
    ids = np.random.default_rng(seed).integers(1, 10, (BATCH, TIME))
    ids[MASKS["mixed"] == 0] = 0
    return ids.astype("int32"), MASKS["mixed"]


def check_keras_parity(nl_class, keras_class, kwargs, mask_source,
                       return_sequences, go_backwards):
    """Same outputs as ``keras.layers.<keras_class>`` with weights copied
    across (see :func:`keras_weights_for_nlpseq`)."""
    common = dict(return_sequences=return_sequences, return_state=True,
                  go_backwards=go_backwards)
    keras_layer = keras_class(UNITS, **common, **kwargs)
    nl_layer = nl_class(UNITS, **common, **kwargs)
    x, mask = make_keras_inputs(mask_source)
    if mask_source is None:
        inputs = keras.Input((TIME, FEATURES))
        features = inputs
    else:
        inputs = keras.Input((TIME,), dtype="int32")
        embedding = keras.layers.Embedding(10, FEATURES, mask_zero=True)
        features = embedding(inputs)
    model = keras.Model(inputs, [keras_layer(features), nl_layer(features)])
    randomize_weights(keras_layer, seed=4)
    if mask_source is not None:
        randomize_weights(embedding, seed=6, scale=1.0)
    nl_layer.set_weights(keras_weights_for_nlpseq(keras_layer, UNITS))
    keras_out, nl_out = model(x)
    assert_close(nl_out, keras_out)
    if mask is not None:
        # The mask reached the layer: each row's final states equal those of
        # its tokens alone, right-padded (the batch mixes left and right
        # padding).
        for row in range(BATCH):
            valid = x[row][mask[row]]
            alone = np.zeros((1, TIME), "int32")
            alone[0, :len(valid)] = valid
            _, nl_alone = model(alone)
            for state, state_alone in zip(nl_out[1:], nl_alone[1:]):
                assert_close(to_numpy(state)[row], to_numpy(state_alone)[0])


def check_truncated_last_state(layer_class, kwargs, mask_kind):
    """The last output and states of a padded row equal those computed on
    the row alone, cut to its real length."""
    layer = build_layer(layer_class, return_state=True, **kwargs)
    x = random_inputs(2)
    mask = MASKS[mask_kind]
    got = to_numpy(layer(x, mask=mask))
    for row in range(BATCH):
        alone = to_numpy(layer(x[row:row + 1][:, mask[row]]))
        for value, expected in zip(got, alone):
            assert_close(value[row], expected[0])
    # and without the mask the padding does matter (the test is not vacuous)
    unmasked = to_numpy(layer(x))
    assert not np.allclose(unmasked[0], got[0], atol=1e-4)


def check_dropout(layer_class, kwargs, which, return_sequences=True):
    """Dropout is off at inference, on in training, and the mask is drawn
    once per sequence and reused at every step (variational dropout)."""
    rate = 0.5
    units = 3  # 2**3 candidate recurrent masks per row
    features = FEATURES  # 2**4 candidate input masks per row
    rates = {"dropout": rate} if which == "input" else {
        "recurrent_dropout": rate}
    layer = layer_class(units, return_sequences=return_sequences, seed=11,
                        **rates, **kwargs)
    layer.build((None, None, features))
    randomize_weights(layer, seed=8)
    plain = layer_class(units, return_sequences=return_sequences, **kwargs)
    plain.build((None, None, features))
    plain.set_weights(layer.get_weights())
    x = random_inputs(9, (BATCH, TIME, features))

    # inference: deterministic and equal to the layer without dropout
    inference = to_numpy(layer(x, training=False))
    assert_close(layer(x), inference)
    assert_close(layer(x, training=False), inference)
    assert_close(plain(x), inference)

    # training: differs from inference
    trained = to_numpy(layer(x, training=True))
    assert not np.allclose(trained, inference, atol=1e-4)

    # ... by one fixed mask per row, the same at every step
    ref = reference_cell(plain)
    kind = "input" if which == "input" else "recurrent"
    for row in range(BATCH):
        found = matching_masks(ref, x[row], trained[row], rate, kind,
                               return_sequences=return_sequences)
        assert found, f"row {row}: no per-sequence {kind} mask explains it"


def check_cell_call(cell_class, kwargs):
    """``cell(x_t, states)`` is one step of the reference."""
    cell = cell_class(UNITS, **kwargs)
    x_t = random_inputs(4, (BATCH, FEATURES))
    states = [np.random.default_rng(i).uniform(-1, 1, (BATCH, size)
                                               ).astype("float32")
              for i, size in enumerate(cell.state_size)]
    cell(x_t, states)  # build
    randomize_weights(cell, seed=12)
    output, new_states = cell(x_t, states)
    ref_output, ref_states = reference_cell(cell).step(x_t, states)
    assert_close(output, ref_output)
    assert_close(list(new_states), ref_states)
    assert len(new_states) == len(cell.state_size)
