"""TensorFlow Serving's REST API (and nlpseq's few extensions), on
Starlette.

The TensorFlow Serving paths (``/v1/...``) are answered by a lean ASGI
handler of their own, the rest (health, readiness, the demo page, the
``/nlpseq/v1`` extensions) by a Starlette app:

- ``POST /v1/models/NAME[/versions/N|/labels/L]:predict``, and
  ``:classify`` and ``:regress`` (:mod:`~nlpseq.server.classify`)
- ``GET /v1/models/NAME[/versions/N|/labels/L][/metadata]``
- ``GET /healthz``, ``GET /readyz``
- ``GET /monitoring/prometheus/metrics`` (or the monitoring config's path),
  when metrics are enabled (:mod:`~nlpseq.server.monitoring`)
- ``GET /nlpseq/v1/models`` (the served models, their app and signatures,
  for the demo page), ``GET /nlpseq/v1/batching`` (each batcher's counts)
- ``GET /`` and ``GET /static/FILE``: the demo page.

Errors are ``{"error": "..."}`` with TensorFlow Serving's status codes. A
body over ``max_body_bytes`` is refused (INVALID_ARGUMENT, 400: TensorFlow
Serving itself has no such limit). A request has ``timeout_ms``
(``--rest-api-timeout-in-ms``, TensorFlow Serving's 30 s by default) from
its arrival: one still queued then is answered DEADLINE_EXCEEDED (504), and
one whose client disconnects while it waits is dropped from the queue and
answered not at all. Each request is logged on the ``nlpseq.server``
logger: client, method, path, status, milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

from nlpseq.server.batching import expired
from nlpseq.server.codec import (
    DEFAULT_SIGNATURE,
    ServingError,
    check_row_outputs,
    decode_predict,
    dumps,
    invalid,
    parse_json,
    request_signature_name,
)

LOG = logging.getLogger("nlpseq.server")
STATIC = Path(__file__).resolve().parent / "static"

PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
    r":(classify|regress|predict)", re.IGNORECASE)
STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?"
    r"(?:/(metadata))?", re.IGNORECASE)
#: Bodies from this size on are parsed off the event loop.
LARGE_BODY = 1 << 20
#: How much of a body over the limit is read (and dropped) before the
#: answer, which then closes the connection.
DRAINED = 64 << 20
JSON_HEADERS = [(b"content-type", b"application/json")]


def _version(text):
    return None if text is None else int(text)


class TooLarge(ServingError):
    """A request body over the limit."""


class Gone(ServingError):
    """The client disconnected before its answer: none is sent."""


async def _disconnected(receive):
    """Return once the client has disconnected (the body is read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _retrieved(future):
    """Mark an abandoned future's outcome as seen (no warning at exit)."""
    if not future.cancelled():
        future.exception()


class RestApp:
    """The ASGI app of ``nlpseq serve``'s REST port.

    Args:
        manager: the :class:`~nlpseq.server.manager.ModelManager`.
        max_body_bytes: the largest request body taken.
        log_requests: log a line per request.
        timeout_ms: each request's time from its arrival (0: none).
        monitor: the :class:`~nlpseq.server.monitoring.Monitor` counting
            the requests, or ``None``.
        metrics_path: where the monitor's metrics are served (``None``:
            not served).
    """

    def __init__(self, manager, max_body_bytes=8 << 20, log_requests=True,
                 timeout_ms=30000, monitor=None, metrics_path=None):
        self.manager = manager
        self.max_body_bytes = max_body_bytes
        self.log_requests = log_requests
        self.timeout = timeout_ms / 1000 if timeout_ms else None
        self.monitor = monitor
        self.metrics_path = metrics_path
        self.site = self._site()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.site(scope, receive, send)
            return
        if not self.log_requests:
            if scope["path"].startswith("/v1/"):
                await self.serving_api(scope, receive, send)
            else:
                await self.site(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def logged_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if scope["path"].startswith("/v1/"):
                await self.serving_api(scope, receive, logged_send)
            else:
                await self.site(scope, receive, logged_send)
        finally:
            client = scope.get("client") or ("-", 0)
            LOG.info("%s %s %s %d %.1f ms", client[0], scope["method"],
                     scope["path"], status[0],
                     (time.perf_counter() - started) * 1000)

    # -- TensorFlow Serving's API ----------------------------------------------

    async def serving_api(self, scope, receive, send):
        method, path = scope["method"], scope["path"]
        started = time.monotonic()
        deadline = started + self.timeout if self.timeout else None
        headers = JSON_HEADERS
        request = {"model": None, "signature": "", "api": "", "code": "OK"}
        try:
            if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
                name, version, label, verb = match.groups()
                request.update(model=name, api=verb.lower())
                body = await self._body(scope, receive)
                if verb.lower() != "predict":
                    status, text = 200, await self._classify(
                        verb.lower(), name, _version(version), label, body,
                        receive, deadline, request)
                else:
                    status, text = 200, await self._predict(
                        name, _version(version), label, body, receive,
                        deadline, request)
            elif method == "GET" and (match := STATUS_PATH.fullmatch(path)):
                name, version, label, metadata = match.groups()
                if not name:
                    raise invalid("Missing model name in request.")
                status, text = 200, dumps(
                    self._metadata(name, _version(version), label) if metadata
                    else self._status(name, _version(version), label))
            else:
                raise invalid(f"Malformed request: {method} {path}")
        except Gone as error:
            self._count(request, error.code, started)
            return
        except ServingError as error:
            request["code"] = error.code
            status, text = error.http_status, error.json().encode("utf-8")
            if isinstance(error, TooLarge):
                headers = JSON_HEADERS + [(b"connection", b"close")]
        self._count(request, request["code"], started)
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + [
                        (b"content-length", str(len(text)).encode())]})
        await send({"type": "http.response.body", "body": text})

    def _count(self, request, code, started):
        if self.monitor is not None and request["model"]:
            self.monitor.request(request["model"], request["signature"],
                                 code, request["api"], "REST",
                                 time.monotonic() - started)

    async def _result(self, future, receive, deadline):
        """The request's :class:`~nlpseq.server.batching.Result`, once its
        batch has run.

        Raises:
            Gone: the client disconnected first (the request is dropped
                from the queue if it has not run yet).
            ServingError: DEADLINE_EXCEEDED at ``deadline``, or the
                model call's error.
        """
        waiting = asyncio.wrap_future(future)
        gone = asyncio.ensure_future(_disconnected(receive))
        timeout = None if deadline is None else max(
            0.0, deadline - time.monotonic())
        try:
            done, _ = await asyncio.wait(
                {waiting, gone}, timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if waiting in done:
            return waiting.result()
        future.cancel()  # (dropped from the queue unless already running)
        waiting.add_done_callback(_retrieved)
        if gone in done:
            raise Gone("CANCELLED", "the client disconnected")
        raise expired(deadline)

    async def _body(self, scope, receive):
        """The request body; one over the limit is read on (up to
        :data:`DRAINED` bytes more) but not kept, so that the client reads
        the answer, then refused."""
        limit = self.max_body_bytes
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ServingError("CANCELLED", "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                chunks = None
                if not more or size > limit + DRAINED:
                    raise TooLarge(
                        "INVALID_ARGUMENT", f"the request body of "
                        f"{'at least ' if more else ''}{size} bytes is "
                        "larger than the server takes (--max-body-bytes "
                        f"{limit})")
            else:
                chunks.append(chunk)
            if not more:
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _predict(self, name, version, label, body, receive, deadline,
                       request):
        if len(body) >= LARGE_BODY:
            doc = await asyncio.to_thread(parse_json, body)
        else:
            doc = parse_json(body)
        signature_name = request_signature_name(doc)
        request["signature"] = signature_name or DEFAULT_SIGNATURE
        row_format = []

        def decode(signature):
            arrays, row = decode_predict(doc, signature.inputs)
            row_format.append(row)
            return arrays

        _, signature, future = self.manager.submit(
            name, version, label, signature_name, decode=decode, python=True,
            deadline=deadline)
        result = await self._result(future, receive, deadline)
        names = signature.output_names
        if row_format[-1]:
            if result.alone:
                check_row_outputs(result.arrays)
            if len(names) == 1:
                return dumps({"predictions": result.values(names[0])})
            columns = [result.values(n) for n in names]
            return dumps({"predictions": [dict(zip(names, values))
                                          for values in zip(*columns)]})
        if len(names) == 1:
            return dumps({"outputs": result.values(names[0])})
        return dumps({"outputs": {n: result.values(n) for n in names}})

    async def _classify(self, verb, name, version, label, body, receive,
                        deadline, request):
        """A ``:classify`` or ``:regress`` (``verb``) request
        (:mod:`~nlpseq.server.classify`)."""
        from nlpseq.server import classify

        def queue():
            doc = parse_json(body)
            signature_name = request_signature_name(doc)
            request["signature"] = signature_name or DEFAULT_SIGNATURE
            return classify.submit(
                self.manager, name, version, label, signature_name, verb,
                classify.json_examples(doc), deadline)

        if len(body) >= LARGE_BODY:  # (the examples too, off the loop)
            _, _, rows, future = await asyncio.to_thread(queue)
        else:
            _, _, rows, future = queue()
        result = await self._result(future, receive, deadline)
        return dumps(classify.json_results(verb, {
            key: result.array(key) for key in result.arrays}, rows))

    def _status(self, name, version, label):
        from google.protobuf.json_format import MessageToDict
        from tensorflow_serving.apis import get_model_status_pb2

        return MessageToDict(status_response(
            get_model_status_pb2, self.manager.status(name, version, label)),
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=True)

    def _metadata(self, name, version, label):
        from google.protobuf.json_format import MessageToDict

        served = self.manager.resolve(name, version, label)
        options = {"always_print_fields_with_no_presence": True,
                   "preserving_proto_field_name": True}
        return {"model_spec": {"name": name, "signature_name": "",
                               "version": str(served.number)},
                "metadata": {"signature_def": MessageToDict(
                    signature_def_map(served), **options)}}

    # -- the rest of the site ----------------------------------------------------

    def _site(self):
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles

        async def healthz(request):
            return JSONResponse({"status": "alive"})

        async def readyz(request):
            waiting = self.manager.not_ready()
            if waiting:
                return JSONResponse({"status": "loading", "models": waiting},
                                    status_code=503)
            return JSONResponse({"status": "ready"})

        async def models(request):
            return JSONResponse({"models": self.models()})

        async def batching(request):
            return JSONResponse({"batchers": [
                {"model": model, "version": str(version),
                 "signature": name, **batcher.stats()}
                for model, version, name, batcher in
                self.manager.batchers()]})

        async def metrics(request):
            body, kind = await asyncio.to_thread(self.monitor.exposition)
            return Response(body, headers={"content-type": kind})

        async def index(request):
            page = STATIC / "index.html"
            if not page.is_file():
                raise HTTPException(404, "the demo page is not installed")
            return FileResponse(page)

        async def error(request, exc):
            return JSONResponse({"error": f"{exc.detail}: {request.method} "
                                          f"{request.url.path}"},
                                status_code=exc.status_code)

        served = [Route(self.metrics_path, metrics)] if (
            self.metrics_path and self.monitor is not None) else []
        return Starlette(routes=served + [
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/nlpseq/v1/models", models),
            Route("/nlpseq/v1/batching", batching),
            Route("/", index),
            Mount("/static", StaticFiles(directory=STATIC, check_dir=False)),
        ], exception_handlers={HTTPException: error})

    def models(self):
        """The newest available version of each model, for the demo
        page."""
        found = []
        for name, model in sorted(self.manager.models.items()):
            served = model.latest
            if served is None:
                continue
            found.append({
                "name": name, "version": str(served.number),
                "app": served.info.get("app"),
                "family": served.info.get("family"),
                "panel": served.info.get("demo", {}).get("panel"),
                "example": served.info.get("demo", {}).get("example"),
                "signatures": {k: s.describe() for k, s in
                               sorted(served.signatures.items())}})
        return found


def status_response(module, statuses):
    """A ``GetModelStatusResponse`` of :meth:`ModelManager.status`'s
    list."""
    response = module.GetModelStatusResponse()
    for number, state, code, message in statuses:
        entry = response.model_version_status.add()
        entry.version = number
        entry.state = module.ModelVersionStatus.State.Value(state)
        entry.status.error_code = _code_number(code)
        entry.status.error_message = message
    return response


def _code_number(code):
    from nlpseq.server.codec import CODE_NAMES

    return CODE_NAMES.index(code)


def signature_def_map(served):
    """A version's SignatureDefs as a ``SignatureDefMap``."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    result = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in served.signature_defs.items():
        result.signature_def[name].CopyFrom(signature)
    return result
