"""The client examples of docs/serving.md, run against a server.

Each example is a fenced block after ``<!-- example: NAME -->``; the block
after ``<!-- output: NAME -->`` is what it printed with the quick-start
models. Run against the ``serving`` fixture's tiny models (the docs'
``localhost:8501`` and ``localhost:8500`` replaced by its ports), each
example's output must have the documented output's form, and its values
must be those of the exported SavedModel's signature called directly.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "serving.md"
BLOCK = r"<!-- {kind}: (\S+) -->\n```(\w*)\n(.*?)```"

SENTIMENT_TEXTS = [
    "Not tedious, not amateurish, just a haunting piece of filmmaking.",
    "The plot never goes anywhere."]
NER_TEXT = "Castillo told reporters in New Harbor that Northwind Bank had grown."
TRANSLATION_TEXT = "Zwei kleine Jungen essen einen Apfel im Schnee."
PROMPT = "on sunday i want"


def blocks(kind):
    text = DOC.read_text(encoding="utf-8")
    return {name: (language, code) for name, language, code in
            re.findall(BLOCK.format(kind=kind), text, re.S)}


EXAMPLES = blocks("example")
OUTPUTS = blocks("output")


def json_documents(text):
    """The JSON documents written one after the other in ``text``."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while text[at:].strip():
        at += len(text[at:]) - len(text[at:].lstrip())
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def same_form(documented, actual, where="output"):
    """Asserts that ``actual`` has the form of ``documented``: the same keys,
    lists where it has lists, and values of the same types (list lengths
    may differ: the models differ)."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        assert actual.keys() == documented.keys(), where
        for key in documented:
            same_form(documented[key], actual[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), where
        for i, (d, a) in enumerate(zip(documented, actual)):
            same_form(d, a, f"{where}[{i}]")
    elif isinstance(documented, (int, float)) and not isinstance(
            documented, bool):
        assert isinstance(actual, (int, float)) and not isinstance(
            actual, bool), where
    else:
        assert type(actual) is type(documented), where


@pytest.fixture(scope="module")
def reference(serving):
    """``reference(model, signature, **inputs)``: the outputs of the
    exported SavedModel's signature, called in this process."""
    import tensorflow as tf

    loaded = {}

    def run(model, signature="serving_default", **inputs):
        if model not in loaded:
            base = Path(serving.base_paths[model])
            version = max(int(p.name) for p in base.iterdir()
                          if p.name.isdigit())
            loaded[model] = tf.saved_model.load(str(base / str(version)))
        outputs = loaded[model].signatures[signature](
            **{name: tf.constant(value) for name, value in inputs.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    return run


def strings(array):
    return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(
        array).tolist()


def assert_rows(predictions, expected):
    """Row-format predictions against a signature's output arrays."""
    assert len(predictions) == len(next(iter(expected.values())))
    for i, row in enumerate(predictions):
        assert row.keys() == expected.keys()
        for name, array in expected.items():
            if array.dtype == object:
                assert row[name] == strings(array[i]), name
            else:
                np.testing.assert_allclose(row[name], array[i], rtol=1e-5,
                                           atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def run_example(serving):
    """``run_example(name)``: the example's stdout, run against the
    ``serving`` fixture's server."""
    rest = serving.rest_url.split("://", 1)[1]

    def run(name):
        language, code = EXAMPLES[name]
        code = code.replace("localhost:8501", rest).replace(
            "localhost:8500", serving.grpc_target)
        if language == "bash":
            if shutil.which("curl") is None:
                pytest.skip("the curl examples need curl")
            command = ["bash", "-c", "set -euo pipefail\n" + code]
        else:
            assert language == "python", name
            command = [sys.executable, "-c", code]
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def documented_json(name):
    return json_documents(OUTPUTS[name][1])


def test_every_example_has_its_output_and_its_check():
    assert EXAMPLES and EXAMPLES.keys() == OUTPUTS.keys()
    assert EXAMPLES.keys() == CHECKS.keys()
    assert "OUTPUT:" not in DOC.read_text(encoding="utf-8")


def check_curl_sentiment(output, reference):
    (answer,) = json_documents(output)
    assert_rows(answer["predictions"],
                reference("sentiment", text=SENTIMENT_TEXTS))
    return [answer]


def check_curl_ner(output, reference):
    (answer,) = json_documents(output)
    assert_rows(answer["predictions"], reference("ner", text=[NER_TEXT]))
    return [answer]


def check_curl_translation(output, reference):
    (answer,) = json_documents(output)
    assert_rows(answer["predictions"], reference(
        "translation", "translate_beam", text=[TRANSLATION_TEXT]))
    return [answer]


def check_curl_next_word(output, reference):
    words, generated = json_documents(output)
    assert_rows(words["predictions"], reference("next-word", text=[PROMPT]))
    assert_rows(generated["predictions"], reference(
        "next-word", "generate_greedy", text=[PROMPT]))
    return [words, generated]


def check_curl_generate(output, reference):
    (answer,) = json_documents(output)
    expected = reference(
        "next-word", "generate", text=[PROMPT], length=np.int32(6),
        strategy="sample", temperature=np.float32(0.8), top_k=np.int32(5),
        beam_width=np.int32(1), seed=np.int32(7))
    assert answer["outputs"]["text"] == strings(expected["text"])
    assert answer["outputs"]["tokens"] == strings(expected["tokens"])
    assert len(answer["outputs"]["tokens"][0]) == 6
    return [answer]


def check_curl_classify(output, reference):
    (answer,) = json_documents(output)
    expected = reference("sentiment", text=SENTIMENT_TEXTS)
    assert len(answer["results"]) == len(SENTIMENT_TEXTS)
    for result, names, row in zip(answer["results"],
                                  strings(expected["class_names"]),
                                  expected["probabilities"]):
        assert [label for label, _ in result] == names
        np.testing.assert_allclose([score for _, score in result], row,
                                   rtol=1e-5, atol=1e-6)
    return [answer]


def check_curl_status(output, reference):
    (answer,) = json_documents(output)
    assert answer == {"model_version_status": [{
        "version": "1", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}
    return [answer]


def check_curl_metadata(output, reference):
    (answer,) = json_documents(output)
    assert answer["model_spec"]["name"] == "sentiment"
    assert answer["model_spec"]["version"] == "1"
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert list(default["inputs"]) == ["text"]
    assert default["inputs"]["text"]["dtype"] == "DT_STRING"
    assert default["outputs"].keys() == reference(
        "sentiment", text=["x"]).keys()
    assert signatures["classification"]["method_name"] == \
        "tensorflow/serving/classify"
    return [answer]


def check_curl_error(output, reference):
    body, status = output.rsplit(" ", 1)
    (answer,) = json_documents(body)
    assert status.strip() == "404"
    assert answer.keys() == {"error"} and "9" in answer["error"]
    documented, documented_status = OUTPUTS["curl-error"][1].rsplit(" ", 1)
    assert documented_status.strip() == "404"
    return None


def sentiment_lines(expected):
    return [f"{label}\t{row.max():.4f}\t{text}" for text, label, row in zip(
        SENTIMENT_TEXTS, strings(expected["label"]),
        expected["probabilities"])]


def check_python_rest(output, reference):
    lines = output.splitlines()
    assert lines[:2] == sentiment_lines(
        reference("sentiment", text=SENTIMENT_TEXTS))
    ner = reference("ner", text=[NER_TEXT])
    count = int(ner["entity_count"][0])
    assert lines[2:] == [
        f"{kind}\t{start}-{end}\t{NER_TEXT[start:end]}"
        for kind, start, end in zip(strings(ner["entity_types"][0])[:count],
                                    ner["entity_starts"][0][:count],
                                    ner["entity_ends"][0][:count])]
    return None


def check_python_grpc(output, reference):
    lines = output.splitlines()
    assert lines == ["version 1"] + sentiment_lines(
        reference("sentiment", text=SENTIMENT_TEXTS)) + ["1 AVAILABLE"]
    documented = OUTPUTS["python-grpc"][1].splitlines()
    assert documented[0] == "version 1" and documented[-1] == "1 AVAILABLE"
    return None


def check_python_grpc_classify(output, reference):
    assert output.splitlines() == sentiment_lines(
        reference("sentiment", text=SENTIMENT_TEXTS))
    return None


CHECKS = {
    "curl-sentiment": check_curl_sentiment,
    "curl-ner": check_curl_ner,
    "curl-translation": check_curl_translation,
    "curl-next-word": check_curl_next_word,
    "curl-generate": check_curl_generate,
    "curl-classify": check_curl_classify,
    "curl-status": check_curl_status,
    "curl-metadata": check_curl_metadata,
    "curl-error": check_curl_error,
    "python-rest": check_python_rest,
    "python-grpc": check_python_grpc,
    "python-grpc-classify": check_python_grpc_classify,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example(name, run_example, reference):
    answers = CHECKS[name](run_example(name), reference)
    if answers is not None:  # JSON: the documented output has its form
        documented = documented_json(name)
        assert len(documented) == len(answers)
        for doc, answer in zip(documented, answers):
            same_form(doc, answer)
