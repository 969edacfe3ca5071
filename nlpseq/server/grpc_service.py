"""TensorFlow Serving's gRPC API: ``PredictionService`` (``Predict``,
``GetModelMetadata``) and ``ModelService`` (``GetModelStatus``), with the
``tensorflow_serving.apis`` stubs, so TensorFlow Serving's own clients
work unchanged. ``Classify`` and ``Regress`` run the signatures of
TensorFlow Serving's methods (:mod:`~nlpseq.server.classify`);
``MultiInference`` answers UNIMPLEMENTED.

The same :class:`~nlpseq.server.manager.ModelManager` and batchers as the
REST API serve the requests; errors are the gRPC status codes of
:class:`~nlpseq.server.codec.ServingError`. A call's deadline is honoured:
a request still queued when it passes is dropped unrun (DEADLINE_EXCEEDED),
and one whose client cancels is dropped from the queue.
``HandleReloadConfigRequest`` applies a new model config
(:meth:`~nlpseq.server.manager.ModelManager.reload`).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from nlpseq.errors import NlpseqError
from nlpseq.server.batching import expired
from nlpseq.server.codec import CODE_NAMES, ServingError, invalid
from nlpseq.server.rest import signature_def_map, status_response

LOG = logging.getLogger("nlpseq.server")
#: The largest message taken or sent, as TensorFlow Serving's (2 GiB - 1).
MAX_MESSAGE = 2**31 - 1


def _spec(model_spec):
    """``(name, version, label)`` of a ``ModelSpec``."""
    if not model_spec.name:
        raise invalid("ModelSpec has no name specified.")
    choice = model_spec.WhichOneof("version_choice")
    return (model_spec.name,
            model_spec.version.value if choice == "version" else None,
            model_spec.version_label if choice == "version_label" else None)


def _handled(method):
    """Answer a :class:`ServingError` with its status code and message;
    log and count the call."""
    def call(self, request, context):
        started = time.perf_counter()
        code = "OK"
        try:
            return method(self, request, context)
        except ServingError as error:
            code = error.code
            context.abort(grpc.StatusCode[error.code], error.message)
        finally:
            seconds = time.perf_counter() - started
            if self.log_requests:
                LOG.info("grpc %s %s %.1f ms", method.__name__, code,
                         seconds * 1000)
            spec = getattr(request, "model_spec", None)
            if self.monitor is not None and spec is not None and spec.name:
                self.monitor.request(
                    spec.name, getattr(spec, "signature_name", "") or (
                        "serving_default" if method.__name__ in (
                            "Predict", "Classify", "Regress") else ""),
                    code, method.__name__.lower(), "GRPC", seconds)

    call.__name__ = method.__name__
    return call


def _unimplemented(name):
    def call(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      f"{name} is not served: nlpseq serve answers Predict, "
                      "Classify, Regress, GetModelMetadata and "
                      "GetModelStatus")

    return call


def _wait(future, context):
    """The result of a queued request, within the call's deadline; the
    request is dropped from the queue when the client cancels the call.

    Raises:
        ServingError: DEADLINE_EXCEEDED, CANCELLED, or the model's error.
    """
    context.add_callback(future.cancel)  # (the call ended: drop it)
    try:
        return future.result(timeout=context.time_remaining())
    except FutureTimeout:
        future.cancel()
        raise expired(None) from None
    except CancelledError:
        raise ServingError("CANCELLED", "the client cancelled the call"
                           ) from None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager, log_requests=True, monitor=None):
        self.manager = manager
        self.log_requests = log_requests
        self.monitor = monitor

    @_handled
    def Predict(self, request, context):  # noqa: N802 (the API's name)
        import tensorflow as tf

        name, version, label = _spec(request.model_spec)
        arrays = {}
        for key, proto in request.inputs.items():
            try:
                arrays[key] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as error:
                raise invalid(f"input '{key}': {error}") from None
        remaining = context.time_remaining()
        served, signature, future = self.manager.submit(
            name, version, label, request.model_spec.signature_name,
            arrays=arrays, deadline=None if remaining is None
            else time.monotonic() + remaining)
        names = list(request.output_filter) or signature.output_names
        for key in names:
            if key not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {key} "
                    "Outputs expected to be in the set "
                    f"{{{','.join(signature.output_names)}}}.")
        result = _wait(future, context)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = name
        response.model_spec.version.value = served.number
        response.model_spec.signature_name = signature.name
        for key in names:
            response.outputs[key].CopyFrom(
                tf.make_tensor_proto(result.array(key)))
        return response

    @_handled
    def GetModelMetadata(self, request, context):  # noqa: N802
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one "
                          "metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise invalid(f"Metadata field {field} is not supported")
        name, version, label = _spec(request.model_spec)
        served = self.manager.resolve(name, version, label)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = served.number
        response.metadata["signature_def"].Pack(signature_def_map(served))
        return response

    @_handled
    def Classify(self, request, context):  # noqa: N802
        return self._examples("classify", request, context)

    @_handled
    def Regress(self, request, context):  # noqa: N802
        return self._examples("regress", request, context)

    def _examples(self, verb, request, context):
        """A ``Classify`` or ``Regress`` (``verb``) call
        (:mod:`~nlpseq.server.classify`)."""
        from nlpseq.server import classify

        name, version, label = _spec(request.model_spec)
        remaining = context.time_remaining()
        served, signature_name, rows, future = classify.submit(
            self.manager, name, version, label,
            request.model_spec.signature_name, verb,
            lambda: classify.input_examples(request.input),
            None if remaining is None else time.monotonic() + remaining)
        result = _wait(future, context)
        return classify.grpc_response(
            verb, name, served.number, signature_name,
            {key: result.array(key) for key in result.arrays}, rows)

    MultiInference = _unimplemented("MultiInference")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager, log_requests=True, monitor=None,
                 check_labels=True):
        self.manager = manager
        self.log_requests = log_requests
        self.monitor = monitor
        self.check_labels = check_labels

    @_handled
    def GetModelStatus(self, request, context):  # noqa: N802
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        name, version, label = _spec(request.model_spec)
        return status_response(get_model_status_pb2,
                               self.manager.status(name, version, label))

    @_handled
    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        """Serve the request's ``ModelServerConfig`` from now on; a config
        that cannot be served is refused (the old one serves on), its
        reason in the response's status, as TensorFlow Serving answers."""
        from tensorflow_serving.apis import model_management_pb2

        from nlpseq.server.config_files import models_of

        response = model_management_pb2.ReloadConfigResponse()
        try:
            configs = models_of(request.config, "the reload request's config",
                                ".", self.check_labels)
            self.manager.reload(configs, timeout=context.time_remaining())
        except NlpseqError as error:
            response.status.error_code = CODE_NAMES.index("INVALID_ARGUMENT")
            response.status.error_message = str(error)
            LOG.error("A new model config was refused (the previous config "
                      "keeps serving): %s", error)
        return response


def bind_server(host, port, workers=16):
    """A gRPC server bound to ``host:port`` (not started yet).

    Raises:
        NlpseqError: the port cannot be bound (in use...).
    """
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                 ("grpc.max_send_message_length", MAX_MESSAGE),
                 ("grpc.so_reuseport", 0)])
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise NlpseqError(f"--grpc-port {port}: cannot listen on {address} "
                          "(the port is in use, or the host is not this "
                          "machine's)")
    return server


def add_services(server, manager, log_requests=True, monitor=None,
                 check_labels=True):
    """Serve ``manager``'s models on ``server``: ``PredictionService`` and
    ``ModelService`` (whose reloads check the labels with
    ``check_labels``)."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, log_requests, monitor), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(manager, log_requests, monitor, check_labels), server)
