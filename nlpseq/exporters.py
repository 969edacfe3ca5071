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

import json
from pathlib import Path

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
    strings; and :data:`EXPORT_INFO`."""

    name = "savedmodel"
    help = "savedmodel (raw strings in)"

    def write(self, task, folder):
        import keras

        archive = keras.export.ExportArchive()
        archive.track(task.model)
        for layer in task.serving_layers():
            archive.track(layer)
        for name, (function, signature) in task.serving_functions().items():
            archive.add_endpoint(name, utf8_checked(function, signature),
                                 input_signature=signature)
        archive.write_out(str(folder), verbose=False)
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


def write_export_info(task, folder):
    """Write :data:`EXPORT_INFO` into the SavedModel ``folder``."""
    from nlpseq import __version__

    (folder / EXPORT_INFO.parent).mkdir(exist_ok=True)
    (folder / EXPORT_INFO).write_text(json.dumps(
        {"app": task.name, "family": task.family,
         "nlpseq_version": __version__, "demo": demo_info(type(task))},
        indent=2) + "\n", encoding="utf-8")


def demo_info(task_class):
    """What the demo page shows of a task class's exports: ``{"panel":
    ..., "example": ...}`` (its ``demo_panel`` and ``demo_example``)."""
    return {"panel": task_class.demo_panel,
            "example": task_class.demo_example or task_class.predict_example}


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


__all__ = ["EXPORT_INFO", "Exporter", "SavedModelExporter", "check_format",
           "demo_info", "format_names", "write_export_info"]
