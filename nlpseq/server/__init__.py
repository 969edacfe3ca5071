"""``nlpseq serve``: a model server for exported SavedModels that speaks
TensorFlow Serving's REST and gRPC APIs, with dynamic batching.

Modules: :mod:`~nlpseq.server.config_files` (TensorFlow Serving's model
config, batching parameters and monitoring files),
:mod:`~nlpseq.server.manager` (the models, their versions and the poll
thread), :mod:`~nlpseq.server.batching` (one queue and worker per
signature), :mod:`~nlpseq.server.monitoring` (the Prometheus metrics),
:mod:`~nlpseq.server.codec` (JSON and errors as TensorFlow Serving has
them), :mod:`~nlpseq.server.rest` (the REST API on Starlette and uvicorn)
and :mod:`~nlpseq.server.grpc_service` (the gRPC API).

:func:`serve` runs them until SIGTERM or SIGINT, then shuts down
gracefully: the ports stop taking connections, the requests in flight are
answered, and it returns; what has not finished within the grace period
(``--shutdown-grace-seconds``) is answered UNAVAILABLE and the process
ends.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

from nlpseq.errors import NlpseqError
from nlpseq.server.batching import BatchingOptions
from nlpseq.server.codec import ServingError
from nlpseq.server.manager import (
    ModelConfig,
    ModelManager,
    parse_model_flag,
    read_model_config_file,
)

__all__ = ["BatchingOptions", "ModelConfig", "ModelManager", "ServingError",
           "parse_model_flag", "read_model_config_file", "serve"]

LOG = logging.getLogger("nlpseq.server")
#: Seconds the requests in flight get to finish at a shutdown (the
#: default of ``--shutdown-grace-seconds``).
GRACE_SECONDS = 5.0
#: Seconds the APIs get to send the UNAVAILABLE answers of a shutdown past
#: its grace period, before the process ends.
ANSWER_SECONDS = 2.0


def bind_rest(host, port):
    """The REST port's listening socket, bound now so that a port in use is
    one clear error before anything loads.

    Raises:
        NlpseqError: the address cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise NlpseqError(f"--host {host}: unknown host ({error.strerror})"
                          ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise NlpseqError(f"--rest-port {port}: cannot listen on {host}:"
                          f"{port} ({error.strerror or error})") from None
    return sock


def give_up(manager, grace):
    """The end of a shutdown's grace period: the requests still queued or
    running are answered UNAVAILABLE; the process ends once the APIs have
    had :data:`ANSWER_SECONDS` to send those answers."""
    busy = manager.abort(ServingError(
        "UNAVAILABLE", f"the server is shutting down: the request did not "
        f"finish within the {grace:g} s grace period; retry it elsewhere"))
    LOG.warning("Shutdown: the %g s grace period is over; the requests "
                "still queued or running are answered UNAVAILABLE%s", grace,
                " (a model call still running is abandoned)" if busy else "")
    timer = threading.Timer(ANSWER_SECONDS, end_process)
    timer.daemon = True
    timer.start()


def end_process():
    """End the process now, exit status 0 (a model call that cannot be
    interrupted would keep it alive)."""
    LOG.info("Stopped")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def serve(models, host="127.0.0.1", rest_port=8501, grpc_port=8500,
          poll_seconds=1.0, batching=None, max_body_bytes=8 << 20,
          log_requests=True, shutdown_grace_seconds=GRACE_SECONDS,
          timeout_ms=30000, metrics_path=None, config_file=None,
          check_labels=True):
    """Serve ``models`` (:class:`ModelConfig` s) until SIGTERM or SIGINT.

    Args:
        host: the address both ports listen on.
        rest_port: the REST API's port.
        grpc_port: the gRPC API's port (0: no gRPC).
        poll_seconds: how often the base paths are looked at for versions.
        batching: the :class:`BatchingOptions`.
        max_body_bytes: the largest REST request body taken.
        log_requests: log a line per request (logger ``nlpseq.server``).
        shutdown_grace_seconds: at SIGTERM or SIGINT, how long the requests
            queued or running get to finish; then they are answered
            UNAVAILABLE and the process ends (exit status 0), a model call
            that is still running (a long generation) abandoned.
        timeout_ms: a REST request's time from its arrival; past it, one
            still queued is answered DEADLINE_EXCEEDED (0: no limit).
        metrics_path: serve the Prometheus metrics there (``None``: not
            served).
        config_file: ``(path, seconds)``: re-read the model config file
            every ``seconds`` and apply its changes.
        check_labels: refuse a reloaded config whose version labels name
            versions that cannot be served.

    Raises:
        NlpseqError: no models, a port that cannot be bound.
    """
    if not models:
        raise NlpseqError("no models to serve: give --model NAME=BASE_PATH "
                          "or --model-config-file FILE")
    sock = bind_rest(host, rest_port)
    grpc_server = None
    try:
        from nlpseq.runtime import import_tensorflow

        import_tensorflow()
        if grpc_port:
            from nlpseq.server.grpc_service import add_services, bind_server

            grpc_server = bind_server(host, grpc_port)
        import uvicorn

        from nlpseq.server.monitoring import Monitor
        from nlpseq.server.rest import RestApp

        # (counted only when served: no per-request work otherwise)
        monitor = Monitor() if metrics_path else None
        manager = ModelManager(
            models, batching, poll_seconds, monitor,
            config_file and (*config_file, check_labels))
        if monitor is not None:
            monitor.manager = manager
        if grpc_server is not None:
            add_services(grpc_server, manager, log_requests, monitor,
                         check_labels)
        stopping = []
        grace = shutdown_grace_seconds
        timer = threading.Timer(grace, give_up, (manager, grace))
        timer.daemon = True

        def stop(signum=None, frame=None):
            # (uvicorn takes the signals while it serves, and raises them
            # again once it has stopped: they end up here too, harmless)
            if not stopping:
                timer.start()
                if grpc_server is not None:
                    # no new calls; those in flight finish
                    stopping.append(grpc_server.stop(grace + ANSWER_SECONDS))
            stopping.append(signum)
            server.should_exit = True

        class Server(uvicorn.Server):
            def handle_exit(self, signum, frame):
                super().handle_exit(signum, frame)
                stop(signum)

        server = Server(uvicorn.Config(
            RestApp(manager, max_body_bytes, log_requests, timeout_ms,
                    monitor, metrics_path), loop="uvloop",
            http="httptools", lifespan="off", access_log=False,
            log_config=None,
            timeout_graceful_shutdown=grace + ANSWER_SECONDS))

        previous = {s: signal.signal(s, stop)
                    for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            port = sock.getsockname()[1]
            LOG.info("Loading %s: REST on http://%s:%d%s; GET /readyz "
                     "answers 200 once every model is loaded", ", ".join(
                         m.name for m in models), host, port,
                     f", gRPC on {host}:{grpc_port}" if grpc_server else "")
            manager.start()
            if grpc_server is not None:
                grpc_server.start()
            if not stopping:
                server.run(sockets=[sock])
            LOG.info("Shutting down: finishing the requests in flight")
            stop()
            if grpc_server is not None:
                stopping[0].wait()
                grpc_server = None
            manager.stop()
            timer.cancel()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    finally:
        sock.close()
        if grpc_server is not None:
            grpc_server.stop(None)
