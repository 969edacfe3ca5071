"""The Python API: :func:`load` a trained model, :func:`train` a new one
(:func:`load` and :func:`task_class` are :mod:`nlpseq.tasks`').

Example:
    >>> import nlpseq
    >>> task = nlpseq.load("saved_models/sentiment")        # doctest: +SKIP
    >>> task.predict("not bad at all")["label"]              # doctest: +SKIP
    'pos'

A task's ``predict`` takes a list of strings and returns a list of records
(a single string gives one record), ``predict_stream`` does the same for an
iterable of any size, ``evaluate`` returns the metrics of a data SPEC, and
``export`` writes a SavedModel for TensorFlow Serving.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from nlpseq import inputs
from nlpseq.apps import config_path, data_spec
from nlpseq.errors import NlpseqError
from nlpseq.tasks import load, task_class


def train(app, data=None, valid=None, model_dir=None, config=None,
          resume=False, verbose=0, overwrite=False, **settings):
    """Train a model of ``app`` and publish it in ``model_dir``.

    Settings are the ``train`` command's options as keywords (``epochs=5``,
    ``units=128``...), with the same precedence: keywords, then the
    ``config`` file (TOML or YAML, or the name of a packaged one such as
    ``"sentiment_imdb"``), then the app's defaults.

    Args:
        app: the app's name (``"sentiment"``, ``"ner"``...).
        data, valid: data SPECs (default: the built-in sample;
            ``sample:NAME`` names a packaged sample).
        model_dir: the model folder (default: ``saved_models/<app>``).
        resume: continue the interrupted run in ``model_dir``.
        overwrite: replace another app's model in ``model_dir``, or discard
            the interrupted run there (otherwise both are refused).
        verbose: Keras' progress output (0: none, 1: bar, 2: a line per
            epoch). Progress messages go to the ``nlpseq`` logger.

    Returns:
        The trained task, ready to ``predict``.

    Raises:
        NlpseqError: an unknown setting, a bad value, bad data.
    """
    cls = task_class(app)
    known = {s.name for s in cls.all_settings()}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise NlpseqError(f"unknown setting '{unknown[0]}' for the '{app}' "
                          f"app; known settings: {', '.join(sorted(known))}")
    # (paths as settings: --init-from, --embeddings...)
    settings = {k: os.fspath(v) if isinstance(v, PurePath) else v
                for k, v in settings.items()}
    data, valid, model_dir, config = (
        inputs.path_argument("train", name, value) for name, value in (
            ("data", data), ("valid", valid), ("model_dir", model_dir),
            ("config", config)))
    for name, value in (("resume", resume), ("overwrite", overwrite)):
        inputs.flag("train", name, value)
    inputs.count("train", "verbose", verbose, low=0, high=2)
    flags = dict(settings, data=data_spec(data, "data"),
                 valid=data_spec(valid, "valid"))
    effective = cls.effective_config(flags, config_path(config))
    # (Task.train starts TensorFlow once the data is read and checked)
    return cls.train(effective, Path(model_dir or f"saved_models/{app}"),
                     resume=resume, epochs=settings.get("epochs") if resume
                     else None, verbose=verbose, overwrite=overwrite)


__all__ = ["load", "task_class", "train"]
