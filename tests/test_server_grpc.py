"""``nlpseq serve`` over gRPC, with TensorFlow Serving's own client stubs
(``tensorflow_serving.apis``): Predict, GetModelMetadata, GetModelStatus
and their error codes."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

TEXTS = ["The visual effects are never uninspired, and the film is "
         "magnificent overall.", "It is slick and shiny, yet nobody is home."]


@pytest.fixture(scope="module")
def channel(serving):
    with grpc.insecure_channel(serving.grpc_target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield channel


@pytest.fixture(scope="module")
def prediction(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(model, signature="", version=None, label=None,
                    **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_predict_gives_the_rest_apis_outputs(prediction, serving,
                                             exported_models):
    response = prediction.Predict(predict_request("sentiment", text=TEXTS),
                                  timeout=30)
    assert response.model_spec.name == "sentiment"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    assert set(outputs) == {"label", "probabilities", "class_names"}
    records = exported_models.tasks["sentiment"].predict(TEXTS)
    assert [b.decode() for b in outputs["label"]] == [r["label"]
                                                      for r in records]
    np.testing.assert_allclose(outputs["probabilities"], [
        list(r["probabilities"].values()) for r in records], atol=2e-6)
    assert outputs["probabilities"].dtype == np.float32
    status, body = serving.predict("sentiment", {"inputs": TEXTS})
    np.testing.assert_allclose(outputs["probabilities"],
                               body["outputs"]["probabilities"], atol=1e-7)


def test_predict_a_named_signature_a_version_and_an_output_filter(
        prediction, exported_models):
    tokens = np.array([["EU", "rejects", "German", "call"]], object)
    response = prediction.Predict(predict_request(
        "ner", "tokens", version=1, tokens=tokens), timeout=30)
    assert response.model_spec.signature_name == "tokens"
    tags = tf.make_ndarray(response.outputs["tags"])
    assert tags.shape == (1, 4)
    loaded = tf.saved_model.load(str(exported_models.base_paths["ner"] / "1"))
    expected = loaded.signatures["tokens"](tokens=tf.constant(tokens))
    assert tags.tolist() == expected["tags"].numpy().tolist()
    request = predict_request("ner", text=["Peter Blackburn"])
    request.output_filter.append("entity_count")
    response = prediction.Predict(request, timeout=30)
    assert list(response.outputs) == ["entity_count"]
    assert tf.make_ndarray(response.outputs["entity_count"]).dtype == np.int32


def test_metadata_packs_the_signature_def_map(prediction, exported_models):
    from tensorflow.core.protobuf import saved_model_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "translation"
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request, timeout=30)
    assert response.model_spec.name == "translation"
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((exported_models.base_paths["translation"] / "1" /
                           "saved_model.pb").read_bytes())
    expected = saved.meta_graphs[0].signature_def
    assert dict(signatures.signature_def) == dict(expected)
    assert signatures.signature_def["serving_default"].inputs[
        "text"].dtype == tf.string.as_datatype_enum


def test_status_of_a_model_and_a_version(channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "next-word"
    response = stub.GetModelStatus(request, timeout=30)
    (status,) = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""
    request.model_spec.version.value = 4
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModelStatus(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Could not find version 4 of model next-word" in \
        error.value.details()


@pytest.mark.parametrize("request_, code, message", [
    (predict_request("nope", text=["x"]), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
    (predict_request("sentiment", version=9, text=["x"]),
     grpc.StatusCode.NOT_FOUND, "Specific(sentiment, 9)"),
    (predict_request("sentiment", label="stable", text=["x"]),
     grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: stable"),
    (predict_request("sentiment", "nope", text=["x"]),
     grpc.StatusCode.INVALID_ARGUMENT,
     'Serving signature name: "nope" not found'),
    (predict_request("sentiment", text=np.array([1.5], np.float32)),
     grpc.StatusCode.INVALID_ARGUMENT, "expects string values but got "
     "float32"),
    (predict_request("sentiment", texts=["x"]),
     grpc.StatusCode.INVALID_ARGUMENT, "Missing but required: {text}"),
    (predict_request("sentiment", text=[["x"]]),
     grpc.StatusCode.INVALID_ARGUMENT, "expects shape [-1] but got [1,1]"),
], ids=["model", "version", "label", "signature", "dtype", "input", "rank"])
def test_predict_errors_have_tensorflow_servings_codes(prediction, request_,
                                                       code, message):
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(request_, timeout=30)
    assert error.value.code() == code
    assert message in error.value.details()
    # and the server goes on
    response = prediction.Predict(predict_request("sentiment", text=["ok"]),
                                  timeout=30)
    assert tf.make_ndarray(response.outputs["label"]).shape == (1,)


def test_refused_classify_and_metadata_requests(prediction):
    # (tests/test_server_classify.py tests the Classify API)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "sentiment"
    with pytest.raises(grpc.RpcError) as error:
        prediction.Classify(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == (
        "Expected classification signature method_name to be "
        "tensorflow/serving/classify. Was: tensorflow/serving/predict")
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "sentiment"
    with pytest.raises(grpc.RpcError) as error:
        prediction.GetModelMetadata(metadata, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at least one metadata_field" in error.value.details()
