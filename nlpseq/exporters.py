"""Export formats: ``task.export(format=...)`` and ``export --format``.

An exporter writes a loaded task into a new, empty version folder; the
versioning, locking and atomic rename around it are the model folder's
(:func:`nlpseq.folder.write_version`), the same for every format. The
formats are :data:`nlpseq.registry.EXPORTERS` (name -> exporter class):
the command line's ``--format`` choices, :func:`check_format` and
``Task.export`` all read it, so a new format is one module with an
:class:`Exporter` subclass and one line there.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from nlpseq import inputs
from nlpseq.config import merge
from nlpseq.errors import NlpseqError
from nlpseq.folder import EXPORT
from nlpseq.registry import EXPORTERS

#: What a SavedModel export says of itself, in its version folder: the app,
#: the family, the nlpseq version, and what the demo page shows of it
#: (TensorFlow Serving ignores ``assets.extra/`` but for its warm-up file).
EXPORT_INFO = Path("assets.extra", "nlpseq.json")


class Exporter:
    """One export format."""

    #: The ``--format`` name.
    name = None
    #: What ``export --help`` says of it.
    help = ""
    #: The base folder of its versions in a model folder (the default
    #: ``--output``): only SavedModels go into ``export/``, the base path
    #: TensorFlow Serving watches, where any numbered folder is a version.
    base = EXPORT
    #: Whether its signatures enforce the caps of ``Task.export_settings``
    #: (a format whose exports do no decoding refuses caps given to it).
    capped = False

    def check(self):
        """Refuse, before anything is written or loaded, when the format
        cannot be written here (a package missing)."""

    def write(self, task, folder):
        """Write ``task``'s model into ``folder`` (it exists, empty)."""
        raise NotImplementedError

    def describe(self, task, path) -> str:
        """The command line's line for the export written in ``path``."""
        return f"Exported {path}"


class SavedModelExporter(Exporter):
    """A TensorFlow Serving SavedModel: the preprocessing layers, the model
    and the family's signatures (``Task.serving_functions``), taking raw
    strings; and :data:`EXPORT_INFO`.

    A family's ``signature_methods`` (``{signature: SignatureDef method}``,
    optional) names its signatures that are not predict ones, such as the
    classifier's ``classification`` (TensorFlow Serving's Classify method):
    TensorFlow writes every signature as a predict one, so their methods are
    set in ``saved_model.pb`` afterwards. Such a signature takes serialized
    ``tf.Example`` protos, not text, and checks the texts inside itself.
    """

    name = "savedmodel"
    help = "savedmodel (raw strings in)"
    capped = True

    def write(self, task, folder):
        import keras

        methods = getattr(task, "signature_methods", {})
        archive = keras.export.ExportArchive()
        archive.track(task.model)
        for layer in task.serving_layers():
            archive.track(layer)
        for name, (function, signature) in task.serving_functions().items():
            if name not in methods:
                function = utf8_checked(function, signature)
            archive.add_endpoint(name, function, input_signature=signature)
        archive.write_out(str(folder), verbose=False)
        if methods:
            set_signature_methods(folder, methods)
        write_export_info(task, folder)

    def describe(self, task, path):
        names = ", ".join(task.serving_functions())
        return f"Exported {path} (signatures: {names})"


def utf8_checked(function, signature):
    """``function`` whose string inputs must be valid UTF-8: bytes that are
    not (``{"b64": ...}`` of other bytes) are refused by the graph itself
    with INVALID_ARGUMENT, in any server, as the command line and the
    Python API refuse them."""
    import tensorflow as tf

    def checked(*inputs):
        return function(*(
            tf.strings.unicode_transcode(value, "UTF-8", "UTF-8",
                                         errors="strict")
            if spec.dtype == tf.string else value
            for value, spec in zip(inputs, signature)))
    return checked


def set_signature_methods(folder, methods):
    """Set the ``method_name`` of the SignatureDefs that ``methods``
    (``{signature: method}``) names in the SavedModel ``folder``'s
    ``saved_model.pb``, and write its fingerprint again (its hashes cover
    the SignatureDefs)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = folder / "saved_model.pb"
    saved = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    for graph in saved.meta_graphs:
        for name, method in methods.items():
            if name in graph.signature_def:
                graph.signature_def[name].method_name = method
    path.write_bytes(saved.SerializeToString())
    if (folder / "fingerprint.pb").exists():
        try:
            from tensorflow.python.saved_model import fingerprinting_utils

            fingerprinting_utils.write_fingerprint(str(folder))
        except (ImportError, AttributeError):
            # (TensorFlow's writer moved: a SavedModel without a
            # fingerprint loads all the same; a stale one would mislead)
            (folder / "fingerprint.pb").unlink()


def write_export_info(task, folder):
    """Write :data:`EXPORT_INFO` into the SavedModel ``folder``."""
    from nlpseq import __version__

    (folder / EXPORT_INFO.parent).mkdir(exist_ok=True)
    (folder / EXPORT_INFO).write_text(json.dumps(
        {"app": task.name, "family": task.family,
         "nlpseq_version": __version__, "demo": demo_info(type(task)),
         "limits": dict(getattr(task, "limits", {}))},
        indent=2) + "\n", encoding="utf-8")


def demo_info(task_class):
    """What the demo page shows of a task class's exports: ``{"panel":
    ..., "example": ...}`` (its ``demo_panel`` and ``demo_example``)."""
    return {"panel": task_class.demo_panel,
            "example": task_class.demo_example or task_class.predict_example}


def check_limits(task_class, exporter, given):
    """The caps on one request's work of an export of ``task_class`` by
    ``exporter``: the values ``given`` of its
    :attr:`~nlpseq.tasks.base.Task.export_settings` (``None``: not given),
    checked, and the defaults of the others.

    Raises:
        NlpseqError: a name the family does not declare, a bad value (each
            setting's minimum is what the family's fixed signatures use), or
            a cap given to a format that has no signatures to cap.
    """
    settings = task_class.export_settings
    inputs.unknown_keywords(f"{task_class.name} export", given,
                            [s.name for s in settings])
    given = {name: value for name, value in given.items()
             if value is not None}
    if given and not exporter.capped:
        option = next(s.option for s in settings if s.name in given)
        raise NlpseqError(
            f"{option}: the {exporter.name} export runs no decoding, so "
            "there is nothing to cap; leave it out, or give it to a "
            "savedmodel export")
    return merge(settings, None, given, source="export")


def limited(task, exporter, given):
    """What ``exporter`` writes of ``task``: a shallow copy of it (the same
    model, preprocessor and settings) whose ``limits`` are the caps
    ``given`` (:func:`check_limits`), which the family's signatures enforce
    and :data:`EXPORT_INFO` records. The task keeps its own ``limits``, so
    the caps of one export never reach another, even one written at the
    same time by another thread."""
    view = copy.copy(task)
    view.limits = check_limits(type(task), exporter, given)
    return view


def assert_within(task, setting, name, value, unit=""):
    """Graph function: the op that refuses a request whose ``value`` (the
    signature's scalar input ``name``) is over this export's cap
    ``setting`` (one of ``task.limits``): INVALID_ARGUMENT, before any
    decoding when the decoding waits for it, with a message naming the cap
    and the option of ``export`` that sets it, e.g. ``length 100000 is
    over the limit of this export: 1000 tokens (nlpseq next-word export
    --max-generate-length sets it)``."""
    import tensorflow as tf

    limit = task.limits[setting]
    option = next(s.option for s in task.export_settings
                  if s.name == setting)
    message = tf.strings.format(
        f"{name} {{}} is over the limit of this export: {limit}{unit} "
        f"(nlpseq {task.name} export {option} sets it)", value)
    return tf.debugging.Assert(value <= limit, [message], name=setting)


def check_format(export_format):
    """The exporter of ``export_format``, checked (:meth:`Exporter.check`).

    Raises:
        NlpseqError: an unknown format (the known ones are listed), or one
            whose packages are missing.
    """
    if export_format not in EXPORTERS:
        raise NlpseqError(f"--format {export_format!r}: choose one of "
                          f"{', '.join(format_names())}")
    exporter = EXPORTERS.get(export_format)()
    exporter.check()
    return exporter


def format_names():
    """The export formats, SavedModel first (the default)."""
    return sorted(EXPORTERS.names(), key=lambda name: name != "savedmodel")


__all__ = ["EXPORT_INFO", "Exporter", "SavedModelExporter", "assert_within",
           "check_format", "check_limits", "demo_info", "format_names",
           "limited", "write_export_info"]
