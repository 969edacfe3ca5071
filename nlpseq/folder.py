"""The model folder: what a trained model is on disk, written atomically.

Layout of ``saved_models/<name>/``::

    config.json        app, task class, effective config, nlpseq version
    preprocessor.json  what the task learned besides the weights:
                       vocabularies, class names or tags (one JSON file)
    model.keras        the Keras model (token ids in, predictions out);
                       nlpseq rebuilds the model from config.json and
                       preprocessor.json and loads these weights
    metrics.json     validation metrics of the final model
    history.csv      per-epoch loss and metrics
    checkpoints/     last.keras (model + optimizer), best.weights.h5,
                     state.json (epoch, best loss, patience counter)
    logs/            TensorBoard logs
    export/          TensorFlow Serving exports (<version>/saved_model.pb)

A training run works in a hidden sibling, ``.<name>.training/``, and only
when it has finished is that folder swapped in for the old one. A crash or a
kill mid-way leaves the previous model untouched, and the unfinished run
where ``--resume`` finds it.

Example:
    >>> folder = ModelFolder("saved_models/sentiment")
    >>> folder.staging.name
    '.sentiment.training'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import nlpseq
from nlpseq.errors import NlpseqError

CONFIG = "config.json"
_UMASK = os.umask(0)
os.umask(_UMASK)
MODEL = "model.keras"


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` so that readers see the old or the new file."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path, value):
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def save_atomic(path, save):
    """Call ``save(temporary_path)``, then move the result to ``path``."""
    path = Path(path)
    temporary = path.with_name(f".tmp-{path.name}")
    try:
        save(str(temporary))
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


class ModelFolder:
    """A model folder and its staging sibling.

    Args:
        path: the folder, e.g. ``saved_models/sentiment``.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.staging = self.path.with_name(f".{self.path.name}.training")
        self._backup = self.path.with_name(f".{self.path.name}.previous")

    def __str__(self):
        return str(self.path)

    # Reading ---------------------------------------------------------------

    def recover(self):
        """Undo a swap that was cut off between its two renames."""
        if not self.path.exists() and self._backup.is_dir():
            os.replace(self._backup, self.path)

    def read_config(self, app=None) -> dict:
        """``config.json``, checked: it exists, parses, and is ``app``'s.

        Raises:
            NlpseqError: no folder, not a model folder, corrupted, or made by
                another app.
        """
        self.recover()
        if not self.path.exists():
            raise NlpseqError(f"Model folder not found: {self.path}")
        if not self.path.is_dir():
            raise NlpseqError(f"{self.path}: not a folder")
        config_path = self.path / CONFIG
        if not config_path.is_file():
            raise NlpseqError(
                f"{self.path}: not an nlpseq model folder (no {CONFIG})")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise NlpseqError(
                f"{config_path}: corrupted ({error})") from None
        if not isinstance(config, dict) or "app" not in config:
            raise NlpseqError(f"{config_path}: corrupted (no 'app' entry)")
        if app is not None and config["app"] != app:
            raise NlpseqError(
                f"{self.path}: a model of the '{config['app']}' app, not "
                f"'{app}' (use: nlpseq {config['app']} ...)")
        return config

    def file(self, name, required=True) -> Path:
        """The path of a file of the model; checks that it exists."""
        path = self.path / name
        if required and not path.is_file():
            raise NlpseqError(f"{self.path}: corrupted (missing {name})")
        return path

    # Writing ---------------------------------------------------------------

    def start(self, resume=False) -> Path:
        """The staging folder of a new run (or of the interrupted one).

        Returns:
            The staging path.

        Raises:
            NlpseqError: ``resume`` with no interrupted run to continue.
        """
        if resume:
            if not (self.staging / "checkpoints" / "state.json").is_file():
                raise NlpseqError(
                    f"--resume: no interrupted run of {self.path} to "
                    f"continue (looked for {self.staging})")
            return self.staging
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        return self.staging

    def publish(self):
        """Swap the finished staging folder in for the model folder.

        The old folder is renamed aside, the new one renamed into place, then
        the old one removed: at every moment one complete model exists
        (:meth:`recover` finishes a swap cut off between the renames).
        """
        self.recover()
        if self._backup.exists():
            shutil.rmtree(self._backup)
        if self.path.exists():
            os.replace(self.path, self._backup)
        os.replace(self.staging, self.path)
        if self._backup.exists():
            shutil.rmtree(self._backup, ignore_errors=True)


def folder_config(app, task_class, config, **extra) -> dict:
    """The content of ``config.json``."""
    return {
        "app": app,
        "class": f"{task_class.__module__}.{task_class.__qualname__}",
        "nlpseq_version": nlpseq.__version__,
        "config": config,
        **extra,
    }
