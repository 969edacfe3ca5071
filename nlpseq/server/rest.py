"""TensorFlow Serving's REST API (and nlpseq's few extensions), on
Starlette.

The TensorFlow Serving paths (``/v1/...``) are answered by a lean ASGI
handler of their own, the rest (health, readiness, the demo page, the
``/nlpseq/v1`` extensions) by a Starlette app:

- ``POST /v1/models/NAME[/versions/N|/labels/L]:predict``
- ``GET /v1/models/NAME[/versions/N|/labels/L][/metadata]``
- ``GET /healthz``, ``GET /readyz``
- ``GET /nlpseq/v1/models`` (the served models, their app and signatures,
  for the demo page), ``GET /nlpseq/v1/batching`` (each batcher's counts)
- ``GET /`` and ``GET /static/FILE``: the demo page.

Errors are ``{"error": "..."}`` with TensorFlow Serving's status codes. A
body over ``max_body_bytes`` is refused (INVALID_ARGUMENT, 400: TensorFlow
Serving itself has no such limit). Each request is logged on the
``nlpseq.server`` logger: client, method, path, status, milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

from nlpseq.server.codec import (
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


class RestApp:
    """The ASGI app of ``nlpseq serve``'s REST port.

    Args:
        manager: the :class:`~nlpseq.server.manager.ModelManager`.
        max_body_bytes: the largest request body taken.
        log_requests: log a line per request.
    """

    def __init__(self, manager, max_body_bytes=8 << 20, log_requests=True):
        self.manager = manager
        self.max_body_bytes = max_body_bytes
        self.log_requests = log_requests
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
        headers = JSON_HEADERS
        try:
            if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
                name, version, label, verb = match.groups()
                body = await self._body(scope, receive)
                if verb.lower() != "predict":
                    raise ServingError(
                        "UNIMPLEMENTED", f"{verb.lower()} is not served: "
                        "nlpseq serve answers the predict API")
                status, text = 200, await self._predict(
                    name, _version(version), label, body)
            elif method == "GET" and (match := STATUS_PATH.fullmatch(path)):
                name, version, label, metadata = match.groups()
                if not name:
                    raise invalid("Missing model name in request.")
                status, text = 200, dumps(
                    self._metadata(name, _version(version), label) if metadata
                    else self._status(name, _version(version), label))
            else:
                raise invalid(f"Malformed request: {method} {path}")
        except ServingError as error:
            status, text = error.http_status, error.json().encode("utf-8")
            if isinstance(error, TooLarge):
                headers = JSON_HEADERS + [(b"connection", b"close")]
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + [
                        (b"content-length", str(len(text)).encode())]})
        await send({"type": "http.response.body", "body": text})

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

    async def _predict(self, name, version, label, body):
        if len(body) >= LARGE_BODY:
            doc = await asyncio.to_thread(parse_json, body)
        else:
            doc = parse_json(body)
        signature_name = request_signature_name(doc)
        row_format = []

        def decode(signature):
            arrays, row = decode_predict(doc, signature.inputs)
            row_format.append(row)
            return arrays

        _, signature, future = self.manager.submit(
            name, version, label, signature_name, decode=decode, python=True)
        result = await asyncio.wrap_future(future)
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
        from starlette.responses import FileResponse, JSONResponse
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

        async def index(request):
            page = STATIC / "index.html"
            if not page.is_file():
                raise HTTPException(404, "the demo page is not installed")
            return FileResponse(page)

        async def error(request, exc):
            return JSONResponse({"error": f"{exc.detail}: {request.method} "
                                          f"{request.url.path}"},
                                status_code=exc.status_code)

        return Starlette(routes=[
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
