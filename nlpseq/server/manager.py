"""The served models and their versions, kept in step with the disk.

A model is a name and a base path holding numbered version folders
(SavedModels), as TensorFlow Serving has them. Models come from
``--model NAME=BASE_PATH`` or from a TensorFlow Serving model config file
(a text ``ModelServerConfig`` with a ``model_config_list``, its
``model_version_policy``: ``latest { num_versions }`` (the default, one),
``all {}`` or ``specific { versions }``, and its ``version_labels``).

A poll thread looks at every base path each ``poll_seconds``: a version
folder that the policy wants (a number for a name, holding
``saved_model.pb``; hidden folders such as an export's ``.2.partial-*`` are
never looked at) is loaded once its files have stayed the same between two
polls, while the versions already loaded keep serving; a version that is no
longer wanted is unloaded once a wanted one is available, and a version
whose folder is gone at once. Each version goes through TensorFlow
Serving's states START, LOADING, AVAILABLE, UNLOADING, END; a failed load
ends in END with its error (``GET /v1/models/NAME`` shows it), is logged,
and is tried again when the folder's files change.

The signatures' metadata is read from the SavedModel's own
``saved_model.pb`` (its SignatureDefs, as TensorFlow Serving reports
them); the functions are those of ``tf.saved_model.load``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from nlpseq.errors import NlpseqError
from nlpseq.server.batching import Batcher, BatchingOptions, Closed, failure
from nlpseq.server.classify import EXAMPLE_METHODS
from nlpseq.server.codec import (
    DEFAULT_SIGNATURE,
    DT_STRING,
    DTYPES,
    ServingError,
    batch_rows,
    check_inputs,
    check_text,
    invalid,
)
from nlpseq.server.config_files import (  # noqa: F401 (and for callers)
    ModelConfig,
    check_models,
    parse_model_flag,
    read_model_config_file,
)
from nlpseq.server.monitoring import SignatureMonitor

LOG = logging.getLogger("nlpseq.server")
#: The SignatureDef method of TensorFlow Serving's Classify API.
CLASSIFY_METHOD = "tensorflow/serving/classify"

START, LOADING, AVAILABLE, UNLOADING, END = (
    "START", "LOADING", "AVAILABLE", "UNLOADING", "END")
#: The file of an export's nlpseq metadata (app and family).
NLPSEQ_INFO = Path("assets.extra") / "nlpseq.json"
_TYPE_NAMES = None


def dtype_enum_name(dtype):
    """``DT_STRING`` for 7..."""
    global _TYPE_NAMES
    if _TYPE_NAMES is None:
        from tensorflow.core.framework import types_pb2

        _TYPE_NAMES = types_pb2.DataType
    try:
        return _TYPE_NAMES.Name(dtype)
    except ValueError:
        return str(dtype)


def shown(path):
    """``path`` as the user most likely gave it: relative to the working
    directory when inside it (the server keeps absolute paths)."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- a loaded version ---------------------------------------------------------

class TensorInfo:
    """A signature's input or output: dtype (TensorFlow's DataType number)
    and shape (``None`` for an unknown rank, -1 for a free dimension)."""

    __slots__ = ("name", "dtype", "shape", "numpy_dtype")

    def __init__(self, name, proto):
        self.name = name
        self.dtype = proto.dtype
        self.shape = None if proto.tensor_shape.unknown_rank else tuple(
            d.size for d in proto.tensor_shape.dim)
        known = DTYPES.get(proto.dtype)
        self.numpy_dtype = None if known is None else np.dtype(known[1])

    def describe(self):
        return {"dtype": dtype_enum_name(self.dtype),
                "shape": None if self.shape is None else list(self.shape)}


def registered_demo(app, family):
    """The demo page's ``{"panel", "example"}`` of the registered ``app``,
    else of the first registered app of ``family``, else ``{}``."""
    from nlpseq.exporters import demo_info
    from nlpseq.registry import APPS

    names = [app] if app in APPS else [
        name for name in APPS.names() if family is not None
        and APPS.get(name).family == family][:1]
    return demo_info(APPS.get(names[0])) if names else {}


def _batched(info):
    """A free first dimension and fixed other ones."""
    return bool(info.shape) and info.shape[0] == -1 and all(
        d >= 0 for d in info.shape[1:])


class Signature:
    """A callable signature of a loaded version, and its batcher."""

    def __init__(self, version, name, proto, function, options):
        self.name = name
        #: The SignatureDef's method (``tensorflow/serving/predict``...).
        self.method_name = proto.method_name
        self.inputs = {k: TensorInfo(k, v) for k, v in proto.inputs.items()}
        self.outputs = {k: TensorInfo(k, v) for k, v in proto.outputs.items()}
        self.output_names = sorted(self.outputs)
        self.function = function
        #: Whether concurrent requests are merged into one call.
        self.mergeable = bool(self.inputs) and all(
            _batched(i) for i in self.inputs.values()) and all(
            _batched(o) for o in self.outputs.values())
        monitor = version.monitor and SignatureMonitor(
            version.monitor, version.name, name)
        self.batcher = Batcher(
            self._run, f"model {version.name} version {version.number} "
            f"signature {name}", self.mergeable, options, monitor)

    def _run(self, inputs):
        import tensorflow as tf

        outputs = self.function(**{name: tf.constant(value)
                                   for name, value in inputs.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    def describe(self):
        return {"method_name": self.method_name,
                "inputs": {k: v.describe() for k, v in
                           sorted(self.inputs.items())},
                "outputs": {k: v.describe() for k, v in
                            sorted(self.outputs.items())}}


class ServedVersion:
    """One version of a model: its state, and once loaded its
    signatures."""

    def __init__(self, name, number, path, monitor=None):
        self.name = name
        self.number = number
        self.path = Path(path)
        #: The server's :class:`~nlpseq.server.monitoring.Monitor`, or
        #: ``None``.
        self.monitor = monitor
        self.state = START
        #: ``(code, message)`` of a failed load, else ``None``.
        self.error = None
        #: The folder's files when it was last loaded or failed.
        self.snapshot = None
        #: The SavedModel's SignatureDefs (proto map), once loaded.
        self.signature_defs = {}
        self.signatures = {}
        #: ``assets.extra/nlpseq.json`` of the export, when there is one.
        self.info = {}
        self._loaded = None

    def load(self, options):
        """Load the SavedModel; AVAILABLE, or END with the error."""
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.state = LOADING
        started = time.monotonic()
        try:
            saved = saved_model_pb2.SavedModel()
            saved.ParseFromString((self.path / "saved_model.pb").read_bytes())
            defs = saved.meta_graphs[0].signature_def if \
                saved.meta_graphs else {}
            loaded = tf.saved_model.load(str(self.path))
            signatures = {}
            for name, function in loaded.signatures.items():
                if name in defs:
                    signatures[name] = Signature(self, name, defs[name],
                                                 function, options)
            self.info = self._read_info()
            warm_up(signatures.get(DEFAULT_SIGNATURE))
            for signature in signatures.values():
                # (an nlpseq export's Classify signature reads a text
                # feature; another SavedModel's may want other features)
                if signature.method_name == CLASSIFY_METHOD and \
                        self.info.get("app"):
                    warm_up(signature, example=True)
        except Exception as error:  # noqa: BLE001 (any damage to the files)
            text = (str(error).strip().splitlines() or [""])[0]
            code = failure(error).code if hasattr(error, "error_code") \
                else "UNKNOWN"
            self.error = (code, f"Failed to load model {self.name} version "
                          f"{self.number} from {self.path}: "
                          f"{type(error).__name__}: {text}"[:1000])
            self.state = END
            LOG.error("%s", self.error[1])
            if self.monitor is not None:
                self.monitor.loaded(self.path, False)
            return False
        self.signature_defs = dict(defs)
        self.signatures = signatures
        self._loaded = loaded
        self.state = AVAILABLE
        if self.monitor is not None:
            self.monitor.loaded(self.path, True)
        LOG.info("Serving model %s version %d from %s (loaded in %.1f s)",
                 self.name, self.number, shown(self.path),
                 time.monotonic() - started)
        return True

    def _read_info(self):
        try:
            info = json.loads((self.path / NLPSEQ_INFO).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(info, dict):
            return {}
        if not isinstance(info.get("demo"), dict):
            # (an export written before the file said it: what the app's
            # class, or another app of its family, says now)
            info["demo"] = registered_demo(info.get("app"),
                                           info.get("family"))
        return info

    def unload(self):
        """UNLOADING: the queued requests finish; then END."""
        self.state = UNLOADING
        for signature in self.signatures.values():
            signature.batcher.close()
        self.signatures = {}
        self._loaded = None
        self.state = END
        if self.monitor is not None:
            self.monitor.unloaded(self.name)
        LOG.info("Unloaded model %s version %d", self.name, self.number)

    def signature(self, name):
        """The signature ``name`` (``""``: ``serving_default``).

        Raises:
            ServingError: INVALID_ARGUMENT, no such signature.
        """
        name = name or DEFAULT_SIGNATURE
        signature = self.signatures.get(name)
        if signature is None:
            raise invalid(f'Serving signature name: "{name}" not found in '
                          "signature def")
        return signature


def warm_up(signature, example=False):
    """Call a text signature (string inputs of shape ``[-1]``) once on one
    row, so that the first request does not wait for TensorFlow's first
    run of the graph; with ``example``, a Classify signature, on one
    serialized ``tf.Example`` holding a text."""
    if signature is None or not signature.inputs or any(
            i.dtype != DT_STRING or i.shape != (-1,)
            for i in signature.inputs.values()):
        return
    row = b"warm up"
    if example:
        from nlpseq.server.classify import TEXT_FEATURE, json_example

        row = json_example({TEXT_FEATURE: "warm up"}).SerializeToString()
    signature._run({name: np.array([row], object)
                    for name in signature.inputs})


def _snapshot(path):
    """The files under ``path`` with their sizes and times."""
    files = []
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                stat = os.stat(os.path.join(folder, name))
            except OSError:
                continue
            files.append((os.path.join(folder, name), stat.st_size,
                          stat.st_mtime_ns))
    return tuple(sorted(files))


# -- the manager ---------------------------------------------------------------

class Model:
    """A configured model and its versions (those ended too, for their
    status)."""

    def __init__(self, config):
        self.config = config
        self.name = config.name
        self.versions = {}
        #: The AVAILABLE versions, and the newest of them (replaced, never
        #: changed in place, so requests read them without a lock).
        self.available = {}
        self.latest = None
        self.missing_logged = False
        self.pending = {}
        #: The versions on disk that the policy wanted at the last look.
        self.wanted = set()
        #: Looked at since its config was (re)applied: its versions load
        #: at once, without waiting for their files to settle.
        self.fresh = True

    def refresh(self):
        self.available = {n: v for n, v in self.versions.items()
                          if v.state == AVAILABLE}
        self.latest = self.available[max(self.available)] \
            if self.available else None


class ModelManager:
    """The models served, a poll thread keeping their versions in step with
    the base paths (and with the model config file, when it is watched),
    and the lookups of requests.

    Args:
        configs: the :class:`ModelConfig` of each model.
        batching: the :class:`~nlpseq.server.batching.BatchingOptions`.
        poll_seconds: how often the base paths are looked at.
        monitor: the :class:`~nlpseq.server.monitoring.Monitor` counting
            loads and batches, or ``None``.
        config_file: ``(path, seconds, check_labels)``: re-read the model
            config file ``path`` every ``seconds`` and apply it when it
            changed (:meth:`reload`), or ``None``.
    """

    def __init__(self, configs, batching=None, poll_seconds=1.0, monitor=None,
                 config_file=None):
        self.models = {c.name: Model(c) for c in configs}
        self.batching = batching or BatchingOptions()
        self.poll_seconds = poll_seconds
        self.monitor = monitor
        self.config_file = config_file
        self._config_text = _read_text(config_file[0]) if config_file \
            else None
        self._config_read = time.monotonic()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reloads = []
        self._reloads_lock = threading.Lock()
        self._thread = None

    def start(self):
        """Start the poll thread (the first look, and loads, at once)."""
        self._thread = threading.Thread(target=self._poll_loop, daemon=True,
                                        name="model poll")
        self._thread.start()
        return self

    def abort(self, error):
        """Answer every request queued or running with ``error``, and take
        no more (a shutdown past its grace period). Returns whether a model
        call is still in flight (it cannot be interrupted)."""
        busy = False
        for model in list(self.models.values()):
            for version in list(model.versions.values()):
                for signature in list(version.signatures.values()):
                    busy = signature.batcher.abort(error) or busy
        return busy

    def stop(self):
        """Stop polling; finish the queued requests of every version."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        for model in self.models.values():
            self._unload_all(model)

    def _unload_all(self, model):
        for version in list(model.versions.values()):
            if version.state == AVAILABLE:
                version.unload()
        model.refresh()

    # -- a new model config --------------------------------------------------------

    def reload(self, configs, timeout=None):
        """Serve ``configs`` (:class:`ModelConfig` s) from now on: models
        added are loaded, models left out unloaded, and the versions and
        labels of the others follow their new policy; returns once the poll
        thread has applied it and looked at every base path once (the new
        versions loaded). Called from any thread; the old config serves
        until then.

        Raises:
            NlpseqError: a base path that is not a folder, a name given
                twice (nothing is changed), or no answer within
                ``timeout`` seconds.
        """
        check_models(configs, "model")
        done = threading.Event()
        with self._reloads_lock:
            self._reloads.append((list(configs), done))
        self._wake.set()
        if not done.wait(timeout):
            raise NlpseqError("the new model config was not applied within "
                              f"{timeout:g} s")

    def _apply(self, configs):
        models = {}
        for config in configs:
            model = self.models.get(config.name)
            if model is None or model.config.base_path != config.base_path:
                if model is not None:
                    self._unload_all(model)
                model = Model(config)
            else:
                model.config = config
                model.fresh = True
            models[config.name] = model
        removed = [m for n, m in self.models.items() if n not in models]
        self.models = models  # (replaced: requests read it without a lock)
        for model in removed:
            self._unload_all(model)
        LOG.info("Applied a new model config: %s%s", ", ".join(models),
                 f" (unloaded {', '.join(m.name for m in removed)})"
                 if removed else "")

    def _watch_config_file(self):
        """Re-read the watched model config file when its time has come;
        apply it when its text changed (a bad one is logged, and the old
        config keeps serving)."""
        path, seconds, check = self.config_file
        if time.monotonic() - self._config_read < seconds:
            return
        self._config_read = time.monotonic()
        text = _read_text(path)
        if text is None or text == self._config_text:
            return
        self._config_text = text
        try:
            configs = read_model_config_file(path, check=check)
            check_models(configs, "model")
        except NlpseqError as error:
            LOG.error("The changed model config file was not applied "
                      "(the previous config keeps serving): %s", error)
            return
        self._apply(configs)

    # -- polling -------------------------------------------------------------------

    def _poll_loop(self):
        started = time.monotonic()
        while not self._stop.is_set():
            with self._reloads_lock:
                reloads, self._reloads = self._reloads, []
            for configs, _ in reloads:
                self._apply(configs)
            if self.config_file is not None:
                self._watch_config_file()
            for model in list(self.models.values()):
                if self._stop.is_set():
                    break
                try:
                    self.poll(model, model.fresh)
                except Exception:  # noqa: BLE001 (keep serving, log it)
                    LOG.exception("polling model %s failed", model.name)
                model.fresh = False
            for _, done in reloads:
                done.set()
            if started is not None and not self.not_ready():
                # (once: /readyz answers 200 from now on)
                LOG.info("Ready: every model is loaded (%.1f s)",
                         time.monotonic() - started)
                started = None
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def poll(self, model, first=False):
        """One look at ``model``'s base path: load, unload."""
        found = self._version_folders(model)
        wanted = model.config.wanted(found)
        model.wanted = wanted
        for number in sorted(wanted, reverse=True):
            if self._stop.is_set():
                return
            version = model.versions.get(number)
            if version is not None and version.state in (AVAILABLE, LOADING):
                continue
            snapshot = _snapshot(found[number])
            if version is not None and version.error and \
                    version.snapshot == snapshot:
                continue  # (failed, and unchanged since)
            settled = first or model.pending.get(number) == snapshot or (
                version is not None and version.snapshot == snapshot)
            if not settled:
                model.pending[number] = snapshot  # (may still be copied)
                continue
            model.pending.pop(number, None)
            version = ServedVersion(model.name, number, found[number],
                                    self.monitor)
            version.snapshot = snapshot
            model.versions[number] = version
            version.load(self.batching)
            model.refresh()
        serving_wanted = any(model.versions[n].state == AVAILABLE
                             for n in wanted if n in model.versions)
        for number, version in sorted(model.versions.items()):
            if version.state != AVAILABLE or number in wanted:
                continue
            if number not in found or serving_wanted:
                version.state = UNLOADING
                model.refresh()
                version.unload()
        model.pending = {n: s for n, s in model.pending.items()
                         if n in found}

    def _version_folders(self, model):
        """``{number: path}`` of the complete version folders."""
        base = model.config.base_path
        try:
            entries = list(os.scandir(base))
        except OSError as error:
            if not model.missing_logged:
                LOG.warning("model %s: cannot read its base path %s (%s); "
                            "looking again every %g s", model.name, base,
                            error.strerror or error, self.poll_seconds)
                model.missing_logged = True
            return {}
        model.missing_logged = False
        found = {}
        for entry in entries:
            if entry.name.isdigit() and entry.is_dir() and (
                    os.path.exists(os.path.join(entry.path, "saved_model.pb"))):
                found[int(entry.name)] = Path(entry.path)
        return found

    # -- lookups ---------------------------------------------------------------

    def model(self, name, request):
        model = self.models.get(name)
        if model is None:
            raise ServingError("NOT_FOUND", "Servable not found for request: "
                               f"{request}")
        return model

    def resolve(self, name, version=None, label=None):
        """The AVAILABLE version a request names: the newest, ``version``,
        or the one ``label`` points at.

        Raises:
            ServingError: NOT_FOUND (unknown model, version not available),
                INVALID_ARGUMENT (unknown label, or both version and label).
        """
        if version is not None and label is not None:
            raise invalid(f"Both model version ({version}) and model version "
                          f"label ({label}) cannot be supplied.")
        if label is not None:
            version = self.label_version(name, label)
        if version is None:
            model = self.model(name, f"Latest({name})")
            if model.latest is None:
                raise ServingError("NOT_FOUND", "Servable not found for "
                                   f"request: Latest({name})")
            return model.latest
        model = self.model(name, f"Specific({name}, {version})")
        found = model.available.get(version)
        if found is None:
            raise ServingError("NOT_FOUND", "Servable not found for request: "
                               f"Specific({name}, {version})")
        return found

    def submit(self, name, version, label, signature_name, arrays=None,
               decode=None, python=False, deadline=None):
        """Queue a prediction: ``(version, signature, future)``. The inputs
        are ``arrays`` (``{name: array}``), or ``decode(signature)`` makes
        them; they are checked against the signature. A request still
        queued at ``deadline`` (``time.monotonic()`` seconds) is answered
        DEADLINE_EXCEEDED unrun.

        Raises:
            ServingError: as :meth:`resolve`, unknown signature, bad inputs,
                a full queue.
        """
        for attempt in (1, 2):
            served = self.resolve(name, version, label)
            signature = served.signature(signature_name)
            inputs = decode(signature) if decode else arrays
            check_inputs(inputs, signature.inputs, signature.name)
            if served.info.get("app") and signature.method_name not in \
                    EXAMPLE_METHODS:  # (an nlpseq export: text inputs)
                check_text(inputs, signature.inputs, signature.name)
            try:
                return served, signature, signature.batcher.submit(
                    inputs, batch_rows(inputs), python, deadline)
            except Closed:
                if attempt == 2:  # (a version unloaded as it was asked for)
                    raise

    def label_version(self, name, label):
        model = self.models.get(name)
        version = model.config.labels.get(label) if model else None
        if version is None:
            raise invalid(f"Unrecognized servable version label: {label}")
        return version

    def status(self, name, version=None, label=None):
        """``[(version, state, error code, error message)]`` of a model's
        versions, newest first (only ``version``'s, or ``label``'s).

        Raises:
            ServingError: NOT_FOUND, INVALID_ARGUMENT (as :meth:`resolve`).
        """
        if version is not None and label is not None:
            raise invalid(f"Both model version ({version}) and model version "
                          f"label ({label}) cannot be supplied.")
        if label is not None:
            version = self.label_version(name, label)
        model = self.models.get(name)
        versions = dict(model.versions) if model else {}
        if version is not None:
            versions = {version: versions[version]} if version in versions \
                else {}
            if not versions:
                raise ServingError("NOT_FOUND", f"Could not find version "
                                   f"{version} of model {name}")
        if not versions:
            raise ServingError("NOT_FOUND", "Could not find any versions of "
                               f"model {name}")
        return [(n, v.state, *(v.error or ("OK", "")))
                for n, v in sorted(versions.items(), reverse=True)]

    def not_ready(self):
        """``{model: why}`` of the models that cannot serve every request
        their config allows yet: no AVAILABLE version, a version of their
        specific policy that is on disk but not AVAILABLE, or a version
        label whose version is not AVAILABLE."""
        why = {}
        for name, model in list(self.models.items()):
            if model.latest is None:
                failed = [v for v in model.versions.values() if v.error]
                why[name] = failed[-1].error[1] if failed else (
                    "loading" if model.versions else
                    f"no version in {model.config.base_path} yet")
                continue
            available = model.available
            for label, number in sorted(model.config.labels.items()):
                if number not in available:
                    why[name] = (f"version label '{label}' names version "
                                 f"{number}, {_state_text(model, number)}")
                    break
            else:
                if model.config.policy[0] == "specific":
                    for number in sorted(model.wanted - set(available)):
                        why[name] = (f"version {number} "
                                     f"{_state_text(model, number)}")
                        break
        return why

    def batchers(self):
        """``[(model, version, signature name, Batcher)]`` being served."""
        return [(model.name, version.number, name, signature.batcher)
                for model in self.models.values()
                for version in list(model.available.values())
                for name, signature in sorted(version.signatures.items())]


def _state_text(model, number):
    """What is the matter with ``model``'s version ``number``, for
    ``/readyz``."""
    version = model.versions.get(number)
    if version is None:
        return "not loaded yet"
    if version.error:
        return f"which failed to load ({version.error[1]})"
    return f"still {version.state}"


def _read_text(path):
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
