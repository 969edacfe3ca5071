"""What every nlpseq recurrent cell shares: argument checks, weights, states.

A cell computes one time step. Its work is split so that the time loop
(:class:`nlpseq.layers.RNN`) can be fast:

- :meth:`RecurrentCell.project_inputs` computes ``x_t W_x + b`` for the fused
  gates. It accepts any leading shape, so the loop calls it *once* on the whole
  ``[time, batch, features]`` sequence: one large matrix product instead of one
  small one per step.
- :meth:`RecurrentCell.step` takes that projection for one step, the previous
  states and the recurrent weights, and applies the recurrence (the part that
  must be sequential). It also returns a small cache for the backward pass.
  From 128 units on, the recurrent weights come as one matrix per gate
  (``W_i``, ``W_f``, ..., as the equations write them), each multiplied by
  ``h_{t-1}`` on its own: the products are independent, so TensorFlow runs
  them at once on different cores, and each core keeps its gates' block of
  the recurrent kernel in its own cache. One fused product of a step is too
  small for TensorFlow to share between cores (docs/benchmarks.md has the
  measurements). Smaller cells keep one fused product
  (:attr:`RecurrentCell.per_gate_products`); Keras' ``implementation``
  argument chooses either way explicitly (1: per gate, 2: fused).
- :meth:`RecurrentCell.step_backward` is the same step differentiated by
  hand (backpropagation through time); it returns only the gradients of
  the step's projected inputs and previous states. The recurrent weights'
  gradients come after the loop, from those gradients and the forward pass'
  states and cache stacked over time, in one product over all steps
  (:meth:`RecurrentCell.recurrent_gradients`): nothing else is kept per
  step. The tests check both against finite differences and against
  TensorFlow's automatic differentiation of ``step``.

``cell(x_t, states)`` chains projection and step, so a cell also works on its
own, one step at a time (for example inside a decoder). A cell's output is
its hidden state ``h``, always the first of its states.
"""

import keras
from keras import ops

ACTIVATIONS = ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear", "elu",
               "selu", "gelu", "softsign", "silu", "swish")


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer, got {value!r}."
        )
    return value


def check_rate(name, value):
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0.0 <= value < 1.0):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"float in [0, 1), got {value!r}."
        )
    return float(value)


def check_choice(name, value, choices):
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected one "
            f"of {allowed}, got {value!r}."
        )
    return value


def get_activation(name, value):
    """Resolve an activation by name (or accept a callable)."""
    if callable(value) and not isinstance(value, str):
        return value
    if value is None:
        value = "linear"
    if isinstance(value, dict):  # a registered custom activation, serialized
        return keras.activations.get(value)
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected one "
            f"of {', '.join(ACTIVATIONS)} or a callable, got {value!r}."
        )
    return keras.activations.get(value)


def grad_from_output(function):
    """Whether :func:`activation_grad` needs only the activation's output."""
    return function in (keras.activations.tanh, keras.activations.sigmoid)


def activation_grad(function, pre, out, upstream):
    """``upstream * function'(pre)``, given ``out = function(pre)``.

    Closed forms for tanh and sigmoid (from the output alone; on TensorFlow
    its fused gradient kernels, one operation instead of three or four); any
    other activation is differentiated by TensorFlow.
    """
    import tensorflow as tf

    tensorflow = keras.backend.backend() == "tensorflow"
    if function is keras.activations.tanh:
        if tensorflow:
            return tf.raw_ops.TanhGrad(y=out, dy=upstream)
        return upstream * (1.0 - out * out)
    if function is keras.activations.sigmoid:
        if tensorflow:
            return tf.raw_ops.SigmoidGrad(y=out, dy=upstream)
        return upstream * out * (1.0 - out)

    with tf.GradientTape() as tape:
        tape.watch(pre)
        value = function(pre)
    return tape.gradient(value, pre, output_gradients=upstream)


def _add_bias(z, bias):
    """``z + bias``; on TensorFlow as ``bias_add``, which its graph optimizer
    fuses into the preceding matrix product (one pass over the result)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.nn.bias_add(z, bias)
    return z + bias


def gate_preactivations(projected, h, blocks):
    """``x W^x + b + h W^h`` for each block of the recurrent kernel as
    :meth:`RecurrentCell.recurrent_weights` gives it: with one block per gate,
    a list of the gates' pre-activations (one product each); with one fused
    kernel, a list of one fused pre-activation (one product), which the
    caller splits where it needs the gates apart."""
    if len(blocks) == 1:
        return [projected + ops.matmul(h, blocks[0])]
    return [x + ops.matmul(h, w) for x, w in zip(
        ops.split(projected, len(blocks), axis=-1), blocks)]


def gate_products(h, blocks, gates):
    """``[h W_g^h for each gate g]``, from per-gate blocks (one product
    each) or one fused kernel (one product, split into the gates)."""
    if len(blocks) == 1:
        product = ops.matmul(h, blocks[0])
        return [product] if gates == 1 else ops.split(product, gates, axis=-1)
    return [ops.matmul(h, w) for w in blocks]


def sum_of_products(d_gates, transposed, d_fused=None):
    """``sum_g dL/dz_g (W_g^h)^T``: a backward step's gradient through the
    recurrent products, from each gate's pre-activation gradient and the
    transposed blocks (or the one fused kernel, transposed: then one product
    with ``d_fused``, the gradients concatenated, if the caller has it)."""
    if len(transposed) == 1:
        if d_fused is None:
            d_fused = d_gates[0] if len(d_gates) == 1 else ops.concatenate(
                d_gates, axis=-1)
        return ops.matmul(d_fused, transposed[0])
    return add_all([ops.matmul(d, w) for d, w in zip(d_gates, transposed)])


def add_all(tensors):
    """The sum of a list of same-shaped tensors (on TensorFlow one
    ``add_n``)."""
    if len(tensors) == 1:
        return tensors[0]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.add_n(tensors)
    total = tensors[0]
    for tensor in tensors[1:]:
        total = total + tensor
    return total


def product_over_steps(lhs, rhs):
    """``sum_t lhs_t^T rhs_t`` for time-major ``[time, batch, n]`` tensors.

    One 2-D matrix product over all steps and batch rows: how the weight
    gradients of a recurrence are assembled after the backward loop.
    """
    lhs = ops.reshape(lhs, (-1, lhs.shape[-1]))
    rhs = ops.reshape(rhs, (-1, rhs.shape[-1]))
    return ops.matmul(ops.transpose(lhs), rhs)


class RecurrentCell(keras.layers.Layer):
    """Base class of the cells: fused gate weights and the one-step API.

    Subclasses set ``gates`` (the number of fused gate blocks) and
    ``cache_size``, and implement :meth:`step`, :meth:`step_backward`
    and (when the default does not fit) :meth:`recurrent_weights` /
    :meth:`recurrent_gradients`. Weights are named as in Keras: ``kernel``
    (input to gates, shape ``[input_dim, gates * units]``),
    ``recurrent_kernel`` (hidden state to gates, ``[units, gates * units]``)
    and ``bias``.

    Dropout: ``dropout`` masks the inputs and ``recurrent_dropout`` the
    previous hidden state; the :class:`~nlpseq.layers.RNN` loop draws one mask
    per sequence and keeps it for every step (variational dropout).
    ``weight_drop`` is DropConnect on the recurrent kernel (Wan et al. 2013;
    AWD-LSTM's weight drop, Merity et al. 2017): in training the loop draws
    one mask over the kernel's entries per batch, multiplies it (scaled by
    ``1 / (1 - weight_drop)``) onto the kernel once, before the first step,
    and runs every step with that kernel; inference uses the kernel itself,
    at no cost. A cell called on its own applies no dropout.
    """

    gates = 1
    state_names = ("h",)
    #: tensors ``step`` returns in its cache (kept per step for backward)
    cache_size = 1
    #: in inference, project each step's input inside the loop rather than
    #: all steps before it. The product per step is independent of the
    #: recurrence, so TensorFlow runs it on a core that the step's chain of
    #: small operations leaves idle; whether that beats one large product
    #: depends on the cell (``bench/cells.py`` decides), and on the batch:
    #: it does so from ``PROJECT_PER_STEP_FROM_BATCH`` rows on (a smaller
    #: batch's step time is its number of operations, which the product
    #: per step adds to). Training always projects before the loop (the
    #: hand-written backward needs it).
    project_per_step = False
    PROJECT_PER_STEP_FROM_BATCH = 32
    #: time steps per iteration of the loop (see ``rnn._over_steps``)
    steps_per_iteration = 1
    #: the size from which a cell with gates computes one recurrent product
    #: per gate (:attr:`per_gate_products`) unless ``implementation`` says
    #: otherwise (``bench/cells.py --implementations`` measures where each
    #: way is faster; docs/benchmarks.md has the figures).
    PER_GATE_FROM_UNITS = 128

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        implementation=None,
        weight_drop=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self._activation_name = activation
        self.activation = get_activation("activation", activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(
            recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(
            recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        # Keras' choice between two ways of computing the same step: 1, a
        # product per gate; 2, one fused product; None (nlpseq's default)
        # or Keras' legacy 0: by size (``per_gate_products``).
        self.implementation = check_choice(
            "implementation", implementation, (None, 0, 1, 2))
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate(
            "recurrent_dropout", recurrent_dropout)
        self.weight_drop = check_rate("weight_drop", weight_drop)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    # -- shapes --------------------------------------------------------------
    @property
    def state_size(self):
        return [self.units] * len(self.state_names)

    @property
    def output_size(self):
        return self.units

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, size), dtype=self.compute_dtype)
            for size in self.state_size
        ]

    # -- weights -------------------------------------------------------------
    def bias_shape(self):
        return (self.gates * self.units,)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known last input dimension, "
                f"got input shape {tuple(input_shape)}."
            )
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                name="bias",
                initializer=self.bias_initializer_for_build(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None

    def bias_initializer_for_build(self):
        return self.bias_initializer

    # -- computation ---------------------------------------------------------
    def input_bias(self):
        return self.bias

    def project_inputs(self, inputs):
        """``x W_x + b`` for all gates; any leading shape (steps, batch...)."""
        kernel = ops.cast(self.kernel, inputs.dtype)
        bias = self.input_bias()
        # One 2-D product over all leading axes (a broadcast batched product
        # would make the kernel's gradient a sum of per-step matrices), with
        # the bias added to the 2-D result so the two fuse into one kernel.
        flat = ops.reshape(inputs, (-1, inputs.shape[-1]))
        z = ops.matmul(flat, kernel)
        if bias is not None:
            z = _add_bias(z, ops.cast(bias, z.dtype))
        if len(inputs.shape) == 2:
            return z
        return ops.reshape(z, (*ops.shape(inputs)[:-1], kernel.shape[-1]))

    @property
    def per_gate_products(self):
        """Whether the step multiplies ``h_{t-1}`` by each gate's block of
        the recurrent kernel separately (see the module's docstring), for
        cells with gates: with ``implementation=1`` (Keras' "many smaller
        products"), not with ``implementation=2`` (its "fewer, larger
        ones"), and by default from :attr:`PER_GATE_FROM_UNITS` units on
        (below, the extra operations cost more than the parallel products
        save)."""
        if self.gates == 1 or self.implementation == 2:
            return False
        return self.implementation == 1 or \
            self.units >= self.PER_GATE_FROM_UNITS

    def recurrent_weights(self, dtype=None, weight_mask=None):
        """The tensors ``step`` uses besides its inputs: here the recurrent
        kernel, as one block per gate (``[units, units]`` each, in the fused
        order) with :attr:`per_gate_products`, else whole; multiplied by
        ``weight_mask`` (the kernel's shape: ``weight_drop`` in training).

        Computed once per sequence, outside the loop (slices, casts).
        """
        kernel = ops.cast(self.recurrent_kernel, dtype or self.compute_dtype)
        if weight_mask is not None:
            kernel = kernel * ops.cast(weight_mask, kernel.dtype)
        if not self.per_gate_products:
            return [kernel]
        return list(ops.split(kernel, self.gates, axis=1))

    def step(self, projected, states, weights, recurrent_mask=None):
        """One step of the recurrence.

        Args:
            projected: ``project_inputs(x_t)``, shape ``[batch, gates*units]``.
            states: list of the previous states, each ``[batch, units]``.
            weights: ``recurrent_weights()``.
            recurrent_mask: optional dropout mask multiplied onto ``h_{t-1}``.

        Returns:
            ``(output, new_states, cache)``; ``cache`` is a list of
            ``cache_size`` tensors that ``step_backward`` needs besides the
            previous and new states (the loop keeps those).
        """
        raise NotImplementedError

    def step_backward(self, d_states, states, new_states, cache, weights,
                      transposed, recurrent_mask=None):
        """The step, differentiated: gradients flow from new to old states.

        Args:
            d_states: gradients of the loss with respect to the new states.
            states: the previous states (the step's inputs).
            new_states: the states the step computed. (At a masked step the
                loop passes the carried states instead; ``d_states`` is zero
                there, and so is everything this returns.)
            cache: what ``step`` returned as its cache.
            weights: ``recurrent_weights()``; ``transposed``: the same,
                matrices transposed.
            recurrent_mask: the dropout mask ``step`` used.

        Returns:
            ``(d_projected, d_previous_states)``.
        """
        raise NotImplementedError

    def recurrent_gradients(self, d_projected, states, cache, weights,
                            recurrent_mask=None):
        """Gradients of ``recurrent_weights()``, from the whole sequence.

        Args:
            d_projected: ``[time, batch, gates*units]``, what
                ``step_backward`` returned at every step (zero at masked
                steps).
            states: the previous states of every step, each
                ``[time, batch, units]``.
            cache: ``step``'s cache at every step, stacked over time.
            weights: ``recurrent_weights()``.
            recurrent_mask: the dropout mask on ``h_{t-1}``.

        Default: ``dW_h = sum_t h_{t-1}^T d_z`` with ``d_z = d_projected``,
        split into the gates' blocks.
        """
        h_tm1 = self._dropped(states[0], recurrent_mask)
        grad = product_over_steps(h_tm1, d_projected)
        if len(weights) == 1:
            return [grad]
        return list(ops.split(grad, len(weights), axis=1))

    # -- tracing (the lab; never on the training or inference path) ---------
    #: the names of what :meth:`step_values` returns, in order
    trace_names = ("h",)

    def trace_step(self, projected, states, weights=None):
        """One step of :meth:`step`, with its intermediate values named.

        The tracing API: the same ``step`` that training and inference run
        (no dropout), then :meth:`step_values` reads the gates out of the
        step's own cache and states. Nothing here is used by the time loop,
        so tracing costs the fast path nothing.

        Returns:
            ``(output, new_states, values)``, ``values`` a dict from each of
            :attr:`trace_names` to a ``[batch, units]`` tensor.
        """
        states = list(states)
        if weights is None:
            weights = self.recurrent_weights(projected.dtype)
        output, new_states, cache = self.step(projected, states, weights)
        values = self.step_values(projected, states, new_states, cache,
                                  weights)
        return output, new_states, {name: values[name]
                                    for name in self.trace_names}

    def step_values(self, projected, states, new_states, cache, weights):
        """The named values of one step (see :attr:`trace_names`), from
        what :meth:`step` returned. Default: the new states by name."""
        return dict(zip(self.state_names, new_states))

    def call(self, inputs, states, training=False):
        """One step from raw inputs: ``step(project_inputs(x_t), states)``.

        Returns ``(output, new_states)``.
        """
        if not isinstance(states, (list, tuple)):
            states = [states]
        projected = self.project_inputs(inputs)
        output, new_states, _ = self.step(
            projected, list(states), self.recurrent_weights(projected.dtype))
        return output, new_states

    @staticmethod
    def _dropped(h_tm1, recurrent_mask):
        return h_tm1 if recurrent_mask is None else h_tm1 * recurrent_mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": self._serialize_activation(
                    self._activation_name),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(
                    self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer),
                "recurrent_regularizer": keras.regularizers.serialize(
                    self.recurrent_regularizer),
                "bias_regularizer": keras.regularizers.serialize(
                    self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(
                    self.kernel_constraint),
                "recurrent_constraint": keras.constraints.serialize(
                    self.recurrent_constraint),
                "bias_constraint": keras.constraints.serialize(
                    self.bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
                "implementation": self.implementation,
            }
        )
        if self.weight_drop:
            # (only when used: configs without it read as Keras' layers')
            config["weight_drop"] = self.weight_drop
        return config

    @staticmethod
    def _serialize_activation(value):
        if isinstance(value, str) or value is None:
            return value
        return keras.activations.serialize(value)
