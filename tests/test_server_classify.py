"""TensorFlow Serving's Classify and Regress APIs: the classifiers' exported
``classification`` signature, REST ``:classify`` and gRPC ``Classify``
against ``predict``'s labels and probabilities, context features, and
TensorFlow Serving's errors; the JSON and proto conversions of
``nlpseq.server.classify``.
"""

import base64

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from nlpseq.server import classify
from nlpseq.server.codec import ServingError

TEXTS = ["The visual effects are never uninspired, and the film is "
         "magnificent overall.", "It is slick and shiny, yet nobody is home.",
         "Ünïcödé, and a text of a few more words than the others: " * 5]


def signature_defs(exported_models, app="sentiment"):
    saved = saved_model_pb2.SavedModel.FromString(
        (exported_models.base_paths[app] / "1" / "saved_model.pb").read_bytes())
    return saved.meta_graphs[0].signature_def


def expected(exported_models, texts):
    """``(class names, probabilities)`` of the Python API's ``predict``."""
    task = exported_models.tasks["sentiment"]
    records = task.predict(texts)
    return task.class_names, [list(r["probabilities"].values())
                              for r in records]


def classify_rest(serving, body, model="sentiment", verb="classify"):
    return serving.post(f"/v1/models/{model}:{verb}", body)


# -- the export ----------------------------------------------------------------

def test_the_export_declares_tensorflow_servings_classify_method(
        exported_models):
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting

    defs = signature_defs(exported_models)
    signature = defs["classification"]
    assert signature.method_name == "tensorflow/serving/classify"
    assert defs["serving_default"].method_name == "tensorflow/serving/predict"
    assert list(signature.inputs) == ["inputs"]
    assert signature.inputs["inputs"].dtype == tf.string.as_datatype_enum
    assert [d.size for d in signature.inputs["inputs"].tensor_shape.dim] == [-1]
    assert set(signature.outputs) == {"classes", "scores"}
    assert signature.outputs["classes"].dtype == tf.string.as_datatype_enum
    assert signature.outputs["scores"].dtype == tf.float32.as_datatype_enum
    for key in ("classes", "scores"):
        assert [d.size for d in signature.outputs[key].tensor_shape.dim] == \
            [-1, 2]
    # the fingerprint is the rewritten saved_model.pb's (but its random id)
    folder = exported_models.base_paths["sentiment"] / "1"
    written, computed = (fingerprint_pb2.FingerprintDef.FromString(data)
                         for data in ((folder / "fingerprint.pb").read_bytes(),
                                      fingerprinting.CreateFingerprintDef(
                                          str(folder))))
    written.ClearField("uuid")
    computed.ClearField("uuid")
    assert written == computed


def test_the_signature_answers_as_serving_default(exported_models):
    """Called in this process: the classes are the label names, the scores
    serving_default's probabilities (zeros for an empty text)."""
    folder = exported_models.base_paths["sentiment"] / "1"
    loaded = tf.saved_model.load(str(folder))
    texts = TEXTS + [" "]
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[t.encode()]))})).SerializeToString() for t in texts]
    outputs = loaded.signatures["classification"](inputs=tf.constant(examples))
    default = loaded.signatures["serving_default"](text=tf.constant(texts))
    names = exported_models.tasks["sentiment"].class_names
    assert outputs["classes"].numpy().tolist() == [
        [n.encode() for n in names]] * len(texts)
    np.testing.assert_array_equal(outputs["scores"].numpy(),
                                  default["probabilities"].numpy())
    assert not outputs["scores"].numpy()[-1].any()


# -- REST ----------------------------------------------------------------------

def test_rest_classify_gives_predicts_labels_and_probabilities(
        serving, exported_models):
    status, body = classify_rest(serving, {
        "signature_name": "classification",
        "examples": [{"text": text} for text in TEXTS]})
    assert status == 200, body
    assert list(body) == ["results"]
    names, probabilities = expected(exported_models, TEXTS)
    assert len(body["results"]) == len(TEXTS)
    for result, row in zip(body["results"], probabilities):
        assert [label for label, _ in result] == names
        np.testing.assert_allclose([score for _, score in result], row,
                                   atol=2e-6)
    # the same numbers as :predict's
    status, predicted = serving.predict("sentiment", {"instances": TEXTS})
    assert [[score for _, score in result] for result in body["results"]] \
        == [row["probabilities"] for row in predicted["predictions"]]


def test_rest_context_features_are_merged_into_each_example(
        serving, exported_models):
    """An example without ``text`` takes the context's; an example's own
    wins; other features (any kind) are read by no one; ``b64`` is the
    bytes it encodes."""
    status, body = classify_rest(serving, {
        "signature_name": "classification",
        "context": {"text": TEXTS[0], "source": ["web", "review"]},
        "examples": [{"stars": 4}, {"text": TEXTS[1], "weight": [0.5, 2.0]},
                     {"text": {"b64": base64.b64encode(
                         TEXTS[2].encode()).decode()}, "flag": True}]})
    assert status == 200, body
    _, probabilities = expected(exported_models, TEXTS)
    for result, row in zip(body["results"], probabilities):
        np.testing.assert_allclose([s for _, s in result], row, atol=2e-6)


def test_a_version_path_and_a_large_body(serving, exported_models):
    """A body of a megabyte and more is read off the event loop."""
    status, body = serving.post(
        "/v1/models/sentiment/versions/1:CLASSIFY",
        {"signature_name": "classification", "context": {
            "notes": "n" * (1 << 20)}, "examples": [{"text": TEXTS[0]}]})
    assert status == 200, body
    _, probabilities = expected(exported_models, TEXTS[:1])
    np.testing.assert_allclose([s for _, s in body["results"][0]],
                               probabilities[0], atol=2e-6)


ERRORS = [
    ("sentiment", "regress", {"examples": [{"text": "x"}]}, 400,
     "Expected regression signature method_name to be "
     "tensorflow/serving/regress. Was: tensorflow/serving/predict"),
    ("sentiment", "regress", {"signature_name": "classification",
                              "examples": [{"text": "x"}]}, 400,
     "Expected regression signature method_name to be "
     "tensorflow/serving/regress. Was: tensorflow/serving/classify"),
    ("sentiment", "classify", {"examples": [{"text": "x"}]}, 400,
     "Expected classification signature method_name to be "
     "tensorflow/serving/classify. Was: tensorflow/serving/predict"),
    ("sentiment", "classify", {"signature_name": "nope",
                               "examples": [{"text": "x"}]}, 400,
     "No signature was found with the name: nope"),
    ("ner", "classify", {"signature_name": "classification",
                         "examples": [{"text": "x"}]}, 400,
     "No signature was found with the name: classification"),
    ("nope", "classify", {"signature_name": "classification",
                          "examples": [{"text": "x"}]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("sentiment", "classify", {"signature_name": "classification"}, 400,
     "When method is classify, key 'examples' is expected and was not "
     "found"),
    ("sentiment", "classify", {"examples": {"text": "x"}}, 400,
     "Expecting 'examples' value to be an list/array"),
    ("sentiment", "classify", {"examples": []}, 400,
     "'examples' value is an empty array"),
    ("sentiment", "classify", {"examples": ["x"]}, 400,
     "Example must be JSON object but got JSON String"),
    ("sentiment", "classify", {"context": [], "examples": [{}]}, 400,
     "Example must be JSON object but got JSON Array"),
    ("sentiment", "classify", {"examples": [{"text": ["x", 1]}]}, 400,
     "Unexpected element type in feature: text expecting type: bytes"),
    ("sentiment", "classify", {"examples": [{"text": None}]}, 400,
     "Feature: text has element with unexpected JSON type: Null"),
    ("sentiment", "classify", {"examples": [{"text": {"b64": "@@"}}]}, 400,
     "Unable to base64 decode"),
    ("sentiment", "classify", {"signature_name": "classification",
                               "examples": [{"text": "x"}, {"txt": "y"}]},
     400, "example 1: no feature 'text'"),
    ("sentiment", "classify", {"signature_name": "classification",
                               "examples": [{"text": ["x", "y"]}]},
     400, "example 0: feature 'text' holds 2 values: expected one text"),
    ("sentiment", "classify", {"signature_name": "classification",
                               "examples": [{"text": 5}]},
     400, "example 0: feature 'text' holds int64 values"),
    ("sentiment", "classify", {"signature_name": "classification",
                               "examples": [{"text": {"b64": "/w=="}}]},
     400, "example 0: feature 'text' is not valid UTF-8 text (byte 0)"),
]


@pytest.mark.parametrize("model, verb, body, code, message", ERRORS,
                         ids=[f"{e[3]}-{e[4][:40]}" for e in ERRORS])
def test_rest_errors_are_tensorflow_servings(serving, model, verb, body, code,
                                             message):
    status, answer = classify_rest(serving, body, model, verb)
    assert status == code, answer
    assert list(answer) == ["error"] and message in answer["error"], answer
    status, ok = classify_rest(serving, {
        "signature_name": "classification", "examples": [{"text": "fine"}]})
    assert status == 200 and len(ok["results"]) == 1


FEATURE_VALUES = st.one_of(
    st.text(max_size=20), st.integers(-2**70, 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.none(),
    st.booleans(), st.builds(lambda b: {"b64": base64.b64encode(b).decode()},
                             st.binary(max_size=8)))
FEATURES = st.dictionaries(
    st.sampled_from(["text", "x"]),
    st.one_of(FEATURE_VALUES, st.lists(FEATURE_VALUES, max_size=3)),
    max_size=2)
BODIES = st.one_of(
    st.fixed_dictionaries({"signature_name": st.just("classification"),
                           "examples": st.lists(FEATURES, max_size=4)},
                          optional={"context": FEATURES}),
    st.dictionaries(st.sampled_from(["examples", "context",
                                     "signature_name"]),
                    st.one_of(FEATURE_VALUES, st.lists(FEATURES, max_size=2),
                              FEATURES), max_size=3))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_any_classify_body_gets_an_answer_or_a_status_never_a_crash(
        serving, body):
    """Any body of examples is answered, one result per example, or
    refused with one error (400), never a 500 or a hang."""
    status, answer = classify_rest(serving, body)
    assert status in (200, 400), (status, answer)
    if status == 400:
        assert isinstance(answer, dict) and set(answer) == {"error"}
        return
    assert len(answer["results"]) == len(body["examples"])


# -- gRPC ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def prediction(serving):
    with grpc.insecure_channel(serving.grpc_target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def classification_request(texts, model="sentiment",
                           signature="classification", context=None):
    """A ``ClassificationRequest`` as TensorFlow Serving's client examples
    build one: a ``tf.train.Example`` with a bytes feature per text."""
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if context is None:
        examples = request.input.example_list.examples
    else:
        listed = request.input.example_list_with_context
        listed.context.features.feature["text"].bytes_list.value.append(
            context.encode())
        examples = listed.examples
    for text in texts:
        example = examples.add()
        if text is not None:
            example.features.feature["text"].bytes_list.value.append(
                text.encode())
    return request


def test_grpc_classify_gives_predicts_labels_and_probabilities(
        prediction, exported_models):
    response = prediction.Classify(classification_request(TEXTS), timeout=30)
    assert response.model_spec.name == "sentiment"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "classification"
    names, probabilities = expected(exported_models, TEXTS)
    assert len(response.result.classifications) == len(TEXTS)
    for found, row in zip(response.result.classifications, probabilities):
        assert [c.label for c in found.classes] == names
        np.testing.assert_allclose([c.score for c in found.classes], row,
                                   atol=2e-6)


def test_grpc_context_is_merged_into_each_example(prediction,
                                                  exported_models):
    response = prediction.Classify(classification_request(
        [None, TEXTS[1]], context=TEXTS[0]), timeout=30)
    _, probabilities = expected(exported_models, TEXTS[:2])
    for found, row in zip(response.result.classifications, probabilities):
        np.testing.assert_allclose([c.score for c in found.classes], row,
                                   atol=2e-6)


def regression_request(model, signature=""):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.input.example_list.examples.add().features.feature[
        "text"].bytes_list.value.append(b"x")
    return request


@pytest.mark.parametrize("call, request_, code, message", [
    ("Regress", regression_request("sentiment"),
     grpc.StatusCode.INVALID_ARGUMENT,
     "Expected regression signature method_name to be "
     "tensorflow/serving/regress. Was: tensorflow/serving/predict"),
    ("Classify", classification_request(["x"], signature=""),
     grpc.StatusCode.INVALID_ARGUMENT,
     "Expected classification signature method_name to be "
     "tensorflow/serving/classify. Was: tensorflow/serving/predict"),
    ("Classify", classification_request(["x"], model="ner"),
     grpc.StatusCode.INVALID_ARGUMENT,
     "No signature was found with the name: classification"),
    ("Classify", classification_request([]),
     grpc.StatusCode.INVALID_ARGUMENT, "Input is empty."),
    ("Classify", classification_request([None]),
     grpc.StatusCode.INVALID_ARGUMENT, "example 0: no feature 'text'"),
    ("Classify", classification_request(["x"], model="nope"),
     grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
], ids=["regress", "predict-signature", "ner", "empty", "no-text", "model"])
def test_grpc_errors_are_tensorflow_servings(prediction, call, request_, code,
                                             message):
    with pytest.raises(grpc.RpcError) as error:
        getattr(prediction, call)(request_, timeout=30)
    assert error.value.code() == code
    assert message in error.value.details()


def test_multi_inference_is_unimplemented(prediction):
    request = inference_pb2.MultiInferenceRequest()
    with pytest.raises(grpc.RpcError) as error:
        prediction.MultiInference(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- the conversions -----------------------------------------------------------

def test_json_features_are_tf_examples():
    """Each JSON value as the ``tf.train.Example`` API builds it."""
    example = classify.json_example({
        "text": "naïve", "raw": {"b64": base64.b64encode(b"\xff\x00").decode()},
        "count": 3, "flag": False, "weights": [0.5, 1e30], "ids": [1, -2],
        "none": []})
    feature = tf.train.Feature
    wanted = tf.train.Example(features=tf.train.Features(feature={
        "text": feature(bytes_list=tf.train.BytesList(
            value=["naïve".encode()])),
        "raw": feature(bytes_list=tf.train.BytesList(value=[b"\xff\x00"])),
        "count": feature(int64_list=tf.train.Int64List(value=[3])),
        "flag": feature(int64_list=tf.train.Int64List(value=[0])),
        "weights": feature(float_list=tf.train.FloatList(value=[0.5, 1e30])),
        "ids": feature(int64_list=tf.train.Int64List(value=[1, -2])),
        "none": feature()}))
    assert example == wanted


@pytest.mark.parametrize("value, message", [
    (2**63, "Feature: x has uint64 element. Only int64 is supported."),
    (1e39, "Cannot convert JSON value: 1e+39 to float without loss of "
     "precision."),
    ([1, "a"], "Unexpected element type in feature: x expecting type: "
     "int64"),
    ([[1]], "Feature: x has element with unexpected JSON type: Array"),
    ({"b64": "YQ==", "more": 1}, "Feature: x has element with unexpected "
     "JSON type: Object"),
])
def test_json_features_refused_as_tensorflow_serving_refuses_them(value,
                                                                   message):
    with pytest.raises(ServingError) as error:
        classify.json_example({"x": value})
    assert error.value.code == "INVALID_ARGUMENT"
    assert error.value.message == message


def test_the_context_serialization_comes_first():
    """A context and an example parse as their merge, the example's own
    features winning (TensorFlow Serving's serialization)."""
    (data,) = classify.json_examples({"context": {"a": 1, "b": "c"},
                                      "examples": [{"a": 2}]})
    merged = tf.train.Example.FromString(data).features.feature
    assert merged["a"].int64_list.value == [2]
    assert merged["b"].bytes_list.value == [b"c"]


def test_results_of_scores_alone_and_of_regressions():
    """Without ``classes`` the labels are empty, as TensorFlow Serving's
    ``ClassificationResult`` leaves them; a regression is one value per
    example."""
    scores = np.array([[0.25, 0.75]], np.float32)
    assert classify.json_results("classify", {"scores": scores}, 1) == {
        "results": [[["", 0.25], ["", 0.75]]]}
    classes = np.array([[b"a", b"b"]], object)
    assert classify.json_results("classify", {"classes": classes}, 1) == {
        "results": [[["a", 0.0], ["b", 0.0]]]}
    values = np.array([[1.5], [0.1]], np.float32)
    assert classify.json_results("regress", {"outputs": values}, 2) == {
        "results": [1.5, 0.1]}
    response = classify.grpc_response("regress", "m", 3, "r",
                                      {"outputs": values}, 2)
    assert [r.value for r in response.result.regressions] == pytest.approx(
        [1.5, 0.1])
    with pytest.raises(ServingError, match="Expected scores output batch "
                       "size of 2. Got: 1"):
        classify.json_results("classify", {"scores": scores}, 2)


def test_the_server_logged_no_traceback(serving):
    assert "Traceback" not in serving.log()
