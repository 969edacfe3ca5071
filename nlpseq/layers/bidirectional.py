"""Bidirectional wrapper: a forward and a backward recurrent layer."""

import keras
import numpy as np
from keras import ops

from nlpseq.layers.base import check_choice
from nlpseq.layers.rnn import RNN

MERGE_MODES = ("concat", "sum", "ave", "mul", None)


def _is_recurrent_layer(layer):
    """A layer Bidirectional can run both ways (Keras' criteria)."""
    return isinstance(layer, keras.layers.Layer) and all(
        hasattr(layer, name)
        for name in ("go_backwards", "return_sequences", "return_state"))


@keras.saving.register_keras_serializable(package="nlpseq")
class Bidirectional(keras.layers.Layer):
    """Runs a recurrent layer forwards and backwards and merges the outputs.

    The forward copy computes ``h^f_1 ... h^f_n``, the backward copy (the same
    configuration with ``go_backwards`` flipped) computes ``h^b_n ... h^b_1``;
    with ``return_sequences`` the backward outputs are put back in time order
    so that step ``t`` sees ``[h^f_t, h^b_t]``: its past and its future. With
    a mask, padded steps are skipped by both directions (so the backward
    direction starts at each sequence's last real token) and output zeros.

    Args:
        layer: a recurrent layer: nlpseq's ``SimpleRNN``, ``LSTM``, ``GRU``
            or ``RNN``, or Keras' (or any layer with ``go_backwards``,
            ``return_sequences`` and ``return_state`` attributes and a
            config); it is used as a template (from its config) for both
            directions.
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"ave"``, ``"mul"``,
            or ``None`` to return ``[forward, backward]``.
        weights: optional initial weights, the forward layer's then the
            backward layer's (as ``get_weights()`` lists them), set when the
            layer is built.
        backward_layer: optional explicit backward layer; it must have
            ``go_backwards`` opposite to ``layer`` and the same
            ``return_sequences`` / ``return_state`` / ``stateful``.

    With ``return_state`` the layer returns
    ``[output, *forward_states, *backward_states]`` and ``initial_state`` takes
    the forward states followed by the backward ones. With a ``stateful``
    layer both directions carry their states between batches;
    ``reset_state()`` resets both. The wrapper and both directions share
    one dtype policy: the wrapper's ``dtype`` when given (over float32
    layers, ``dtype="mixed_float16"`` computes and returns float16), else
    the layer's; outputs and states come in its compute dtype.

    Example:

    >>> import numpy as np
    >>> from nlpseq.layers import Bidirectional, GRU
    >>> x = np.zeros((2, 7, 5), "float32")
    >>> Bidirectional(GRU(3, return_sequences=True))(x).shape
    TensorShape([2, 7, 6])
    """

    def __init__(self, layer, merge_mode="concat", weights=None,
                 backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = keras.saving.deserialize_keras_object(layer)
        if isinstance(backward_layer, dict):
            backward_layer = keras.saving.deserialize_keras_object(
                backward_layer)
        if not _is_recurrent_layer(layer):
            raise ValueError(
                "Received an invalid value for argument `layer`, expected a "
                "recurrent layer (nlpseq's or Keras' SimpleRNN, LSTM, GRU, "
                "RNN: a layer with `go_backwards`, `return_sequences` and "
                f"`return_state`), got {layer!r}."
            )
        check_choice("merge_mode", merge_mode, MERGE_MODES)
        # One dtype policy for the wrapper and both directions: the
        # wrapper's when given, else the layer's.
        given = kwargs.get("dtype") is not None
        if not given:
            kwargs["dtype"] = layer.dtype_policy
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = bool(getattr(layer, "stateful", False))
        policy = self.dtype_policy if given else None
        self.forward_layer = self._copy(layer, layer.go_backwards, "forward",
                                        policy)
        if backward_layer is None:
            self.backward_layer = self._copy(
                layer, not layer.go_backwards, "backward", policy)
            self._explicit_backward = False
        else:
            if not _is_recurrent_layer(backward_layer):
                raise ValueError(
                    "Received an invalid value for argument `backward_layer`, "
                    "expected a recurrent layer, got "
                    f"{backward_layer!r}."
                )
            for attribute in ("return_sequences", "return_state",
                              "stateful"):
                if getattr(backward_layer, attribute, False) != getattr(
                        layer, attribute, False):
                    raise ValueError(
                        f"`backward_layer.{attribute}` must equal "
                        f"`layer.{attribute}` "
                        f"({getattr(layer, attribute, False)}), got "
                        f"{getattr(backward_layer, attribute, False)}."
                    )
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError(
                    "`backward_layer.go_backwards` must be the opposite of "
                    f"`layer.go_backwards` ({layer.go_backwards}), got "
                    f"{backward_layer.go_backwards}."
                )
            self.backward_layer = backward_layer
            self._explicit_backward = True
        # Keras' use_cudnn is not in Keras' configs: carried over by hand.
        if hasattr(layer, "use_cudnn"):
            self.forward_layer.use_cudnn = layer.use_cudnn
            self.backward_layer.use_cudnn = layer.use_cudnn
        for direction in (self.forward_layer, self.backward_layer):
            if (self.return_sequences
                    and hasattr(direction, "zero_output_for_mask")):
                direction.zero_output_for_mask = True
        self._initial_weights = (None if weights is None
                                 else [np.asarray(w) for w in weights])
        self.supports_masking = True

    @staticmethod
    def _copy(layer, go_backwards, prefix, policy=None):
        config = layer.get_config()
        config["go_backwards"] = go_backwards
        if policy is not None:
            config["dtype"] = policy
        name = config["name"]
        for other in ("forward_", "backward_"):
            if name.startswith(other):
                name = name[len(other):]
        config["name"] = f"{prefix}_{name}"
        if isinstance(layer, RNN) and isinstance(config.get("cell"), dict):
            # (the cell copied from its own class: a user's cell class
            # need not be registered or importable)
            config["cell"] = type(layer.cell).from_config(
                layer.cell.get_config())
        return layer.__class__.from_config(config)

    @property
    def states(self):
        """The carried states of stateful layers (forward then backward),
        or ``None``."""
        forward = getattr(self.forward_layer, "states", None)
        backward = getattr(self.backward_layer, "states", None)
        if forward and backward:
            return tuple(list(forward) + list(backward))
        return None

    def reset_state(self):
        """Reset the carried states of both (stateful) directions."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    def reset_states(self):
        """Alias of :meth:`reset_state` (Keras 2's name)."""
        self.reset_state()

    def build(self, sequences_shape, initial_state_shape=None):
        for direction in (self.forward_layer, self.backward_layer):
            if not direction.built:
                direction.build(sequences_shape)
        if self._initial_weights is not None:
            weights, self._initial_weights = self._initial_weights, None
            half = len(weights) // 2
            self.forward_layer.set_weights(weights[:half])
            self.backward_layer.set_weights(weights[half:])

    def _merged_shape(self, shape):
        if self.merge_mode == "concat":
            return tuple(shape[:-1]) + (shape[-1] * 2,)
        if self.merge_mode is None:
            return [tuple(shape), tuple(shape)]
        return tuple(shape)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        shapes = self.forward_layer.compute_output_shape(sequences_shape)
        if not self.return_state:
            return self._merged_shape(shapes)
        output = self._merged_shape(shapes[0])
        states = list(shapes[1:]) * 2
        if self.merge_mode is None:
            return output + states
        return [output] + states

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        outputs = [output_mask] * (2 if self.merge_mode is None else 1)
        if self.return_state:
            n_states = 2 * len(self.forward_layer.state_size)
            return outputs + [None] * n_states
        return outputs if self.merge_mode is None else output_mask

    def call(self, sequences, initial_state=None, mask=None, training=False,
             sequences_mask=None):
        # (Keras passes the mask as ``sequences_mask`` when the call has
        # other tensor arguments, such as ``initial_state``.)
        if mask is None:
            mask = sequences_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        forward_state = backward_state = None
        if initial_state is not None:
            initial_state = list(initial_state)
            half = len(initial_state) // 2
            if len(initial_state) != 2 * len(self.forward_layer.state_size):
                raise ValueError(
                    f"`initial_state` of {self.name} must hold the forward "
                    f"then the backward states "
                    f"({2 * len(self.forward_layer.state_size)} tensors), got "
                    f"{len(initial_state)}."
                )
            forward_state = initial_state[:half]
            backward_state = initial_state[half:]
        forward = self.forward_layer(
            sequences, initial_state=forward_state, mask=mask,
            training=training)
        backward = self.backward_layer(
            sequences, initial_state=backward_state, mask=mask,
            training=training)
        if self.return_state:
            forward, forward_states = forward[0], list(forward[1:])
            backward, backward_states = backward[0], list(backward[1:])
        forward = ops.cast(forward, self.compute_dtype)
        backward = ops.cast(backward, self.compute_dtype)
        if self.return_sequences:
            backward = ops.flip(backward, axis=1)
        if self.merge_mode == "concat":
            output = ops.concatenate([forward, backward], axis=-1)
        elif self.merge_mode == "sum":
            output = forward + backward
        elif self.merge_mode == "ave":
            output = (forward + backward) / 2
        elif self.merge_mode == "mul":
            output = forward * backward
        else:
            output = [forward, backward]
        if not self.return_state:
            return output
        outputs = output if self.merge_mode is None else [output]
        return outputs + [ops.cast(s, self.compute_dtype)
                          for s in forward_states + backward_states]

    def get_config(self):
        config = super().get_config()
        config["layer"] = keras.saving.serialize_keras_object(
            self.forward_layer)
        config["merge_mode"] = self.merge_mode
        if self._explicit_backward:
            config["backward_layer"] = keras.saving.serialize_keras_object(
                self.backward_layer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The wrapper of ``config``, its layers (and the backward copy it
        makes) deserialized with ``custom_objects``, as Keras'
        ``Bidirectional.from_config`` hands them on."""
        if custom_objects:
            with keras.saving.custom_object_scope(custom_objects):
                return cls.from_config(config)
        config = dict(config)
        layer = keras.saving.deserialize_keras_object(config.pop("layer"))
        # The stored template is the forward copy: strip its prefix so the
        # re-created copies get the same names as the original ones.
        name = layer.name
        if name.startswith("forward_"):
            layer_config = layer.get_config()
            layer_config["name"] = name[len("forward_"):]
            layer = layer.__class__.from_config(layer_config)
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = keras.saving.deserialize_keras_object(backward)
        return cls(layer, backward_layer=backward, **config)
