"""TensorFlow Serving's gRPC API: ``PredictionService`` (``Predict``,
``GetModelMetadata``) and ``ModelService`` (``GetModelStatus``), with the
``tensorflow_serving.apis`` stubs, so TensorFlow Serving's own clients
work unchanged. ``Classify``, ``Regress``, ``MultiInference`` and
``HandleReloadConfigRequest`` answer UNIMPLEMENTED.

The same :class:`~nlpseq.server.manager.ModelManager` and batchers as the
REST API serve the requests; errors are the gRPC status codes of
:class:`~nlpseq.server.codec.ServingError`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from nlpseq.errors import NlpseqError
from nlpseq.server.codec import ServingError, invalid
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
    log the call."""
    def call(self, request, context):
        started = time.perf_counter()
        code = "OK"
        try:
            return method(self, request, context)
        except ServingError as error:
            code = error.code
            context.abort(grpc.StatusCode[error.code], error.message)
        finally:
            if self.log_requests:
                LOG.info("grpc %s %s %.1f ms", method.__name__, code,
                         (time.perf_counter() - started) * 1000)

    call.__name__ = method.__name__
    return call


def _unimplemented(name):
    def call(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      f"{name} is not served: nlpseq serve answers Predict, "
                      "GetModelMetadata and GetModelStatus")

    return call


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager, log_requests=True):
        self.manager = manager
        self.log_requests = log_requests

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
        served, signature, future = self.manager.submit(
            name, version, label, request.model_spec.signature_name,
            arrays=arrays)
        names = list(request.output_filter) or signature.output_names
        for key in names:
            if key not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {key} "
                    "Outputs expected to be in the set "
                    f"{{{','.join(signature.output_names)}}}.")
        result = future.result()
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

    Classify = _unimplemented("Classify")
    Regress = _unimplemented("Regress")
    MultiInference = _unimplemented("MultiInference")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager, log_requests=True):
        self.manager = manager
        self.log_requests = log_requests

    @_handled
    def GetModelStatus(self, request, context):  # noqa: N802
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        name, version, label = _spec(request.model_spec)
        return status_response(get_model_status_pb2,
                               self.manager.status(name, version, label))

    HandleReloadConfigRequest = _unimplemented("HandleReloadConfigRequest")


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


def add_services(server, manager, log_requests=True):
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, log_requests), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(manager, log_requests), server)
