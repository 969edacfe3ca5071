"""Conversion between nlpseq's recurrent layers and Keras' built-in ones.

:func:`from_keras` rebuilds a Keras ``SimpleRNN`` / ``LSTM`` / ``GRU`` /
``RNN`` (of Keras' ``SimpleRNNCell`` / ``LSTMCell`` / ``GRUCell``) /
``Bidirectional`` as nlpseq's layer, with its weights; :func:`to_keras` does
the reverse (for example to deploy a model trained with nlpseq on Keras'
layers, which call cuDNN on a GPU). Given a functional or sequential model,
both rebuild the model with every recurrent layer converted and every other
layer cloned with its weights. The converted layer computes the same
outputs (to float rounding).

The weights are the same (same names, shapes and gate order: LSTM ``i, f,
C~, o``; GRU ``z, r, h~``) except for the GRU's update gate. nlpseq
computes the textbook ``h_t = z*h~ + (1-z)*h_{t-1}``; Keras computes
``h_t = z_k*h_{t-1} + (1-z_k)*h~``, so ``z_k = 1 - z``. As ``σ(-a) =
1 - σ(a)``, negating every term of the update gate's pre-activation (its
columns of ``kernel`` and ``recurrent_kernel`` and its part of the bias,
both rows with ``reset_after``) turns one into the other
(:func:`gru_weights`, its own inverse). Both ``reset_after`` forms exist
in both libraries (``reset_after=True`` is Keras' default and cuDNN's form,
``False`` nlpseq's default); the conversion keeps the form. nlpseq's minimal
GRU (``reset_gate=False``) has no Keras counterpart.
"""

import keras
import numpy as np

from nlpseq.layers.bidirectional import Bidirectional
from nlpseq.layers.gru import GRU, GRUCell
from nlpseq.layers.lstm import LSTM, LSTMCell
from nlpseq.layers.rnn import RNN
from nlpseq.layers.simple_rnn import SimpleRNN, SimpleRNNCell

# nlpseq class -> Keras class, layers then cells
_LAYERS = [(SimpleRNN, keras.layers.SimpleRNN), (LSTM, keras.layers.LSTM),
           (GRU, keras.layers.GRU)]
_CELLS = [(SimpleRNNCell, keras.layers.SimpleRNNCell),
          (LSTMCell, keras.layers.LSTMCell), (GRUCell, keras.layers.GRUCell)]

# Arguments of the Keras layer that are not in its config (kept as
# attributes): carried over by hand.
_ATTRIBUTES = ("use_cudnn",)


def gru_weights(weights, units):
    """GRU weights converted between nlpseq's and Keras' update gate (either
    way: the conversion is its own inverse): ``[kernel, recurrent_kernel,
    bias]`` with the update gate's columns (the first ``units``) negated."""
    converted = [np.array(w, copy=True) for w in weights]
    for w in converted:
        w[..., :units] *= -1.0
    return converted


def _exact_type(value, pairs, side):
    """The pair whose class (``side`` 0: nlpseq, 1: Keras) is exactly
    ``type(value)``'s (subclasses are other layers)."""
    for pair in pairs:
        if type(value) is pair[side]:
            return pair
    return None


def _is_gru(layer):
    if isinstance(layer, (keras.layers.GRU, GRU)):
        return True
    cell = getattr(layer, "cell", None)
    return isinstance(cell, (keras.layers.GRUCell, GRUCell))


def _converted_weights(source, target):
    weights = source.get_weights()
    if _is_gru(source):
        cell = getattr(source, "cell", source)
        weights = gru_weights(weights, cell.units)
    return weights


def _copy_weights(source, target):
    """Set ``target``'s weights from ``source`` (the other library's)."""
    if isinstance(source, (Bidirectional, keras.layers.Bidirectional)):
        _copy_weights(source.forward_layer, target.forward_layer)
        _copy_weights(source.backward_layer, target.backward_layer)
        return
    target.set_weights(_converted_weights(source, target))


def _input_dim(layer):
    """The feature size a built recurrent layer was built for."""
    if isinstance(layer, (Bidirectional, keras.layers.Bidirectional)):
        return _input_dim(layer.forward_layer)
    kernel = getattr(getattr(layer, "cell", layer), "kernel", None)
    return None if kernel is None else kernel.shape[0]


def _cell_config_to_nlpseq(config):
    config = dict(config)
    config.pop("name", None)
    return config


def _cell_config_to_keras(config, keras_class):
    config = dict(config)
    config.pop("name", None)
    if config.pop("reset_gate", True) is False:
        raise ValueError(
            "Received an invalid value for argument `reset_gate`: nlpseq's "
            "minimal GRU (reset_gate=False) has no Keras counterpart, "
            "expected True, got False."
        )
    if keras_class in (keras.layers.SimpleRNN, keras.layers.SimpleRNNCell):
        config.pop("implementation", None)
    return config


def _layer_to_nlpseq(layer):
    """The nlpseq counterpart of one Keras layer, unbuilt, or ``None``."""
    if type(layer) is keras.layers.Bidirectional:
        config = layer.get_config()
        return Bidirectional(
            _layer_to_nlpseq(layer.forward_layer),
            merge_mode=layer.merge_mode,
            backward_layer=_layer_to_nlpseq(layer.backward_layer),
            name=config["name"], trainable=config["trainable"],
            dtype=config["dtype"])
    pair = _exact_type(layer, _LAYERS, 1)
    if pair is not None:
        config = _cell_config_to_nlpseq(layer.get_config())
        config["name"] = layer.name
        config["implementation"] = getattr(layer.cell, "implementation", 2)
        for name in _ATTRIBUTES:
            if hasattr(layer, name):
                config[name] = getattr(layer, name)
        if pair[0] is SimpleRNN:
            config.pop("implementation")
        return pair[0].from_config(config)
    if type(layer) is keras.layers.RNN:
        cell_pair = _exact_type(layer.cell, _CELLS, 1)
        if cell_pair is None:
            return None
        config = layer.get_config()
        config.pop("cell")
        cell_config = _cell_config_to_nlpseq(layer.cell.get_config())
        return RNN(cell_pair[0].from_config(cell_config), **config)
    return None


def _layer_to_keras(layer):
    """The Keras counterpart of one nlpseq layer, unbuilt, or ``None``."""
    if type(layer) is Bidirectional:
        config = layer.get_config()
        return keras.layers.Bidirectional(
            _layer_to_keras(layer.forward_layer),
            merge_mode=layer.merge_mode,
            backward_layer=_layer_to_keras(layer.backward_layer),
            name=config["name"], trainable=config["trainable"],
            dtype=config["dtype"])
    pair = _exact_type(layer, _LAYERS, 0)
    if pair is not None:
        config = _cell_config_to_keras(layer.get_config(), pair[1])
        config["name"] = layer.name
        use_cudnn = config.pop("use_cudnn", None)
        converted = pair[1].from_config(config)
        if use_cudnn is not None:
            converted.use_cudnn = use_cudnn
        return converted
    if type(layer) is RNN:
        cell_pair = _exact_type(layer.cell, _CELLS, 0)
        if cell_pair is None:
            return None
        config = layer.get_config()
        config.pop("cell")
        cell_config = _cell_config_to_keras(layer.cell.get_config(),
                                            cell_pair[1])
        return keras.layers.RNN(cell_pair[1].from_config(cell_config),
                                **config)
    return None


def _convert(value, convert_layer, direction):
    if isinstance(value, keras.Model):
        return _convert_model(value, convert_layer)
    if not isinstance(value, keras.layers.Layer):
        raise ValueError(
            f"Received an invalid value for argument `layer_or_model`, "
            f"expected a Keras layer or model, got {value!r}."
        )
    converted = convert_layer(value)
    if converted is None:
        raise ValueError(
            f"Received an invalid value for argument `layer_or_model`: "
            f"{type(value).__name__} has no {direction} counterpart "
            f"(expected a SimpleRNN, LSTM, GRU, RNN of one of their cells, "
            f"or a Bidirectional of them), got {value!r}."
        )
    if value.built:
        input_dim = _input_dim(value)
        if input_dim is not None:
            converted.build((None, None, input_dim))
            _copy_weights(value, converted)
    return converted


def _convert_model(model, convert_layer):
    pairs = []

    def clone(layer):
        converted = convert_layer(layer)
        recurrent = converted is not None
        if not recurrent:
            converted = layer.__class__.from_config(layer.get_config())
        pairs.append((layer, converted, recurrent))
        return converted

    try:
        rebuilt = keras.models.clone_model(model, clone_function=clone)
    except ValueError as error:
        raise ValueError(
            "Received an invalid value for argument `layer_or_model`: only "
            "functional and sequential models can be converted (a "
            f"subclassed model cannot be rebuilt): {error}"
        ) from error
    for source, target, recurrent in pairs:
        if not getattr(source, "weights", None):  # (also Keras operations)
            continue
        if recurrent:
            _copy_weights(source, target)
        else:
            target.set_weights(source.get_weights())
    return rebuilt


def from_keras(layer_or_model):
    """nlpseq's version of a Keras recurrent layer, or of a model.

    Args:
        layer_or_model: a ``keras.layers.SimpleRNN``, ``LSTM``, ``GRU``,
            ``RNN`` (of Keras' ``SimpleRNNCell``, ``LSTMCell`` or
            ``GRUCell``) or ``Bidirectional`` of them; or a functional or
            sequential ``keras.Model``.

    Returns:
        The nlpseq layer with the same configuration and (if the Keras layer
        was built) the same weights, converted where the conventions differ
        (the GRU's update gate, :func:`gru_weights`); for a model, a new
        model in which every recurrent layer is nlpseq's and every other
        layer a copy, with the same weights. Outputs are the same.

    Example:

    >>> import keras, numpy as np
    >>> from nlpseq.layers import from_keras
    >>> keras_gru = keras.layers.GRU(3)
    >>> x = np.random.default_rng(0).random((2, 4, 5)).astype("float32")
    >>> y = keras_gru(x)
    >>> gru = from_keras(keras_gru)
    >>> bool(np.allclose(gru(x), y, atol=1e-5)), gru.reset_after
    (True, True)
    """
    return _convert(layer_or_model, _layer_to_nlpseq, "nlpseq")


def to_keras(layer_or_model):
    """Keras' version of an nlpseq recurrent layer, or of a model.

    The reverse of :func:`from_keras`: nlpseq's ``SimpleRNN``, ``LSTM``,
    ``GRU`` (with the reset gate), ``RNN`` of their cells and
    ``Bidirectional`` of them become Keras' built-in layers with converted
    weights; in a functional or sequential model, every one of them, the
    other layers copied. A GRU keeps its ``reset_after`` form (nlpseq's
    default is ``False``; Keras' cuDNN kernel needs ``True``).
    """
    return _convert(layer_or_model, _layer_to_keras, "Keras")
