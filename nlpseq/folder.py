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
when it has finished is that folder swapped in for the old one (the old
folder's ``export/`` versions are carried into the new one). A crash or a
kill mid-way leaves the previous model untouched, and the unfinished run
where ``--resume`` finds it. One process at a time writes a model folder:
training holds ``.<name>.lock`` beside it (:class:`FolderLock`), and exports
and the swap hold ``.<name>.export.lock``. Readers (:meth:`ModelFolder.read`)
see one whole model, whatever is published meanwhile.

Example:
    >>> folder = ModelFolder("saved_models/sentiment")
    >>> folder.staging.name
    '.sentiment.training'
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import math
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from nlpseq import __version__
from nlpseq.errors import NlpseqError
from nlpseq.log import LOG

CONFIG = "config.json"
_UMASK = os.umask(0)
os.umask(_UMASK)
MODEL = "model.keras"
#: The preprocessor's file (vocabularies, class names, tags).
PREPROCESSOR = "preprocessor.json"
#: The folder of TensorFlow Serving exports inside a model folder.
EXPORT = "export"


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


def finite(value):
    """``value`` with every non-finite float (NaN, infinities) made
    ``None``, through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def strict_json(value, **options):
    """``value`` as strict JSON (no bare ``NaN`` or ``Infinity``, which
    most JSON readers refuse): non-finite numbers are ``null``."""
    return json.dumps(finite(value), allow_nan=False, **options)


def write_json_atomic(path, value):
    write_text_atomic(path, strict_json(value, indent=2) + "\n")


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


_FAULT_COUNTS = {}


def fault_point(name):
    """A named point where the fault-injection tests stop a process: when
    the environment variable ``NLPSEQ_FAULT`` is ``name`` (or ``name:N``,
    the N-th time the point is reached), the process writes ``name`` to the
    file ``NLPSEQ_FAULT_FILE`` (if set) and sleeps there, to be killed.
    Does nothing otherwise."""
    wanted = os.environ.get("NLPSEQ_FAULT")
    if not wanted or wanted.split(":")[0] != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] != int((wanted.split(":") + ["1"])[1]):
        return
    signal_file = os.environ.get("NLPSEQ_FAULT_FILE")
    if signal_file:
        Path(signal_file).write_text(name, encoding="utf-8")
    time.sleep(3600)


def _siblings(target):
    target = Path(target)
    return (target.with_name(f".{target.name}.partial"),
            target.with_name(f".{target.name}.previous"))


def recover_folder(target):
    """Finish or undo a :func:`replace_folder` that a crash cut off, so that
    ``target`` is a whole old or new folder again."""
    target = Path(target)
    partial, previous = _siblings(target)
    if not target.exists():
        if partial.is_dir() and previous.is_dir():
            # (the old folder is moved aside only once the new one is whole)
            os.replace(partial, target)
        elif previous.is_dir():
            os.replace(previous, target)
    for leftover in (partial, previous):
        if leftover.exists() and target.exists():
            shutil.rmtree(leftover)


def replace_folder(target, fill):
    """Replace the folder ``target`` by a new one written by
    ``fill(new_folder)``, in two renames: a crash leaves the old folder or
    the new one, whole (:func:`recover_folder` tidies up), never a mix."""
    target = Path(target)
    partial, previous = _siblings(target)
    recover_folder(target)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        fill(partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    fault_point("checkpoint-swap")
    if target.exists():
        os.replace(target, previous)
    os.replace(partial, target)
    shutil.rmtree(previous, ignore_errors=True)


def folder_has_state(target, name):
    """Whether the folder ``target`` (or, after a cut-off
    :func:`replace_folder`, its old or new version) holds ``name``."""
    target = Path(target)
    partial, previous = _siblings(target)
    if (target / name).is_file():
        return True
    return not target.exists() and (previous / name).is_file()


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """An exclusive lock held through a lock file: one writer at a time.

    The file holds its holder's PID, host and start time (JSON), which the
    error of a second writer names. The lock itself is the kernel's
    ``flock`` on the file, so it ends with its holder, even one killed by
    SIGKILL: a lock file left behind by a dead process is stale and is
    taken over (with a warning). Where the file system has no ``flock``, a
    lock file whose PID is dead on this host is stale.

    Args:
        path: the lock file.
        what: what is locked, for messages (e.g. the model folder).
    """

    def __init__(self, path, what):
        self.path = Path(path)
        self.what = what
        self._fd = None
        self._made = []

    @staticmethod
    def describe(holder):
        if not isinstance(holder, dict) or "pid" not in holder:
            return "another process (starting)"
        return (f"PID {holder.get('pid')} on {holder.get('host')}, started "
                f"{holder.get('started')}")

    def _read(self, fd=None):
        try:
            if fd is not None:
                os.lseek(fd, 0, os.SEEK_SET)
                text = os.read(fd, 4096).decode("utf-8")
            else:
                text = self.path.read_text(encoding="utf-8")
            return json.loads(text)
        except (OSError, ValueError):
            return None

    def holder(self):
        """The description of the process holding the lock, or ``None``
        when it is free (creates nothing)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.describe(self._read(fd))
        except OSError:
            return None
        finally:
            os.close(fd)  # (which releases a lock taken here)
        return None

    def _make_parents(self):
        missing = []
        parent = self.path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            try:
                folder.mkdir()
                self._made.append(folder)
            except FileExistsError:
                pass

    def acquire(self, wait=False, message=None):
        """Take the lock.

        Args:
            wait: wait for the holder to finish; otherwise raise at once.
            message: the error when the lock is held (``{holder}`` is
                replaced by the holder's description).

        Raises:
            NlpseqError: the lock is held by another process (without
                ``wait``).
        """
        try:
            self._make_parents()
        except OSError as error:
            raise NlpseqError(f"{self.path.parent}: cannot create a folder "
                              f"here ({error.strerror})") from None
        if not self.path.parent.is_dir():
            raise NlpseqError(f"{self.path.parent}: not a folder")
        waited = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT,
                             0o666 & ~_UMASK)
            except OSError as error:
                raise NlpseqError(f"{self.path.parent}: cannot write here "
                                  f"({error.strerror})") from None
            try:
                previous = self._read(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not wait:
                        holder = self.describe(self._read(fd))
                        raise NlpseqError(
                            (message or "{what} is locked by {holder}")
                            .format(what=self.what, holder=holder)) from None
                    if not waited:
                        LOG.info("Waiting for %s: locked by %s", self.what,
                                 self.describe(self._read(fd)),
                                 extra={"stderr": True})
                        waited = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except OSError as error:
                    if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP,
                                           errno.ENOSYS):
                        raise
                    # (no flock here: a live PID on this host holds it)
                    holder = self._read(fd)
                    if (isinstance(holder, dict)
                            and holder.get("pid") != os.getpid()
                            and (holder.get("host") != socket.gethostname()
                                 or _process_alive(holder.get("pid", 0)))):
                        if not wait:
                            raise NlpseqError(
                                (message or "{what} is locked by {holder}")
                                .format(what=self.what,
                                        holder=self.describe(holder))
                            ) from None
                        time.sleep(0.2)
                        os.close(fd)
                        continue
                # the file may have been removed by its last holder meanwhile
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            break
        if isinstance(previous, dict) and "pid" in previous and not waited:
            LOG.warning("took over the stale lock %s of %s (that process "
                        "has ended)", self.path, self.describe(previous))
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self):
        """Give the lock up (and remove the lock file and the parent folders
        it created, when they are empty)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:
                break
        self._made = []

    def __enter__(self):
        if self._fd is None:
            self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


class _KerasFile(io.BytesIO):
    """A ``.keras`` file's bytes, read once, which Keras' ``load_weights``
    takes as a file (it chooses the format by the name's ending)."""

    def __init__(self, data, name=MODEL):
        super().__init__(data)
        self.name = name

    def __str__(self):
        return self.name


#: What a new model replaces in its folder: the files a training run
#: writes. Everything else (``export/``, a user's own files) is carried over.
REPLACED = frozenset({CONFIG, MODEL, "preprocessor.json", "metrics.json",
                      "history.csv", "checkpoints", "logs", "report.html",
                      "teacher_targets.npz"})


class ModelFolder:
    """A model folder and its staging sibling.

    Args:
        path: the folder, e.g. ``saved_models/sentiment``.
    """

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_symlink():
            # (the link stays; the folder it points to is the model folder)
            self.path = Path(os.path.realpath(self.path))
        # (a path without a name, like ".", is named by its absolute form)
        named = self.path if self.path.name not in ("", ".", "..") else \
            Path(os.path.abspath(self.path))
        self.named = bool(named.name)
        if not self.named:  # the root folder
            named = named / "model"
        self.staging = named.with_name(f".{named.name}.training")
        self._backup = named.with_name(f".{named.name}.previous")
        self.lock_path = named.with_name(f".{named.name}.lock")
        self.export_lock_path = named.with_name(f".{named.name}.export.lock")

    def __str__(self):
        return str(self.path)

    # Reading ---------------------------------------------------------------

    def recover(self):
        """Undo a swap that was cut off between its two renames (by a crash),
        when no other process is writing the folder."""
        if self.path.exists() or not self._backup.is_dir() or not self.named:
            return
        lock = FolderLock(self.lock_path, self.path)
        try:
            lock.acquire()
        except (NlpseqError, OSError):
            return  # (a writer is at work: it finishes the swap itself)
        try:
            with FolderLock(self.export_lock_path, self.path).acquire(
                    wait=True):
                if not self.path.exists() and self._backup.is_dir():
                    os.replace(self._backup, self.path)
        finally:
            lock.release()

    def _tidy(self):
        """Finish a publish that a crash cut off (the writer's locks held):
        the old folder back in place, or its exports carried into the new
        one and the old one removed."""
        if not self.path.exists() and self._backup.is_dir():
            os.replace(self._backup, self.path)
        if self._backup.exists():
            self._carry_exports(self._backup)
            shutil.rmtree(self._backup)

    def _carry_exports(self, old):
        """Move into the new folder every entry of the old one that the new
        model does not hold: its ``export/`` versions, and any file or
        folder a user put there (nlpseq deletes only what it wrote)."""
        for source in sorted(old.iterdir()):
            target = self.path / source.name
            if source.name not in REPLACED and not target.exists() \
                    and not target.is_symlink():
                os.replace(source, target)

    def read(self, app=None, names=()):
        """``config.json``, checked, and the bytes of the files ``names`` of
        one model: a publish meanwhile gives the old model or the new one,
        never parts of both (the files are read through one open folder,
        and a read cut by a swap starts again).

        Returns:
            ``(config, {name: bytes})``.

        Raises:
            NlpseqError: no folder, not a model folder, corrupted (a file of
                ``names`` missing), or made by another app.
        """
        self.recover()
        missing_seen = False
        for attempt in range(50):
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            except NotADirectoryError:
                raise NlpseqError(f"{self.path}: not a folder") from None
            except FileNotFoundError:
                try:  # between the two renames of a publish
                    fd = os.open(self._backup, os.O_RDONLY | os.O_DIRECTORY)
                except (FileNotFoundError, NotADirectoryError):
                    if missing_seen:
                        raise NlpseqError(
                            f"Model folder not found: {self.path}") from None
                    missing_seen = True
                    continue
            try:
                return self._read_from(fd, app, names)
            except _Moved:
                time.sleep(0.002 * (attempt + 1))
            finally:
                os.close(fd)
        raise NlpseqError(f"{self.path}: the model kept changing while it "
                          "was read; try again")

    def _read_from(self, fd, app, names):
        def moved():
            try:
                now = os.stat(self.path)
            except FileNotFoundError:
                return True
            here = os.fstat(fd)
            return (now.st_ino, now.st_dev) != (here.st_ino, here.st_dev)

        def read(name):
            try:
                handle = os.open(name, os.O_RDONLY, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError):
                return None
            try:
                with os.fdopen(handle, "rb") as opened:
                    return opened.read()
            except IsADirectoryError:
                return None

        config_path = self.path / CONFIG
        text = read(CONFIG)
        if text is None:
            if moved():
                raise _Moved
            raise NlpseqError(
                f"{self.path}: not an nlpseq model folder (no {CONFIG})")
        try:
            config = json.loads(text.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise NlpseqError(
                f"{config_path}: corrupted ({error})") from None
        if not isinstance(config, dict) or "app" not in config:
            raise NlpseqError(f"{config_path}: corrupted (no 'app' entry)")
        if app is not None and config["app"] != app:
            raise NlpseqError(
                f"{self.path}: a model of the '{config['app']}' app, not "
                f"'{app}' (use: nlpseq {config['app']} ...)")
        files = {}
        for name in names:
            files[name] = read(name)
            if files[name] is None:
                if moved():
                    raise _Moved
                raise NlpseqError(f"{self.path}: corrupted (missing {name})")
        return config, files

    def read_config(self, app=None) -> dict:
        """``config.json``, checked: it exists, parses, and is ``app``'s.

        Raises:
            NlpseqError: no folder, not a model folder, corrupted, or made by
                another app.
        """
        return self.read(app)[0]

    def file(self, name, required=True) -> Path:
        """The path of a file of the model; checks that it exists."""
        path = self.path / name
        if required and not path.is_file():
            raise NlpseqError(f"{self.path}: corrupted (missing {name})")
        return path

    # Writing ---------------------------------------------------------------

    def lock(self):
        """The writer's lock of the folder (``.<name>.lock`` beside it),
        taken at once or refused: use as ``with folder.lock(): ...``.

        Raises:
            NlpseqError: another process holds it (its PID, host and start
                time are named).
        """
        lock = FolderLock(self.lock_path, self.path)
        return lock.acquire(message=self._in_use())

    def _in_use(self):
        return ("{what} is in use: another nlpseq process ({holder}) is "
                f"training into it; one at a time (lock file: "
                f"{self.lock_path})")

    def export_lock(self):
        """The lock of the folder's ``export/`` versions and of the swap
        that carries them (``.<name>.export.lock`` beside it); waits for
        its holder."""
        return FolderLock(self.export_lock_path, self.path / EXPORT).acquire(
            wait=True)

    def resumable(self) -> bool:
        """Whether the staging folder holds an interrupted run to resume."""
        return folder_has_state(self.staging / "checkpoints", "state.json")

    def _owner(self):
        """The app whose model the folder holds; ``None`` for a missing or
        empty folder.

        Raises:
            NlpseqError: a file, or a folder nlpseq did not write.
        """
        if not self.path.exists():
            return None
        if not self.path.is_dir():
            raise NlpseqError(f"{self.path}: not a folder")
        try:
            config = json.loads((self.path / CONFIG).read_text("utf-8"))
        except (OSError, ValueError):
            config = None
        if isinstance(config, dict) and isinstance(config.get("app"), str):
            return config["app"]
        if not any(self.path.iterdir()):
            return None
        raise NlpseqError(
            f"{self.path}: not an nlpseq model folder (no {CONFIG} of "
            "nlpseq's) and not empty; training replaces the model folder as "
            "a whole, so it will not write there: give a new or empty "
            "folder")

    def check_training(self, app, resume=False, overwrite=False,
                       locked=False):
        """Refuse, before anything on disk changes, a training into this
        folder that would destroy what it should not: a folder nlpseq did
        not write, another app's model (unless ``overwrite``), or an
        interrupted run (unless ``resume`` continues it or ``overwrite``
        discards it). With ``locked`` (the writer's lock held), first
        finish what a crash cut off.

        Raises:
            NlpseqError: one line saying why, and what to give instead.
        """
        if not self.named or self.path.name in ("", ".", ".."):
            raise NlpseqError(
                f"--model-dir {self.path}: give the model folder a name "
                f"(e.g. saved_models/{app}): training replaces it as a "
                "whole, so it cannot be '.', '..' or '/'")
        if locked:
            if self._backup.exists():
                with self.export_lock():
                    self._tidy()
            recover_folder(self.staging / "checkpoints")
        else:
            holder = FolderLock(self.lock_path, self.path).holder()
            if holder is not None:
                raise NlpseqError(self._in_use().format(what=self.path,
                                                        holder=holder))
        owner = self._owner()
        if owner is not None and owner != app and not overwrite:
            raise NlpseqError(
                f"{self.path}: holds a model of the '{owner}' app; give "
                f"--overwrite to replace it with a '{app}' model, or another "
                "--model-dir")
        if resume:
            self.start(resume=True)  # (checks only)
            return
        if self.resumable() and not overwrite:
            raise NlpseqError(
                f"{self.path}: an interrupted run {self._progress()}is "
                f"waiting in {self.staging}; continue it with: nlpseq "
                f"{self._staging_app() or app} train --model-dir {self.path} "
                "--resume, or discard it with --overwrite")

    def _staging_app(self):
        try:
            return json.loads((self.staging / CONFIG).read_text("utf-8"))[
                "app"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _progress(self):
        for folder in (self.staging / "checkpoints",
                       _siblings(self.staging / "checkpoints")[1]):
            try:
                state = json.loads((folder / "state.json").read_text("utf-8"))
                config = json.loads((self.staging / CONFIG).read_text(
                    "utf-8"))
                return (f"(after epoch {state['epochs_done']} of "
                        f"{config['config']['epochs']}) ")
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return ""

    def start(self, resume=False) -> Path:
        """The staging folder of a new run (or of the interrupted one).

        Returns:
            The staging path.

        Raises:
            NlpseqError: ``resume`` with no interrupted run to continue.
        """
        if resume:
            if not self.resumable():
                raise NlpseqError(
                    f"--resume: no interrupted run of {self.path} to "
                    f"continue (looked for {self.staging})")
            return self.staging
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        return self.staging

    def discard_failed(self):
        """After a fresh run failed: remove its staging folder, unless it
        holds a checkpoint to resume from."""
        if self.staging.exists() and not self.resumable():
            shutil.rmtree(self.staging, ignore_errors=True)

    def publish(self):
        """Swap the finished staging folder in for the model folder.

        The old folder is renamed aside, the new one renamed into place, the
        old one's ``export/`` versions moved into the new one, then the old
        one removed: at every moment one complete model exists (a swap cut
        off between the renames is finished by :meth:`recover`, the rest by
        the next writer). The export lock is held meanwhile, so no export
        writes into a folder being swapped.

        Raises:
            NlpseqError: the folder is not one nlpseq may replace (see
                :meth:`check_training`).
        """
        with self.export_lock():
            self._tidy()
            self._owner()  # (refuses a folder that is not a model folder)
            fault_point("publish")
            if self.path.exists():
                os.replace(self.path, self._backup)
            fault_point("publish-swap")
            os.replace(self.staging, self.path)
            if self._backup.exists():
                self._carry_exports(self._backup)
                shutil.rmtree(self._backup, ignore_errors=True)


class _Moved(Exception):
    """The folder being read was swapped away (read it again)."""


def folder_config(app, task_class, config, **extra) -> dict:
    """The content of ``config.json``."""
    return {
        "app": app,
        "class": f"{task_class.__module__}.{task_class.__qualname__}",
        "nlpseq_version": __version__,
        "config": config,
        **extra,
    }


# -- exports -------------------------------------------------------------------

def export_lock(output, folder=None):
    """The lock an export into the base folder ``output`` holds, acquired
    (it waits for its holder): the model folder's ``.NAME.export.lock``
    when ``output`` is a folder of ``folder`` (``export/``,
    ``export-onnx/``: the swap of a new model, which carries them over,
    holds it too), else ``.BASE.lock`` beside ``output``."""
    if folder is not None and os.path.dirname(os.path.abspath(output)) == \
            os.path.abspath(folder.path):
        return folder.export_lock()
    named = Path(os.path.abspath(output))
    return FolderLock(named.with_name(f".{named.name}.lock"),
                      output).acquire(wait=True)


def write_version(output, version, write):
    """Write version ``version`` (default: one above the highest there, or
    1) of the base folder ``output`` atomically: ``write(folder)`` fills a
    hidden ``.N.partial-*`` folder, which is renamed to ``output/N`` when
    it is whole. Partial folders of killed exports are removed first. The
    caller holds :func:`export_lock`.

    Returns:
        The version's path.

    Raises:
        NlpseqError: the version exists already (also when another process
            put it there meanwhile).
    """
    output.mkdir(parents=True, exist_ok=True)
    for stale in output.glob(".*.partial*"):  # (of a killed export)
        shutil.rmtree(stale, ignore_errors=True)
    if version is None:
        numbers = [int(p.name) for p in output.iterdir()
                   if p.is_dir() and p.name.isdigit()]
        version = max(numbers, default=0) + 1
    target = output / str(version)
    exists = NlpseqError(
        f"--version {version}: {target} exists already; give another "
        "version number")
    if target.exists():
        raise exists
    partial = Path(tempfile.mkdtemp(prefix=f".{version}.partial-",
                                    dir=output))
    temporary = partial / str(version)
    try:
        temporary.mkdir()
        write(temporary)
        fault_point("export")
        try:
            os.rename(temporary, target)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise exists from None
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


# -- loading -------------------------------------------------------------------

def load_model(build, data, folder, app):
    """The model ``build()`` makes, with the weights of ``model.keras`` (its
    bytes, ``data``, read by :meth:`ModelFolder.read`) loaded into it.

    Raises:
        NlpseqError: the file is damaged (not a whole ``.keras`` archive,
            cut short, overwritten) or holds the weights of another model
            (one line, naming the folder and the cause).
    """
    import warnings
    import zipfile

    weights = _KerasFile(data)
    if not zipfile.is_zipfile(weights):
        raise NlpseqError(
            f"{folder}: corrupted model ({MODEL} is damaged: not a whole "
            ".keras file, e.g. cut short; train or copy the model again)")
    try:
        model = build()
        with warnings.catch_warnings():
            # (Keras warns of each layer whose weights do not fit before it
            # raises; the error below says it once)
            warnings.simplefilter("ignore")
            model.load_weights(weights)
    except NlpseqError:
        raise
    except zipfile.BadZipFile as error:
        raise NlpseqError(
            f"{folder}: corrupted model ({MODEL} is damaged: {error}; "
            "train or copy the model again)") from None
    except Exception as error:  # noqa: BLE001 (any damage to the files)
        reason = str(error).splitlines()[0] if str(error) else ""
        reason = reason.rstrip(": ")
        if len(reason) > 200:
            reason = reason[:197] + "..."
        raise NlpseqError(
            f"{folder}: corrupted model ({MODEL} does not hold the weights "
            f"of this {app} model: {type(error).__name__}: {reason})") \
            from None
    return model
