"""The model families (:mod:`~nlpseq.tasks.classifier`,
:mod:`~nlpseq.tasks.tagger`, :mod:`~nlpseq.tasks.language_model`,
:mod:`~nlpseq.tasks.seq2seq`) over the :class:`~nlpseq.tasks.base.Task`
base, the :class:`~nlpseq.tasks.trainer.Trainer` that trains them, and the
two ways in by name: :func:`task_class` and :func:`load` (which the Python
API, transfer and the lab use alike). Importing it imports no TensorFlow.
"""

from __future__ import annotations

from nlpseq.errors import NlpseqError
from nlpseq.registry import APPS


def task_class(app):
    """The task class registered as ``app`` (``"sentiment"``...).

    Raises:
        NlpseqError: an unknown app (the known ones are listed).
    """
    from nlpseq.inputs import NlpseqTypeError, kind

    if not isinstance(app, str):
        raise NlpseqTypeError(f"app is {kind(app)}; expected an app's name, "
                              f"one of: {', '.join(APPS.names())}")
    if app not in APPS:
        raise NlpseqError(f"unknown app '{app}'; expected one of: "
                          f"{', '.join(APPS.names())}")
    return APPS.get(app)


def load(path):
    """The trained task in the model folder ``path``, whatever its app.

    Raises:
        NlpseqError: not a model folder, or a damaged one.
    """
    from nlpseq.folder import ModelFolder
    from nlpseq.inputs import path_argument
    from nlpseq.runtime import import_tensorflow

    path = path_argument("load", "path", path, optional=False)
    entries = ModelFolder(path).read_config()
    cls = task_class(entries["app"])
    import_tensorflow()
    return cls.load(path)


__all__ = ["load", "task_class"]
