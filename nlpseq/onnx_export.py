"""``export --format onnx``: the app's Keras model as ONNX, beside its
preprocessor as JSON.

:class:`OnnxExporter` (the ``onnx`` entry of
:data:`nlpseq.registry.EXPORTERS`) calls :func:`write_onnx` into a
temporary version folder (same versioning, locking and atomic rename as the
SavedModel). The graph takes the model's token ids (``int32``; the names of
the Keras model's inputs) and gives the model's outputs, converted by
``tf2onnx`` from a ``tf.function`` over the model. Tokenization stays out of
the graph (ONNX has no RE2 regular expressions nor string lookups in its
standard operators): :mod:`nlpseq.onnx_runtime` reproduces it in pure
Python from ``preprocessor.json``. See ``docs/onnx.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging

from nlpseq.errors import NlpseqError
from nlpseq.exporters import Exporter
from nlpseq.folder import EXPORT
from nlpseq.log import LOG
from nlpseq.onnx_runtime import FORMAT, MODEL_FILE, PREPROCESSOR_FILE

#: The ONNX operator set written.
OPSET = 17
_ENCODER_KEYS = ("vocabulary", "max_length", "truncate", "lowercase",
                 "strip_html", "split_punctuation", "split", "words",
                 "characters", "max_word_length", "digits_to_zero")


def output_names(task):
    """The graph's output names: the family's
    :attr:`~nlpseq.tasks.base.Task.onnx_output_names` where the Keras
    model's own would mislead, else the model's."""
    return list(task.onnx_output_names or task.model.output_names)


def model_function(task):
    """``(tf.function, input_signature, output names)``: the model in
    inference mode, ids in, a dict of its named outputs out."""
    import tensorflow as tf

    model = task.model
    names = output_names(task)
    signature = [tf.TensorSpec(tensor.shape, tf.int32, name=tensor.name)
                 for tensor in model.inputs]

    def forward(*ids):
        outputs = task.onnx_forward(list(ids) if len(ids) > 1 else ids[0])
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return dict(zip(names, outputs))

    return tf.function(forward, autograph=False), signature, names


def encoders(preprocessor):
    """The preprocessor's text and token encoders by attribute name."""
    from nlpseq.text import TextEncoder, TokenEncoder

    return {name: value for name, value in sorted(vars(preprocessor).items())
            if isinstance(value, (TextEncoder, TokenEncoder))}


def preprocessor_json(task, names):
    """``preprocessor.json`` of an ONNX export: everything that turns raw
    text into the graph's inputs and its outputs into labels."""
    found = encoders(task.preprocessor)
    entries, vocabularies = {}, []
    for name, encoder in found.items():
        config = encoder.get_config()
        entry = {"class": type(encoder).__name__}
        entry.update({k: config[k] for k in _ENCODER_KEYS if k in config})
        entries[name] = entry
        vocabularies += [entry[k][2:] for k in ("vocabulary", "words",
                                                "characters") if k in entry]
    # (the vocabularies once, in "encoders"; the rest of the state here)
    state = {k: v for k, v in task.preprocessor.get_config().items()
             if not (isinstance(v, list) and v in vocabularies)}
    return {
        "format": FORMAT,
        "version": 1,
        "app": task.name,
        "family": task.family,
        "inputs": [tensor.name for tensor in task.model.inputs],
        "outputs": names,
        "encoders": entries,
        "preprocessor": {"class": type(task.preprocessor).__name__,
                         "state": state},
        "config": task.config,
        # the tagger's CRF: its decoding runs outside the graph
        # (nlpseq.onnx_runtime.viterbi)
        "crf": None if getattr(task, "crf", None) is None else {
            name: getattr(task.crf, name).numpy().tolist()
            for name in ("transitions", "start_transitions",
                         "end_transitions")},
    }


@contextlib.contextmanager
def one_step_per_iteration(model):
    """Trace every recurrent cell of ``model`` with one time step per
    ``tf.while_loop`` iteration.

    The SimpleRNN cell runs 4 steps per iteration (``steps_per_iteration``),
    so its loop body writes 4 ``TensorArray`` entries (at ``t`` ... ``t +
    3``) and a second loop runs the remainder. tf2onnx turns a
    ``TensorArrayWriteV3`` inside a while loop into an ONNX ``Loop`` scan
    output only when it writes at the loop's own iteration index, once per
    iteration; otherwise it gives up ("While loop couldn't find scan output
    index for nodes") and writes a model onnxruntime refuses. The
    arithmetic of a step is the same either way.
    """
    changed = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if getattr(layer, "steps_per_iteration", 1) != 1:
            changed.append(layer)
            layer.steps_per_iteration = 1  # (an instance attribute)
    try:
        yield
    finally:
        for layer in changed:
            del layer.steps_per_iteration


def convert(task, path):
    """Write the model as ONNX to ``path``; returns the output names."""
    import tf2onnx

    function, signature, names = model_function(task)
    LOG.info("Converting the model to ONNX (opset %d)", OPSET,
             extra={"progress": True})
    # (freezing the graph, tf2onnx has TensorFlow warn "Issue encountered
    # when serializing table_initializer", which is harmless: the graph
    # has no tables)
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        with one_step_per_iteration(task.model):
            tf2onnx.convert.from_function(function, input_signature=signature,
                                          opset=OPSET, output_path=str(path))
    finally:
        tf_log.setLevel(level)
    return names


def write_onnx(task, folder):
    """``model.onnx`` and ``preprocessor.json`` into ``folder`` (which
    exists)."""
    names = convert(task, folder / MODEL_FILE)
    (folder / PREPROCESSOR_FILE).write_text(
        json.dumps(preprocessor_json(task, names), ensure_ascii=False),
        encoding="utf-8")


class OnnxExporter(Exporter):
    """``model.onnx`` (token ids in) beside ``preprocessor.json``."""

    name = "onnx"
    help = ("onnx (token ids in, with preprocessor.json, into "
            "<model-dir>/export-onnx/; needs pip install 'nlpseq[onnx]')")
    base = "export-onnx"

    def check(self):
        # (found, not imported: tf2onnx imports TensorFlow, which must start
        # quietly first, as nlpseq.runtime starts it when the model loads)
        import importlib.util

        for name in ("onnx", "tf2onnx"):
            if importlib.util.find_spec(name) is None:
                raise NlpseqError(
                    f"export --format onnx needs the onnx extra ({name} is "
                    "not installed): pip install 'nlpseq[onnx]'")

    def write(self, task, folder):
        write_onnx(task, folder)

    def describe(self, task, path):
        line = (f"Exported {path} (ONNX: model.onnx, preprocessor.json; "
                f"inputs: {', '.join(t.name for t in task.model.inputs)}; "
                f"outputs: {', '.join(output_names(task))})")
        misplaced = misplaced_versions(task.folder.path / EXPORT) \
            if task.folder is not None else []
        if misplaced:
            line += (
                f"\nNote: ONNX exports written into export/ before they "
                f"moved to {self.base}/: "
                f"{', '.join(str(p) for p in misplaced)}; TensorFlow Serving "
                "takes every numbered folder of export/ for a SavedModel "
                f"version: move them to {task.folder.path / self.base}/")
        return line


def misplaced_versions(export_dir):
    """The version folders of a model folder's ``export/`` that hold an
    ONNX export (written there before ONNX exports had their own base
    folder), in version order."""
    if not export_dir.is_dir():
        return []
    found = [p for p in export_dir.iterdir() if p.name.isdigit()
             and (p / MODEL_FILE).is_file()
             and not (p / "saved_model.pb").exists()]
    return sorted(found, key=lambda p: int(p.name))


__all__ = ["OnnxExporter", "misplaced_versions", "model_function",
           "output_names",
           "preprocessor_json", "write_onnx"]
