"""Helpers of the ``nlpseq serve`` tests: tiny exported models of each app,
and a server subprocess on free localhost ports.

The ``exported_models`` and ``serving`` session fixtures of ``conftest.py``
are built from these.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The apps the server tests export, one model of each family but topic's.
APPS = ("sentiment", "ner", "next-word", "translation")
#: Settings of the tiny models.
TINY = {"units": 4, "embedding_dim": 4, "seed": 2}
ROOT = Path(__file__).resolve().parent.parent


def tiny_task(app, seed=2):
    """A tiny task of ``app``: its preprocessor fitted on the app's built-in
    validation sample (real vocabularies and labels), its weights those
    Keras initializes from ``seed`` (no training: the server is what is
    tested, and any weights are a model to serve)."""
    import keras

    from nlpseq.registry import APPS as REGISTRY

    cls = REGISTRY.get(app)
    config = cls.effective_config(dict(TINY, seed=seed))
    task = cls(config)
    data = task.read_data(str(cls.default_valid), "train")
    task.preprocessor = cls.preprocessor_class.fit(data, config)
    keras.utils.set_random_seed(seed)
    task.model = task.build_model()
    return task


@dataclass
class ExportedModels:
    """Tiny models exported to ``<root>/<app>/1``.

    Attributes:
        root: the folder holding one base path per app.
        tasks: ``{app: task}``, the Python API's view of each export.
        base_paths: ``{app: Path}``, each with a version ``1``.
    """

    root: Path
    tasks: dict = field(default_factory=dict)
    base_paths: dict = field(default_factory=dict)


def export_models(root, apps=APPS):
    """Export a :func:`tiny_task` of each of ``apps`` as version 1 under
    ``root``, unless a process of the same test session (a pytest-xdist
    worker) exported them there already: the first one exports, under a
    lock, and the others build the same tasks (the same seed) and read its
    exports, which no test changes."""
    import fcntl

    models = ExportedModels(Path(root))
    models.root.mkdir(parents=True, exist_ok=True)
    done = models.root / "exported"
    with open(models.root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        export = not done.exists()
        for app in apps:
            task = tiny_task(app)
            if export:
                task.export(models.root / app, version=1)
            models.tasks[app] = task
            models.base_paths[app] = models.root / app
        done.touch()
    return models


def free_port():
    """A TCP port free on localhost now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m nlpseq serve ARGS`` on free localhost ports.

    Attributes:
        rest_url: ``http://127.0.0.1:PORT``.
        grpc_target: ``127.0.0.1:PORT`` (``None`` with ``grpc=False``).
        base_paths: ``{model name: base path}`` given with ``--model``.
        log_path: the file collecting the server's stdout and stderr.
    """

    def __init__(self, models=None, args=(), grpc=True, log_dir=None,
                 ports=None):
        self.base_paths = {name: Path(path)
                           for name, path in (models or {}).items()}
        self.rest_port, self.grpc_port = ports or (
            free_port(), free_port() if grpc else 0)
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}" if grpc else None
        command = [sys.executable, "-m", "nlpseq", "serve",
                   "--rest-port", str(self.rest_port),
                   "--grpc-port", str(self.grpc_port),
                   "--poll-seconds", "0.2"]
        for name, path in self.base_paths.items():
            command += ["--model", f"{name}={path}"]
        command += [str(a) for a in args]
        log_dir = Path(log_dir) if log_dir else Path.cwd()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"serve-{self.rest_port}.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join(
                       [str(ROOT)] + [p for p in [os.environ.get(
                           "PYTHONPATH")] if p]))
        self.process = subprocess.Popen(command, stdout=self._log,
                                        stderr=subprocess.STDOUT, env=env,
                                        cwd=str(ROOT))

    def log(self):
        """What the server wrote so far (stdout and stderr)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout=120.0):
        """Wait until ``/readyz`` answers 200 (every model loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nlpseq serve exited with status "
                                   f"{self.process.returncode}:\n"
                                   f"{self.log()}")
            try:
                status, _ = self.request("GET", "/readyz", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"nlpseq serve not ready after {timeout} s:\n"
                           f"{self.log()}")

    def wait_for(self, predicate, timeout=60.0, interval=0.1):
        """Poll ``predicate()`` until it is true; its last value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(interval)

    def request(self, method, path, body=None, timeout=30.0, headers=None,
                raw=False):
        """``(status, parsed JSON or text)`` of one HTTP request (with
        ``raw``, the text); ``body``: a dict (sent as JSON), bytes or a str
        (sent as is)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.rest_port,
                                                timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            connection.request(method, path, body=body,
                               headers=headers or {})
            response = connection.getresponse()
            data = response.read().decode("utf-8")
            if raw:
                return response.status, data
            try:
                return response.status, json.loads(data)
            except ValueError:
                return response.status, data
        finally:
            connection.close()

    def post(self, path, body, **options):
        return self.request("POST", path, body, **options)

    def get(self, path, **options):
        return self.request("GET", path, **options)

    def predict(self, model, body, suffix=""):
        """``(status, JSON)`` of ``POST /v1/models/<model><suffix>:predict``."""
        return self.post(f"/v1/models/{model}{suffix}:predict", body)

    def terminate(self):
        """Send SIGTERM (a graceful shutdown)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout=30.0):
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit
        status."""
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_server(models=None, args=(), grpc=True, log_dir=None,
                 timeout=120.0, ports=None):
    """A :class:`ServerProcess`, ready (every model loaded); ``ports``:
    ``(REST, gRPC)`` chosen by the caller (else free ones)."""
    server = ServerProcess(models, args, grpc=grpc, log_dir=log_dir,
                           ports=ports)
    try:
        return server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
