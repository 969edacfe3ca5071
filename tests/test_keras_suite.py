"""Keras' own tests of its recurrent layers, run on nlpseq's layers.

The test files ``keras/src/layers/rnn/{simple_rnn,lstm,gru,rnn,
bidirectional}_test.py`` are read from the *installed* Keras package at test
time (nothing of them is copied here). Each is imported as a fresh module,
its ``layers`` name is replaced by a namespace in which only the recurrent
classes (``SimpleRNN``, ``LSTM``, ``GRU``, ``RNN``, ``Bidirectional`` and the
cells) are nlpseq's, everything else Keras', and its test classes are
collected under new names with the test bodies unchanged.

Two kinds of test are skipped, with the reason:

- the tests of ``Bidirectional``'s private fused-kernel helpers
  (``_can_attempt_fused_lstm`` / ``_can_attempt_fused_gru``): not layer API;
- Keras' GRU expected numbers, in the run with nlpseq's own ``GRU``: nlpseq
  computes the textbook ``h_t = z*h~ + (1-z)*h_{t-1}`` and defaults to
  ``reset_after=False``, Keras uses ``z`` for the old state and
  ``reset_after=True``. Those tests run (and pass) in a second run whose
  ``GRU`` is nlpseq's GRU holding Keras' initial weights converted by
  :func:`nlpseq.layers.from_keras`'s mapping (``reset_after=True``, the
  update gate's columns negated).

Torch-only tests skip themselves, as in Keras' own runs on TensorFlow.
"""

import importlib.util
import types
import unittest

import keras
import numpy as np
import pytest

from nlpseq import layers as nl
from nlpseq.layers import convert

NLPSEQ_CLASSES = {
    "SimpleRNN": nl.SimpleRNN, "LSTM": nl.LSTM, "GRU": nl.GRU,
    "RNN": nl.RNN, "Bidirectional": nl.Bidirectional,
    "SimpleRNNCell": nl.SimpleRNNCell, "LSTMCell": nl.LSTMCell,
    "GRUCell": nl.GRUCell,
}

PRIVATE_HELPERS = (
    "tests Keras' private fused-kernel helpers of Bidirectional "
    "(_can_attempt_fused_lstm / _can_attempt_fused_gru), not layer API")
GRU_NUMBERS = (
    "Keras' GRU expected numbers: nlpseq's GRU is the textbook "
    "h = z*h~ + (1-z)*h_prev with reset_after=False by default, Keras' uses "
    "z for the old state and reset_after=True; this test passes in the "
    "KerasConventionGRU run (from_keras's weight mapping)")


@keras.saving.register_keras_serializable(package="nlpseq_tests")
class KerasConventionGRU(nl.GRU):
    """nlpseq's GRU configured and initialised as ``keras.layers.GRU``
    would be: ``reset_after=True`` by default, and the weights Keras'
    initializers draw converted to nlpseq's convention by the mapping of
    :func:`nlpseq.layers.from_keras` (the update gate's columns negated)."""

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, reset_after=reset_after, **kwargs)

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        self.set_weights(convert.gru_weights(self.get_weights(), self.units))


def _load_keras_test_module(name, alias):
    """A fresh copy of ``keras.src.layers.rnn.<name>`` (Keras' installed
    test file), named after ``alias``, or (``alias`` None) the module
    itself; its ``layers`` holds nlpseq's recurrent classes."""
    spec = importlib.util.find_spec(f"keras.src.layers.rnn.{name}")
    if spec is None:  # pragma: no cover
        pytest.skip(f"the installed Keras has no {name}.py", allow_module_level=True)
    if alias is None:
        # The module itself, as Keras' own run imports it: the cells it
        # defines (rnn_test.py's) are found by Keras' deserialization
        # through their module, unregistered, as a user's own cells are.
        module = importlib.import_module(spec.name)
    else:
        module = importlib.util.module_from_spec(spec)
        module.__name__ = f"nlpseq_keras_suite_{alias}"
        spec.loader.exec_module(module)
        assert not any(
            isinstance(v, type) and issubclass(v, keras.layers.Layer)
            and v.__module__ == module.__name__
            for v in vars(module).values()), (
            f"{name} defines layers: load it with alias=None, so that "
            "deserialization finds them as in Keras' own run")
    swapped = types.SimpleNamespace(
        **{key: getattr(keras.src.layers, key)
           for key in dir(keras.src.layers) if not key.startswith("__")})
    for key, value in NLPSEQ_CLASSES.items():
        setattr(swapped, key, value)
    module.layers = swapped
    return module


def _matches(attribute, name):
    # (absl's parameterized tests are named test_x0, test_x1, ...)
    return attribute == name or (attribute.startswith(name)
                                 and attribute[len(name):].isdigit())


def _collect(module, prefix, skips=None, only=None):
    """Subclasses of the module's test classes, named ``prefix + name``,
    with the given tests skipped (``{name: reason}``) and, with ``only``,
    the other tests left out."""
    skips = skips or {}
    found = {}
    for name, value in vars(module).items():
        if not (isinstance(value, type)
                and issubclass(value, unittest.TestCase)
                and value.__module__ == module.__name__):
            continue
        namespace = {"__module__": __name__}
        for attribute in dir(value):
            if not attribute.startswith("test"):
                continue
            if only is not None and not any(
                    _matches(attribute, kept) for kept in only):
                namespace[attribute] = None  # not collected
                continue
            for skipped, reason in skips.items():
                if _matches(attribute, skipped):
                    namespace[attribute] = unittest.skip(reason)(
                        getattr(value, attribute))
        found[prefix + name] = type(prefix + name, (value,), namespace)
    return found


_GRU_NUMBER_TESTS = ("test_correctness", "test_statefulness",
                     "test_pass_initial_state", "test_pass_return_state",
                     "test_masking", "test_legacy_implementation_argument")

_simple_rnn = _load_keras_test_module("simple_rnn_test", "simple_rnn")
_lstm = _load_keras_test_module("lstm_test", "lstm")
_gru = _load_keras_test_module("gru_test", "gru")
_gru_keras = _load_keras_test_module("gru_test", "gru_keras_convention")
_gru_keras.layers.GRU = KerasConventionGRU
_rnn = _load_keras_test_module("rnn_test", None)
_bidirectional = _load_keras_test_module("bidirectional_test",
                                         "bidirectional")
_bidirectional_keras = _load_keras_test_module(
    "bidirectional_test", "bidirectional_keras_convention")
_bidirectional_keras.layers.GRU = KerasConventionGRU

globals().update(_collect(_simple_rnn, "KerasSimpleRnnFile_"))
globals().update(_collect(_lstm, "KerasLstmFile_"))
globals().update(_collect(_gru, "KerasGruFile_", {
    name: GRU_NUMBERS for name in _GRU_NUMBER_TESTS}))
globals().update(_collect(_gru_keras, "KerasGruFileConvertedGRU_",
                          only=_GRU_NUMBER_TESTS))
globals().update(_collect(_rnn, "KerasRnnFile_"))
globals().update(_collect(_bidirectional, "KerasBidirectionalFile_", {
    "test_fused_lstm_eligibility": PRIVATE_HELPERS,
    "test_fused_gru_eligibility": PRIVATE_HELPERS,
    # (GRU numbers inside: run in the Keras-convention copy below)
    "test_correctness": GRU_NUMBERS,
    "test_masking": GRU_NUMBERS,
}))
# The two tests with GRU numbers, again with the converted GRU.
globals().update(_collect(_bidirectional_keras,
                          "KerasBidirectionalFileConvertedGRU_",
                          only=("test_correctness", "test_masking")))


def test_the_swap_reaches_the_test_bodies():
    """The loaded test modules really build nlpseq's layers."""
    assert _lstm.layers.LSTM is nl.LSTM
    assert _rnn.layers.RNN is nl.RNN
    assert _rnn.layers.Layer is keras.layers.Layer
    assert _gru_keras.layers.GRU is KerasConventionGRU
    layer = _simple_rnn.layers.SimpleRNN(2)
    assert isinstance(layer, nl.SimpleRNN)
    assert np.shape(layer(np.zeros((1, 3, 2), "float32"))) == (1, 2)
