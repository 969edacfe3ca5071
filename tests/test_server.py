"""``nlpseq serve`` over REST: TensorFlow Serving's paths, formats, errors
and status codes; versions, labels and reloads; dynamic batching and its
bounded queue; graceful shutdown; the command line's errors.

The servers are ``python -m nlpseq serve`` subprocesses on free localhost
ports (``serving`` of conftest.py, and two of this module's own); answers
are compared with the Python API (``task.predict``) and with the exported
SavedModel called in this process.
"""

import base64
import concurrent.futures
import json
import math
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import start_server, tiny_task

from nlpseq.cli import cli
from nlpseq.server.codec import dumps, to_python

TEXTS = {
    "sentiment": ["The visual effects are never uninspired, and the film is "
                  "magnificent overall.", "Not tedious, just a haunting film.",
                  "It is slick and shiny, yet nobody is home."],
    "ner": ["Shares of the Harbor Trust fell after Ruth Fernandes met them",
            "EU rejects German call", "Peter Blackburn"],
    "next-word": ["this movie is not", "when it is rainy i like to",
                  "the pancakes"],
    "translation": ["Zwei kleine Jungen essen einen Apfel im Schnee.",
                    "Vier alte Männer sitzen im Park."],
}

_SAVED = {}


def saved_model(path):
    """The SavedModel at ``path``, loaded in this process (once)."""
    import tensorflow as tf

    if str(path) not in _SAVED:
        _SAVED[str(path)] = tf.saved_model.load(str(path))
    return _SAVED[str(path)]


def direct(path, signature="serving_default", **inputs):
    """The outputs of a SavedModel's signature called in this process, as
    the REST API writes them."""
    import tensorflow as tf

    function = saved_model(path).signatures[signature]
    outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: to_python(k, v.numpy()) for k, v in outputs.items()}


def rows(outputs):
    """Column outputs (``{name: [rows]}``) as the row format's objects."""
    names = sorted(outputs)
    return [dict(zip(names, values))
            for values in zip(*(outputs[n] for n in names))]


def unpad(values, pad=""):
    return [v for v in values if v != pad]


# -- the four apps: row and columnar formats against the Python API ----------

def check_sentiment(records, predictions):
    for record, got in zip(records, predictions):
        assert got["label"] == record["label"]
        assert got["class_names"] == list(record["probabilities"])
        np.testing.assert_allclose(got["probabilities"], list(
            record["probabilities"].values()), atol=2e-6)


def check_ner(records, predictions):
    for record, got in zip(records, predictions):
        assert unpad(got["tokens"]) == record["tokens"]
        assert got["tags"][:len(record["tokens"])] == record["tags"]
        count = got["entity_count"]
        assert count == len(record["entities"])
        assert [{"type": t, "text": x, "start": s, "end": e} for t, x, s, e
                in zip(got["entity_types"], got["entity_texts"],
                       got["entity_starts"], got["entity_ends"])][:count] == [
            {k: entity[k] for k in ("type", "text", "start", "end")}
            for entity in record["entities"]]
        assert got["entity_starts"][count:] == [-1] * (
            len(got["entity_starts"]) - count)


def check_next_word(records, predictions):
    for record, got in zip(records, predictions):
        assert len(got["tokens"]) == len(got["probabilities"]) == 10
        served = dict(zip(got["tokens"], got["probabilities"]))
        for entry in record["next"]:  # (ties may come in another order)
            assert served[entry["token"]] == pytest.approx(
                entry["probability"], abs=2e-6)


def check_translation(records, predictions):
    for record, got in zip(records, predictions):
        assert got["translation"] == record["translation"]
        assert got["score"] == pytest.approx(record["score"], abs=2e-4)


CHECKS = {"sentiment": check_sentiment, "ner": check_ner,
          "next-word": check_next_word, "translation": check_translation}


@pytest.mark.parametrize("app", list(TEXTS))
def test_row_and_columnar_formats_give_the_python_apis_predictions(
        serving, exported_models, app):
    texts = TEXTS[app]
    records = exported_models.tasks[app].predict(texts)
    status, row = serving.predict(app, {"instances": texts})
    assert status == 200, row
    assert list(row) == ["predictions"] and len(row["predictions"]) == len(
        texts)
    CHECKS[app](records, row["predictions"])
    status, columns = serving.predict(app, {"inputs": texts})
    assert status == 200, columns
    assert list(columns) == ["outputs"]
    assert rows(columns["outputs"]) == row["predictions"]
    # the SavedModel itself gives the same values
    expected = direct(exported_models.base_paths[app] / "1",
                      text=np.array(texts, object))
    assert columns["outputs"].keys() == expected.keys()
    for name, values in expected.items():
        if name in ("probabilities", "score"):
            np.testing.assert_allclose(columns["outputs"][name], values,
                                       atol=1e-6)
        else:
            assert columns["outputs"][name] == values, name


def test_one_output_gives_bare_values_and_a_named_signature(
        serving, exported_models):
    """The tagger's ``tokens`` signature (tokens in, one output, tags):
    predictions are the values themselves, in both formats."""
    tokens = [["EU", "rejects", "German", "call"],
              ["Peter", "Blackburn", "", ""]]
    expected = direct(exported_models.base_paths["ner"] / "1", "tokens",
                      tokens=np.array(tokens, object))
    assert list(expected) == ["tags"]
    status, row = serving.predict("ner", {"signature_name": "tokens",
                                          "instances": tokens})
    assert status == 200, row
    assert row == {"predictions": expected["tags"]}
    status, columns = serving.predict("ner", {"signature_name": "tokens",
                                              "inputs": {"tokens": tokens}})
    assert status == 200 and columns == {"outputs": expected["tags"]}
    # instances of one named input may be objects too
    status, named = serving.predict("ner", {"signature_name": "tokens",
                                            "instances": [{"tokens": t}
                                                          for t in tokens]})
    assert status == 200 and named == row


def test_columnar_scalars_of_a_full_signature(serving, exported_models):
    """``translate`` takes scalar options beside the texts: only the
    columnar format can give them."""
    texts = TEXTS["translation"]
    inputs = {"text": texts, "beam_width": 3, "length_penalty": 0.6,
              "n_best": 2}
    status, body = serving.predict("translation", {
        "signature_name": "translate", "inputs": inputs})
    assert status == 200, body
    expected = direct(exported_models.base_paths["translation"] / "1",
                      "translate", text=np.array(texts, object),
                      beam_width=np.int32(3), length_penalty=np.float32(0.6),
                      n_best=np.int32(2))
    assert body["outputs"]["translations"] == expected["translations"]
    np.testing.assert_allclose(body["outputs"]["scores"], expected["scores"],
                               atol=1e-5)
    assert np.array(body["outputs"]["translations"]).shape == (2, 2)


def test_b64_inputs_are_the_bytes_they_encode(serving):
    text = TEXTS["sentiment"][0]
    status, plain = serving.predict("sentiment", {"instances": [text]})
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    status, b64 = serving.predict("sentiment",
                                  {"instances": [{"b64": encoded}]})
    assert status == 200 and b64 == plain
    status, columns = serving.predict("sentiment",
                                      {"inputs": [{"b64": encoded}]})
    assert status == 200 and rows(columns["outputs"]) == plain["predictions"]


def test_b64_bytes_that_are_not_utf8_are_refused(serving):
    """The CLI refuses such a line, and Python cannot hold it in a str:
    the served graph refuses it too (INVALID_ARGUMENT, HTTP 400), and an
    empty input gets the empty result, as from ``predict``."""
    encoded = base64.b64encode(b"caf\xe9").decode("ascii")
    for app in ("sentiment", "translation"):
        status, body = serving.predict(app, {"instances": [
            "fine", {"b64": encoded}]})
        assert status == 400, body
        assert body["error"] == (
            "input 'text' of signature 'serving_default': element 1 is not "
            "valid UTF-8 text (byte 3); send text, or the UTF-8 bytes of a "
            "text as {\"b64\": ...}")
    status, body = serving.predict("translation", {"instances": [""]})
    assert status == 200
    assert body["predictions"] == [{"translation": "", "score": 0.0}]


def test_utf8_inputs_and_outputs(serving, exported_models):
    texts = ["Ein Mädchen läuft über die Straße.", "Männer 😀"]
    status, body = serving.predict("translation", {"inputs": texts})
    assert status == 200
    records = exported_models.tasks["translation"].predict(texts)
    assert body["outputs"]["translation"] == [r["translation"]
                                             for r in records]


# -- metadata and status -------------------------------------------------------

def test_metadata_is_the_savedmodels_signature_defs(serving, exported_models):
    status, body = serving.get("/v1/models/ner/metadata")
    assert status == 200, body
    assert body["model_spec"] == {"name": "ner", "signature_name": "",
                                  "version": "1"}
    defs = body["metadata"]["signature_def"]["signature_def"]
    loaded = saved_model(exported_models.base_paths["ner"] / "1")
    assert set(loaded.signatures) <= set(defs)
    for name, function in loaded.signatures.items():
        entry = defs[name]
        assert entry["method_name"] == "tensorflow/serving/predict"
        inputs = function.structured_input_signature[1]
        assert set(entry["inputs"]) == set(inputs)
        for key, spec in inputs.items():
            assert entry["inputs"][key]["dtype"] == \
                "DT_" + spec.dtype.name.upper()
            assert [int(d["size"]) for d in entry["inputs"][key][
                "tensor_shape"]["dim"]] == [
                -1 if d is None else d for d in spec.shape.as_list()]
        outputs = function.structured_outputs
        assert set(entry["outputs"]) == set(outputs)
        for key, spec in outputs.items():
            assert entry["outputs"][key]["dtype"] == \
                "DT_" + spec.dtype.name.upper()
            assert entry["outputs"][key]["tensor_shape"]["unknown_rank"] is \
                False
    assert defs["serving_default"]["inputs"]["text"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}


def test_status_of_each_path(serving):
    available = {"model_version_status": [{
        "version": "1", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}
    for path in ("/v1/models/sentiment", "/v1/models/sentiment/versions/1"):
        assert serving.get(path) == (200, available)
    status, body = serving.get("/v1/models/sentiment/versions/1/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    status, body = serving.predict("sentiment", {"instances": ["fine"]},
                                   "/versions/1")
    assert status == 200 and len(body["predictions"]) == 1


def test_nlpseq_models_lists_apps_and_signatures(serving):
    status, body = serving.get("/nlpseq/v1/models")
    assert status == 200
    models = {m["name"]: m for m in body["models"]}
    assert set(models) == {"sentiment", "ner", "next-word", "translation"}
    assert models["sentiment"]["app"] == "sentiment"
    assert models["sentiment"]["family"] == "classifier"
    assert models["ner"]["family"] == "tagger"
    assert models["sentiment"]["version"] == "1"
    assert models["sentiment"]["signatures"]["serving_default"] == {
        "method_name": "tensorflow/serving/predict",
        "inputs": {"text": {"dtype": "DT_STRING", "shape": [-1]}},
        "outputs": {"class_names": {"dtype": "DT_STRING", "shape": [-1, 2]},
                    "label": {"dtype": "DT_STRING", "shape": [-1]},
                    "probabilities": {"dtype": "DT_FLOAT",
                                      "shape": [-1, 2]}}}
    assert models["sentiment"]["signatures"]["classification"] == {
        "method_name": "tensorflow/serving/classify",
        "inputs": {"inputs": {"dtype": "DT_STRING", "shape": [-1]}},
        "outputs": {"classes": {"dtype": "DT_STRING", "shape": [-1, 2]},
                    "scores": {"dtype": "DT_FLOAT", "shape": [-1, 2]}}}
    assert "__saved_model_init_op" not in models["ner"]["signatures"]
    assert "tokens" in models["ner"]["signatures"]


def test_the_log_says_loading_then_each_model_then_ready(serving):
    """The first line says the models are loading (a request before they
    are gets TensorFlow Serving's LOADING answer), each version says when
    it is loaded and how long it took, and one line says when all are."""
    log = serving.wait_for(lambda: "Ready: " in serving.log() and
                           serving.log())
    lines = log.splitlines()
    first = next(i for i, line in enumerate(lines)
                 if line.startswith("Loading "))
    assert lines[first].startswith(
        f"Loading {', '.join(serving.base_paths)}: REST on "
        f"{serving.rest_url}")
    assert "GET /readyz answers 200 once every model is loaded" in \
        lines[first]
    ready = next(i for i, line in enumerate(lines)
                 if line.startswith("Ready: every model is loaded ("))
    loaded = [i for i, line in enumerate(lines)
              if line.startswith("Serving model ") and " (loaded in " in line]
    assert len(loaded) == len(serving.base_paths)
    assert first < min(loaded) and max(loaded) < ready


def test_health_readiness_and_the_demo_page(serving):
    assert serving.get("/healthz") == (200, {"status": "alive"})
    assert serving.get("/readyz") == (200, {"status": "ready"})
    status, page = serving.get("/")
    assert status == 200 and "<html" in page.lower()
    status, body = serving.get("/static/no-such-file.js")
    assert status == 404 and "error" in body


# -- errors --------------------------------------------------------------------

ERRORS = [
    # (method, path, body, status, part of the error message)
    ("POST", "/v1/models/nope:predict", {"instances": ["x"]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/sentiment/versions/7:predict", {"instances": ["x"]},
     404, "Servable not found for request: Specific(sentiment, 7)"),
    ("POST", "/v1/models/sentiment/labels/stable:predict",
     {"instances": ["x"]}, 400,
     "Unrecognized servable version label: stable"),
    ("POST", "/v1/models/sentiment:predict",
     {"signature_name": "nope", "instances": ["x"]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", "/v1/models/sentiment:predict", '{"instances": ["x"', 400,
     "JSON Parse error"),
    ("POST", "/v1/models/sentiment:predict", "", 400,
     "JSON Parse error: The document is empty"),
    ("POST", "/v1/models/sentiment:predict", '["x"]', 400, "Is not object"),
    # too deep for Python's parser, or for a tensor
    ("POST", "/v1/models/sentiment:predict",
     '{"instances": ' + "[" * 100000 + "]" * 100000 + "}", 400,
     "JSON Parse error: nested too deeply"),
    ("POST", "/v1/models/sentiment:predict",
     '{"inputs": ' + "[" * 65 + '"a"' + "]" * 65 + "}", 400,
     "lists nested more than 32 levels deep"),
    ("POST", "/v1/models/sentiment:predict",
     '{"instances": ' + "[" * 64 + '"a"' + "]" * 64 + "}", 400,
     "lists nested more than 32 levels deep"),
    ("POST", "/v1/models/sentiment:predict", {"text": ["x"]}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("POST", "/v1/models/sentiment:predict", {"inputs": {"texts": ["x"]}},
     400, "Missing named input: text in 'inputs' object."),
    ("POST", "/v1/models/sentiment:predict", {"instances": [{"texts": "x"}]},
     400, "JSON object: does not have named input: texts"),
    ("POST", "/v1/models/sentiment:predict", {"instances": [5]}, 400,
     "JSON Value: 5 Type: Number is not of expected type: string"),
    ("POST", "/v1/models/sentiment:predict", {"inputs": [["a", "b"]]}, 400,
     "expects shape [-1] but got [1,2]"),
    ("POST", "/v1/models/sentiment:predict", {"instances": []}, 400,
     "No values in 'instances' array"),
    ("POST", "/v1/models/sentiment:predict",
     {"instances": ["x"], "inputs": ["x"]}, 400,
     "expecting only one of 'inputs' or 'instances'"),
    ("POST", "/v1/models/sentiment:predict", {"instances": [{"b64": "@@"}]},
     400, "Unable to base64 decode"),
    ("POST", "/v1/models/sentiment:predict",
     {"signature_name": 3, "instances": ["x"]}, 400,
     "'signature_name' key must be a string value"),
    ("POST", "/v1/models/ner:predict",
     {"signature_name": "tokens", "instances": [["a", "b"], ["c"]]}, 400,
     "Expecting tensor size: 2 but got: 1"),
    ("POST", "/v1/models/sentiment:classify", {"examples": []}, 400,
     "'examples' value is an empty array"),
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v1/models/nope", None, 404,
     "Could not find any versions of model nope"),
    ("GET", "/v1/models/sentiment/versions/7", None, 404,
     "Could not find version 7 of model sentiment"),
    ("GET", "/v1/models/nope/metadata", None, 404,
     "Servable not found for request: Latest(nope)"),
    ("PUT", "/v1/models/sentiment:predict", {"instances": ["x"]}, 400,
     "Malformed request: PUT /v1/models/sentiment:predict"),
    ("POST", "/v1/models/sentiment/versions/x:predict", {"instances": ["x"]},
     400, "Malformed request"),
]


@pytest.mark.parametrize("method, path, body, code, message", ERRORS,
                         ids=[f"{e[3]}-{e[4][:30]}" for e in ERRORS])
def test_errors_are_tensorflow_servings(serving, method, path, body, code,
                                        message):
    status, answer = serving.request(method, path, body)
    assert status == code, answer
    assert isinstance(answer, dict) and list(answer) == ["error"], answer
    assert message in answer["error"]
    # and the server keeps answering
    status, ok = serving.predict("sentiment", {"instances": ["fine"]})
    assert status == 200 and len(ok["predictions"]) == 1


def test_a_body_over_the_limit_is_refused(serving):
    status, answer = serving.post(
        "/v1/models/sentiment:predict",
        b'{"instances": ["' + b"a" * (8 << 20) + b'"]}')
    assert status == 400
    assert "--max-body-bytes 8388608" in answer["error"]
    status, ok = serving.predict("sentiment", {"instances": ["fine"]})
    assert status == 200


def test_unknown_paths_are_json_404s(serving):
    status, body = serving.get("/v2/anything")
    assert status == 404 and list(body) == ["error"]


# -- the JSON of outputs -------------------------------------------------------

def test_outputs_json_as_tensorflow_serving_writes_it():
    floats = np.array([[0.2, 1.0], [np.nan, -np.inf]], np.float32)
    assert dumps(to_python("p", floats)) == b"[[0.2,1.0],[NaN,-Infinity]]"
    strings = np.array([b"caf\xc3\xa9", b"\xff"], object)
    assert to_python("text", strings) == ["café", "\ufffd"]
    assert to_python("image_bytes", strings) == [{"b64": "Y2Fmw6k="},
                                                 {"b64": "/w=="}]
    assert to_python("n", np.array([[1, 2]], np.int32)) == [[1, 2]]


def test_a_nan_output_is_written_as_nan(config_server):
    status, body = config_server.predict("broken", {"instances": ["x"]})
    assert status == 200
    assert all(math.isnan(p) for p in body["predictions"][0][
        "probabilities"])
    status, text = config_server.request("POST", "/v1/models/broken:predict",
                                         {"inputs": ["x"]}, raw=True)
    assert status == 200 and '"probabilities":[[NaN,NaN]]' in text


# -- versions, labels, reloads (a server of this module) ----------------------

@pytest.fixture(scope="module")
def versions(exported_models, tmp_path_factory):
    """A base path with version 1 of sentiment, its version 2 (another
    model) aside, and a model whose weights are NaN."""
    root = tmp_path_factory.mktemp("versions")
    base = root / "sentiment"
    shutil.copytree(exported_models.base_paths["sentiment"] / "1", base / "1")
    other = tiny_task("sentiment", seed=7)
    aside = other.export(root / "aside", version=2)
    broken = tiny_task("sentiment", seed=3)
    for weight in broken.model.weights:
        if "float" in str(weight.dtype):
            weight.assign(np.full(weight.shape, np.nan, "float32"))
    broken.export(root / "broken", version=1)
    return base, aside, root / "broken"


@pytest.fixture(scope="module")
def config_server(versions, tmp_path_factory):
    base, _, broken = versions
    config = tmp_path_factory.mktemp("config") / "models.config"
    config.write_text(f"""
model_config_list {{
  config {{
    name: "sentiment"
    base_path: "{base}"
    model_platform: "tensorflow"
    version_labels {{ key: "stable" value: 1 }}
  }}
  config {{ name: "broken" base_path: "{broken}" }}
}}
""")
    server = start_server(args=["--model-config-file", config], grpc=False,
                          log_dir=tmp_path_factory.mktemp("log"))
    yield server
    server.stop()


def served_version(server):
    status, body = server.predict("sentiment", {"instances": ["fine"]})
    return None if status != 200 else server.get(
        "/v1/models/sentiment/metadata")[1]["model_spec"]["version"]


def test_labels_from_a_config_file(config_server):
    status, body = config_server.get("/v1/models/sentiment/labels/stable")
    assert status == 200
    assert [v["version"] for v in body["model_version_status"]] == ["1"]
    status, body = config_server.predict(
        "sentiment", {"instances": TEXTS["sentiment"]}, "/labels/stable")
    assert status == 200
    assert config_server.predict("sentiment", {
        "instances": TEXTS["sentiment"]}) == (status, body)
    status, body = config_server.get(
        "/v1/models/sentiment/labels/stable/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    status, body = config_server.predict("sentiment", {"instances": ["x"]},
                                         "/labels/canary")
    assert status == 400
    assert body == {"error": "Unrecognized servable version label: canary"}


def test_a_new_version_is_served_without_restart_and_removing_it_falls_back(
        config_server, versions, exported_models):
    def states():
        _, body = config_server.get("/v1/models/sentiment")
        return [(v["version"], v["state"])
                for v in body["model_version_status"]]

    base, aside, _ = versions
    texts = TEXTS["sentiment"]
    first = config_server.predict("sentiment", {"inputs": texts})[1]
    second = direct(aside, text=np.array(texts, object))
    assert np.abs(np.array(first["outputs"]["probabilities"]) -
                  second["probabilities"]).max() > 1e-4  # (another model)
    shutil.copytree(aside, base / "2")  # (a copy, not an atomic rename)
    assert config_server.wait_for(lambda: served_version(config_server) ==
                                  "2", timeout=60), config_server.log()
    status, body = config_server.predict("sentiment", {"inputs": texts})
    assert status == 200
    assert body["outputs"]["label"] == second["label"]
    np.testing.assert_allclose(body["outputs"]["probabilities"],
                               second["probabilities"], atol=1e-6)
    # (version 1 is UNLOADING until its unloading ends)
    assert config_server.wait_for(
        lambda: states() == [("2", "AVAILABLE"), ("1", "END")],
        timeout=30), states()
    # a label pointing at a version no longer served: not found
    status, body = config_server.predict("sentiment", {"inputs": texts},
                                         "/labels/stable")
    assert status == 404
    assert "Specific(sentiment, 1)" in body["error"]

    shutil.rmtree(base / "2")
    assert config_server.wait_for(lambda: served_version(config_server) ==
                                  "1", timeout=60), config_server.log()
    assert config_server.predict("sentiment", {"inputs": texts}) == (
        200, first)

    # (version 2 passes through UNLOADING on its way to END, as in TF
    # Serving, after version 1 serves again)
    config_server.wait_for(lambda: states()[0] != ("2", "UNLOADING"),
                           timeout=60)
    assert states() == [("2", "END"), ("1", "AVAILABLE")]


def test_a_version_that_fails_to_load_is_reported(config_server, versions):
    base, _, _ = versions
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
    try:
        def failed():
            status, body = config_server.get("/v1/models/sentiment/versions/3")
            return status == 200 and body["model_version_status"][0][
                "state"] == "END" and body
        body = config_server.wait_for(failed, timeout=60)
        assert body, config_server.log()
        error = body["model_version_status"][0]["status"]
        assert error["error_code"] != "OK"
        assert "Failed to load model sentiment version 3" in \
            error["error_message"]
        assert "Failed to load model sentiment version 3" in \
            config_server.log()
        # version 1 keeps serving
        assert served_version(config_server) == "1"
    finally:
        shutil.rmtree(base / "3")


# -- batching, a full queue, a graceful shutdown --------------------------------

@pytest.fixture(scope="module")
def slow_server(exported_models, tmp_path_factory):
    """A server whose batches wait a second for more requests, with a queue
    of one batch of 64 rows."""
    server = start_server(
        {"sentiment": exported_models.base_paths["sentiment"]},
        args=["--batch-timeout-micros", "1000000", "--max-enqueued-batches",
              "1"], grpc=False, log_dir=tmp_path_factory.mktemp("log"))
    yield server
    server.stop()


def in_threads(calls):
    """Run the functions ``calls`` at once; their results in order."""
    results = [None] * len(calls)

    def run(index):
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,))
               for i in range(len(calls))]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(60)
    return results


def batching_counts(server, signature="serving_default"):
    (entry,) = [b for b in server.get("/nlpseq/v1/batching")[1]["batchers"]
                if b["signature"] == signature]
    return entry


def test_concurrent_requests_are_merged_into_one_batch(slow_server, serving):
    texts = TEXTS["sentiment"] + ["fine", "dull"]
    before = batching_counts(slow_server)
    assert before["merges"] is True
    answers = in_threads([
        lambda t=t: slow_server.predict("sentiment", {"instances": [t]})
        for t in texts])
    after = batching_counts(slow_server)
    assert after["requests"] - before["requests"] == len(texts)
    assert after["batches"] - before["batches"] == 1
    assert after["largest_batch"] >= len(texts)
    for text, (status, body) in zip(texts, answers):
        assert status == 200
        status, alone = serving.predict("sentiment", {"instances": [text]})
        assert body["predictions"][0]["label"] == alone["predictions"][0][
            "label"]
        np.testing.assert_allclose(body["predictions"][0]["probabilities"],
                                   alone["predictions"][0]["probabilities"],
                                   atol=1e-6)


def test_a_full_queue_answers_503_and_the_server_goes_on(slow_server):
    waiting = threading.Thread(target=lambda: results.append(
        slow_server.predict("sentiment", {"instances": ["a"] * 40})))
    results = []
    waiting.start()
    assert slow_server.wait_for(
        lambda: batching_counts(slow_server)["queued"] == 40, timeout=10)
    status, body = slow_server.predict("sentiment",
                                       {"instances": ["b"] * 30})
    assert status == 503
    assert "the batch queue is full" in body["error"]
    waiting.join(30)
    assert results[0][0] == 200 and len(results[0][1]["predictions"]) == 40
    status, body = slow_server.predict("sentiment",
                                       {"instances": ["b"] * 30})
    assert status == 200 and len(body["predictions"]) == 30


def test_sigterm_answers_the_request_in_flight_then_exits_0(slow_server):
    results = []
    request = threading.Thread(target=lambda: results.append(
        slow_server.predict("sentiment", {"instances": ["in flight"]})))
    started = time.monotonic()
    request.start()
    assert slow_server.wait_for(
        lambda: batching_counts(slow_server)["queued"] == 1, timeout=10)
    slow_server.terminate()
    request.join(30)
    assert results and results[0][0] == 200, slow_server.log()
    assert len(results[0][1]["predictions"]) == 1
    assert time.monotonic() - started >= 0.9  # (it waited for its batch)
    assert slow_server.process.wait(30) == 0
    log = slow_server.log()
    assert "POST /v1/models/sentiment:predict 200" in log
    assert "Traceback" not in log


def test_sigterm_during_a_long_generation_ends_within_the_grace_period(
        tmp_path):
    """A generation of ten million words cannot be interrupted: at SIGTERM
    the server waits ``--shutdown-grace-seconds``, answers it UNAVAILABLE
    (HTTP 503, no traceback), and exits 0 at once, every time."""
    base = tmp_path / "next-word"  # (an export whose caps allow it)
    tiny_task("next-word").export(base, version=1,
                                  max_generate_length=10_000_000)
    server = start_server({"next-word": base}, args=[
        "--shutdown-grace-seconds", "1"], grpc=False, log_dir=tmp_path)
    try:
        body = {"signature_name": "generate", "inputs": {
            "text": ["the"], "length": 10_000_000, "strategy": "greedy",
            "temperature": 1.0, "top_k": 0, "beam_width": 1, "seed": 0}}
        pool = concurrent.futures.ThreadPoolExecutor(1)
        answer = pool.submit(server.request, "POST",
                             "/v1/models/next-word:predict", body,
                             timeout=120)
        time.sleep(2.0)  # (the generation runs)
        assert server.process.poll() is None
        started = time.monotonic()
        server.terminate()
        code = server.process.wait(60)
        took = time.monotonic() - started
        status, answer = answer.result(30)
        pool.shutdown()
    finally:
        server.stop()
    print(f"exited {took:.1f} s after SIGTERM")
    assert code == 0, server.log()
    assert took < 1 + 2 + 5, server.log()  # grace, answers, margin
    assert status == 503, answer
    assert "the server is shutting down" in answer["error"]
    assert "Traceback" not in server.log()
    assert "grace period is over" in server.log()


# -- the command line ----------------------------------------------------------

def serve(*args):
    return CliRunner().invoke(cli, ["serve", *map(str, args)])


def test_cli_errors_are_one_line(exported_models, tmp_path):
    base = exported_models.base_paths["sentiment"]
    cases = [
        (["--model", "foo"], "--model foo: expected NAME=BASE_PATH"),
        (["--model", f"s={tmp_path / 'missing'}"], "is not a folder"),
        ([], "no models to serve"),
        (["--model", f"s={base}", "--max-batch-size", "0"],
         "--max-batch-size 0: expected a number above 0"),
        (["--model", f"s={base}", "--model", f"s={base}"],
         "the name is given twice"),
        (["--model", f"s={base}", "--rest-port", "18797", "--grpc-port",
          "18797"], "--rest-port 18797 and --grpc-port 18797: the two APIs "
                    "need two ports"),
        (["--model", f"s={base}", "--poll-seconds", "nan"],
         "--poll-seconds nan: expected a number of seconds above 0"),
        (["--model_name=s"], "--model-name s: give its --model-base-path"),
        (["--model", f"s={base}", f"--model_base_path={base}"],
         "give one of --model, --model-base-path or --model-config-file, "
         "not --model and --model-base-path"),
        ([f"--model_base_path={base}",
          "--model_config_file_poll_wait_seconds=5"],
         "--model-config-file-poll-wait-seconds needs --model-config-file"),
        ([f"--model_base_path={base}", "--rest_api_timeout_in_ms=-1"],
         "--rest-api-timeout-in-ms -1: expected a number above 0"),
        ([f"--model_base_path={base}", "--no-batching", "--enable_batching"],
         "--no-batching and --enable-batching: give one"),
    ]
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 0 }")
    cases.append(([f"--model_base_path={base}",
                   f"--batching_parameters_file={batching}"],
                  f"{batching}: max_batch_size 0: expected 1 or more"))
    typo = tmp_path / "typo.config"
    typo.write_text("max_batch_sise { value: 8 }")
    cases.append(([f"--model_base_path={base}",
                   f"--batching_parameters_file={typo}"],
                  f"{typo}:1: Message type "
                  "\"tensorflow.serving.BatchingParameters\" has no field "
                  "named \"max_batch_sise\"."))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "metrics" }')
    cases.append(([f"--model_base_path={base}",
                   f"--monitoring_config_file={monitoring}"],
                  f"{monitoring}: prometheus_config path 'metrics': expected "
                  "a path starting with /"))
    bad = tmp_path / "bad.config"
    bad.write_text('model_config_list {\n  config { name: "x"\n  bas: 1 }\n}')
    cases.append((["--model-config-file", bad],
                  f"{bad}:3: Message type \"tensorflow.serving.ModelConfig\" "
                  "has no field named \"bas\"."))
    ghost = tmp_path / "ghost.config"
    ghost.write_text(f'model_config_list {{ config {{ name: "s" base_path: '
                     f'"{base}" version_labels {{ key: "ghost" value: 7 }} '
                     '} }')
    cases.append((["--model-config-file", ghost],
                  f"{ghost}: model s: version label 'ghost' names version 7, "
                  f"which is not in {base}"))
    left_out = tmp_path / "left-out.config"
    left_out.write_text(
        f'model_config_list {{ config {{ name: "s" base_path: "{base}" '
        'model_version_policy { specific { versions: 1 } } '
        'version_labels { key: "next" value: 2 } } }')
    cases.append((["--model-config-file", left_out],
                  f"{left_out}: model s: version label 'next' names version "
                  "2, which its specific policy does not serve (versions 1)"))
    empty = tmp_path / "empty.config"
    empty.write_text("")
    cases.append((["--model-config-file", empty], "no models"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases.append((["--model", f"s={base}", "--rest-port", port],
                      f"--rest-port {port}: cannot listen on 127.0.0.1:"
                      f"{port} (Address already in use)"))
        for args, message in cases:
            result = serve(*args)
            assert result.exit_code == 1, (args, result.output)
            lines = result.output.strip().splitlines()
            assert lines and lines == [f"Error: {lines[0][7:]}"], (
                args, result.output, result.exception)
            assert message in lines[0], (args, result.output)


def test_serve_help_names_the_options():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--model-config-file", "--rest-port",
                   "--grpc-port", "--poll-seconds", "--max-batch-size",
                   "--batch-timeout-micros", "--max-enqueued-batches",
                   "--no-batching", "--max-body-bytes", "--no-log-requests"):
        assert option in result.output


def test_request_lines_are_logged(serving):
    serving.get("/v1/models/sentiment")
    assert serving.wait_for(lambda: "GET /v1/models/sentiment 200" in
                            serving.log(), timeout=10)


# -- property-based: the REST predict body ------------------------------------

JSON_LEAVES = st.one_of(
    st.text(max_size=20), st.integers(-2**70, 2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.none(),
    st.booleans(),
    st.builds(lambda b: {"b64": base64.b64encode(b).decode()},
              st.binary(max_size=8)))
JSON_VALUES = st.recursive(
    JSON_LEAVES, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(
            ["instances", "inputs", "signature_name", "text", "b64", "x"]),
            inner, max_size=3)),
    max_leaves=10)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(body=JSON_VALUES)
def test_any_json_body_gets_an_answer_or_a_status_never_a_crash(
        serving, exported_models, body):
    """Any JSON body to predict is answered (200, the Python API's
    predictions for texts) or refused (400 with one error), never a 500 or
    a hang; and the server keeps serving."""
    status, answer = serving.predict(
        "sentiment", json.dumps(body).encode("utf-8"))
    assert status in (200, 400), (status, answer)
    if status == 400:
        assert isinstance(answer, dict) and set(answer) == {"error"}
        return
    texts = body.get("instances") if isinstance(body, dict) else None
    if isinstance(texts, list) and texts and all(
            isinstance(t, str) for t in texts):
        records = exported_models.tasks["sentiment"].predict(texts)
        assert [p["label"] for p in answer["predictions"]] == [
            r["label"] or "" for r in records]


def test_the_server_logged_no_traceback(serving):
    assert "Traceback" not in serving.log()
