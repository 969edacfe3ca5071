"""``nlpseq serve`` run as an operator runs TensorFlow Serving: its command
line (the flags of TensorFlow Serving's Docker entrypoint and of its
configuration guide, unchanged but for the ports), request deadlines and
gone clients, Prometheus metrics, the model config file re-read while
serving, ``HandleReloadConfigRequest``, and readiness."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import threading
import time

import grpc
import numpy as np
import pytest
from server_helpers import free_port, start_server, tiny_task
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

#: A generation that keeps the tiny next-word model busy for seconds.
LONG = 6000
METRICS = "/monitoring/prometheus/metrics"


def generate_body(length):
    return {"signature_name": "generate", "inputs": {
        "text": ["the"], "length": length, "strategy": "greedy",
        "temperature": 1.0, "top_k": 0, "beam_width": 1, "seed": 0}}


def model_config(models, labels=None):
    """A model config file's text: ``models`` ``{name: base path}``,
    ``labels`` ``{name: {label: version}}``."""
    entries = []
    for name, base in models.items():
        label_text = "".join(
            f' version_labels {{ key: "{k}" value: {v} }}'
            for k, v in (labels or {}).get(name, {}).items())
        policy = (' model_version_policy { all {} }'
                  if (labels or {}).get(name) else "")
        entries.append(f'  config {{ name: "{name}" base_path: "{base}" '
                       f'model_platform: "tensorflow"{policy}{label_text} }}')
    return "model_config_list {\n" + "\n".join(entries) + "\n}\n"


@pytest.fixture(scope="module")
def operated(exported_models, tmp_path_factory):
    """A server started with TensorFlow Serving's flags: a model config
    file re-read every second (sentiment with versions 1 and 2, ``stable``
    on 1; next-word exported to allow long generations), batching
    parameters and monitoring config files, a 500 ms REST timeout."""
    root = tmp_path_factory.mktemp("operated")
    sentiment = root / "sentiment"
    shutil.copytree(exported_models.base_paths["sentiment"] / "1",
                    sentiment / "1")
    tiny_task("sentiment", seed=7).export(sentiment, version=2)
    next_word = root / "next-word"
    tiny_task("next-word").export(next_word, version=1,
                                  max_generate_length=10 * LONG)
    models = {"sentiment": sentiment, "next-word": next_word}
    config = root / "models.config"
    config.write_text(model_config(models, {"sentiment": {"stable": 1}}))
    batching = root / "batching.config"
    batching.write_text("max_batch_size { value: 32 }\n"
                        "batch_timeout_micros { value: 1000 }\n"
                        "max_enqueued_batches { value: 100 }\n"
                        "num_batch_threads { value: 4 }\n")
    monitoring = root / "monitoring_config.txt"
    monitoring.write_text('prometheus_config {\n  enable: true,\n  path: '
                          '"/monitoring/prometheus/metrics"\n}\n')
    rest, grpc_port = free_port(), free_port()
    # TensorFlow Serving's Docker entrypoint, then its guide's flags
    flags = [f"--port={grpc_port}", f"--rest_api_port={rest}",
             "--model_name=sentiment", f"--model_base_path={sentiment}",
             f"--model_config_file={config}",
             "--model_config_file_poll_wait_seconds=1",
             f"--monitoring_config_file={monitoring}",
             "--enable_batching=true",
             f"--batching_parameters_file={batching}",
             "--rest_api_timeout_in_ms=500",
             "--file_system_poll_wait_seconds=1"]
    server = start_server(args=flags, log_dir=root / "log",
                          ports=(rest, grpc_port))
    server.config, server.models, server.root = config, models, root
    yield server
    server.stop()


def metric(server, name, **labels):
    """The sum of the metric samples ``name`` with ``labels`` (0 when
    none)."""
    status, text = server.get(METRICS, raw=True)
    assert status == 200
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(r"([^{ ]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            total += float(match.group(3))
    return total


def batcher(server, model, signature):
    (entry,) = [b for b in server.get("/nlpseq/v1/batching")[1]["batchers"]
                if b["model"] == model and b["signature"] == signature]
    return entry


def test_tensorflow_servings_command_line_runs(operated):
    log = operated.log()
    assert "--model-name and --model-base-path are ignored" in log
    assert "num_batch_threads left aside" in log
    (entry,) = [b for b in operated.get("/nlpseq/v1/batching")[1][
        "batchers"] if b["model"] == "sentiment" and b["version"] == "2"
        and b["signature"] == "serving_default"]
    assert entry["merges"] is True
    status, body = operated.predict("sentiment", {"instances": ["fine"]},
                                    "/labels/stable")
    assert status == 200 and body["predictions"][0]["label"] in ("neg", "pos")
    channel = grpc.insecure_channel(operated.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "sentiment"
    request.inputs["text"].CopyFrom(
        __import__("tensorflow").make_tensor_proto(["fine"]))
    response = stub.Predict(request, timeout=30)
    assert response.model_spec.version.value == 2


def test_a_request_past_its_deadline_is_answered_504_and_never_run(operated):
    """A generation of LONG tokens holds the generate signature's worker;
    a small request queued behind it is answered DEADLINE_EXCEEDED after
    the 500 ms timeout, and is dropped: the model never runs it."""
    before = batcher(operated, "next-word", "generate")["requests"]
    dropped = metric(operated, "nlpseq:serving:dropped_requests_total",
                     model_name="next-word", signature_name="generate")
    long = threading.Thread(target=operated.post, args=(
        "/v1/models/next-word:predict", generate_body(LONG)))
    long.start()
    time.sleep(0.2)
    started = time.monotonic()
    status, body = operated.post("/v1/models/next-word:predict",
                                 generate_body(3))
    took = time.monotonic() - started
    long.join(60)
    assert status == 504, body
    assert body["error"].startswith("Deadline exceeded")
    assert took < 5, took
    assert operated.wait_for(lambda: batcher(
        operated, "next-word", "generate")["requests"] - before == 1,
        timeout=30)
    assert operated.wait_for(lambda: metric(
        operated, "nlpseq:serving:dropped_requests_total",
        model_name="next-word", signature_name="generate") - dropped == 1,
        timeout=30)
    assert metric(operated, ":tensorflow:serving:request_count_total",
                  model_name="next-word", signature_name="generate",
                  status="DEADLINE_EXCEEDED") >= 2  # (the long one too)


def test_a_gone_client_is_dropped_from_the_queue(operated):
    before = batcher(operated, "next-word", "generate")["requests"]
    cancelled = metric(operated, ":tensorflow:serving:request_count_total",
                       model_name="next-word", signature_name="generate",
                       status="CANCELLED")
    long = threading.Thread(target=operated.post, args=(
        "/v1/models/next-word:predict", generate_body(LONG)))
    long.start()
    time.sleep(0.2)
    body = json.dumps(generate_body(3)).encode()
    with socket.create_connection(("127.0.0.1", operated.rest_port)) as sock:
        sock.sendall(b"POST /v1/models/next-word:predict HTTP/1.1\r\n"
                     b"Host: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n" + body)
        time.sleep(0.1)
    long.join(60)
    assert operated.wait_for(lambda: metric(
        operated, ":tensorflow:serving:request_count_total",
        model_name="next-word", signature_name="generate",
        status="CANCELLED") - cancelled == 1, timeout=30)
    assert operated.wait_for(lambda: batcher(
        operated, "next-word", "generate")["requests"] - before == 1,
        timeout=30)


def test_a_grpc_deadline_drops_the_request(operated):
    import tensorflow as tf

    before = batcher(operated, "next-word", "generate")["requests"]
    long = threading.Thread(target=operated.post, args=(
        "/v1/models/next-word:predict", generate_body(LONG)))
    long.start()
    time.sleep(0.2)
    channel = grpc.insecure_channel(operated.grpc_target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "next-word"
    request.model_spec.signature_name = "generate"
    for key, value in generate_body(3)["inputs"].items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(
            value, dtype=tf.float32 if key == "temperature" else None))
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=0.3)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    long.join(60)
    assert operated.wait_for(lambda: batcher(
        operated, "next-word", "generate")["requests"] - before == 1,
        timeout=30)
    time.sleep(0.5)
    assert batcher(operated, "next-word", "generate")["requests"] - \
        before == 1


def test_prometheus_metrics_move_with_the_requests(operated):
    def ok():
        return metric(operated, ":tensorflow:serving:request_count_total",
                      model_name="sentiment", signature_name="serving_default",
                      status="OK")

    def bad():
        return metric(operated, ":tensorflow:serving:request_count_total",
                      model_name="sentiment", status="INVALID_ARGUMENT")

    counts = (ok(), bad(), metric(
        operated, ":tensorflow:serving:request_latency_count",
        model_name="sentiment", API="predict", entrypoint="REST"), metric(
        operated, ":tensorflow:serving:batching_session:"
        "processed_batch_size_count", model_name="sentiment",
        signature_name="serving_default"))
    assert operated.predict("sentiment", {"instances": ["a", "b"]})[0] == 200
    assert operated.predict("sentiment", {"instances": [1]})[0] == 400
    after = (ok(), bad(), metric(
        operated, ":tensorflow:serving:request_latency_count",
        model_name="sentiment", API="predict", entrypoint="REST"), metric(
        operated, ":tensorflow:serving:batching_session:"
        "processed_batch_size_count", model_name="sentiment",
        signature_name="serving_default"))
    assert np.subtract(after, counts).tolist() == [1, 1, 2, 1]
    assert metric(operated, ":tensorflow:cc:saved_model:"
                  "load_attempt_count_total", status="success") >= 3
    assert metric(operated, "nlpseq:serving:model_version_state",
                  model_name="sentiment", version=2, state="AVAILABLE") == 1
    assert metric(operated, "process_resident_memory_bytes") > 1e7
    status, text = operated.get(METRICS, raw=True)
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text


def label_version(server, label="stable"):
    status, body = server.get(f"/v1/models/sentiment/labels/{label}")
    return status == 200 and body["model_version_status"][0]["version"]


def test_the_config_file_is_reread_and_a_bad_one_is_refused(operated):
    assert label_version(operated) == "1"
    operated.config.write_text(model_config(
        operated.models, {"sentiment": {"stable": 2}}))
    assert operated.wait_for(lambda: label_version(operated) == "2",
                             timeout=30), operated.log()[-2000:]
    operated.config.write_text("model_config_list { config { name: ")
    assert operated.wait_for(lambda: "was not applied" in operated.log(),
                             timeout=30)
    assert label_version(operated) == "2"
    assert operated.predict("sentiment", {"instances": ["x"]})[0] == 200


def test_handle_reload_config_request(operated, exported_models):
    channel = grpc.insecure_channel(operated.grpc_target)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)

    def reload(models, labels=None):
        request = model_management_pb2.ReloadConfigRequest()
        from google.protobuf import text_format

        text_format.Parse(model_config(models, labels), request.config)
        return stub.HandleReloadConfigRequest(request, timeout=60)

    models = dict(operated.models, ner=exported_models.base_paths["ner"])
    response = reload(models, {"sentiment": {"stable": 1}})
    assert response.status.error_code == 0, response
    status, body = operated.predict("ner", {"instances": ["Anna lives"]})
    assert status == 200, body
    assert label_version(operated) == "1"
    response = reload(models, {"sentiment": {"ghost": 7}})
    assert response.status.error_code == 3  # INVALID_ARGUMENT
    assert "version label 'ghost' names version 7, which is not in" in \
        response.status.error_message
    assert label_version(operated) == "1"  # (the old config serves on)
    response = reload({"sentiment": operated.models["sentiment"]})
    assert response.status.error_code == 0
    assert operated.predict("ner", {"instances": ["x"]})[0] == 404
    assert operated.predict("next-word", {"instances": ["x"]})[0] == 404
    assert operated.predict("sentiment", {"instances": ["x"]})[0] == 200
    assert "Unloaded model ner version 1" in operated.log()


# -- readiness (the manager alone, no server) --------------------------------------

class FakeVersion:
    def __init__(self, state, error=None):
        self.state, self.error = state, error


def test_readiness_waits_for_labelled_and_specific_versions(tmp_path):
    from nlpseq.server.manager import AVAILABLE, LOADING, ModelConfig, ModelManager

    config = ModelConfig("m", tmp_path, ("specific", frozenset({1, 2})),
                         {"stable": 2})
    manager = ModelManager([config])
    model = manager.models["m"]
    model.versions = {1: FakeVersion(AVAILABLE), 2: FakeVersion(LOADING)}
    model.wanted = {1, 2}
    model.refresh()
    assert manager.not_ready() == {
        "m": "version label 'stable' names version 2, still LOADING"}
    model.config = ModelConfig("m", tmp_path, config.policy, {})
    assert manager.not_ready() == {"m": "version 2 still LOADING"}
    model.versions[2] = FakeVersion(AVAILABLE)
    model.refresh()
    assert manager.not_ready() == {}
    model.config = ModelConfig("m", tmp_path, ("latest", 1), {"next": 3})
    assert manager.not_ready() == {
        "m": "version label 'next' names version 3, not loaded yet"}


def test_ready_only_once_the_labelled_version_is_loaded(exported_models,
                                                        tmp_path):
    """/readyz says 503 until the version a label names is AVAILABLE, even
    when another version of the model already serves."""
    base = tmp_path / "m"
    shutil.copytree(exported_models.base_paths["sentiment"] / "1",
                    base / "1")
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" '
        'model_version_policy { specific { versions: 1 versions: 2 } } '
        'version_labels { key: "stable" value: 2 } } }')
    from server_helpers import ServerProcess

    server = ServerProcess(args=[
        "--model-config-file", config,
        "--allow_version_labels_for_unavailable_models"], grpc=False,
        log_dir=tmp_path)
    try:
        assert server.wait_for(lambda: _predict(server) == 200, timeout=120)
        status, body = server.get("/readyz")
        assert status == 503
        assert body["models"]["m"] == ("version label 'stable' names "
                                       "version 2, not loaded yet")
        shutil.copytree(base / "1", base / "2")
        server.wait_ready(60)
        assert server.predict("m", {"instances": ["x"]}, "/labels/stable"
                              )[0] == 200
        # an idle server stops at once (measured 0.24 s; it took seconds
        # in TensorFlow's and gRPC's teardown before it ended itself)
        started = time.monotonic()
        server.terminate()
        assert server.process.wait(30) == 0
        assert time.monotonic() - started < 2.0, server.log()
        assert server.log().rstrip().endswith("Stopped")
    finally:
        server.stop()


def _predict(server):
    """The status of a predict request to model ``m`` (``None``: no
    answer yet)."""
    try:
        return server.predict("m", {"instances": ["x"]})[0]
    except (OSError, http.client.HTTPException):
        return None
