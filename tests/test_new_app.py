"""A new app in an existing family is its declaration and one registry
line: registered here (and nowhere else), it trains from the command line,
predicts, writes its report, exports as a SavedModel and as ONNX, and the
demo page of ``nlpseq serve`` gives it its family's panel with its own
example text, without a line of the library, the server or the tests
naming it."""

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nlpseq.cli import cli
from nlpseq.registry import APPS
from nlpseq.tasks.classifier import ClassifierTask
from nlpseq.tasks.settings import with_defaults

DATA = Path(__file__).resolve().parents[1] / "apps" / "data"


class Reviews(ClassifierTask):
    """A throwaway app: the sentiment sample under another name."""

    name = "reviews-throwaway"
    default_data = DATA / "sentiment_sample.csv"
    default_valid = DATA / "sentiment_valid.csv"
    predict_example = "a fine review"
    demo_example = "a throwaway review for the demo page"
    settings = with_defaults(ClassifierTask.settings, units=4,
                             embedding_dim=4, bigram_buckets=0)
    common_defaults = {"epochs": 1}


@pytest.fixture(scope="module")
def registered():
    APPS.register(Reviews.name, Reviews)
    try:
        yield Reviews
    finally:
        del APPS._entries[Reviews.name]


@pytest.fixture(scope="module")
def trained(registered, tmp_path_factory):
    folder = tmp_path_factory.mktemp("throwaway") / "model"
    result = CliRunner().invoke(cli, [
        Reviews.name, "train", "--model-dir", str(folder), "--seed", "1"])
    assert result.exit_code == 0, result.output
    return folder


def test_the_declaration_trains_and_predicts_from_the_command_line(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["app"] == Reviews.name
    result = CliRunner().invoke(cli, [
        Reviews.name, "predict", "--model-dir", str(trained), "--format",
        "json", "great film", "dull film"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [r["label"] in ("neg", "pos") for r in records] == [True, True]


def test_its_report_has_the_familys_sections(trained):
    html = (trained / "report.html").read_text(encoding="utf-8")
    assert Reviews.name in html
    # (the classifier's sections, from the family's report hook)
    assert 'id="confusion"' in html or "Confusion" in html


def test_its_savedmodel_names_the_familys_panel_and_its_example(trained):
    import nlpseq

    path = nlpseq.load(trained).export()
    info = json.loads((path / "assets.extra" / "nlpseq.json").read_text())
    assert info["app"] == Reviews.name and info["family"] == "classifier"
    assert info["demo"] == {"panel": "classifier",
                            "example": Reviews.demo_example}


def test_the_demo_page_lists_it_with_its_panel(trained, tmp_path):
    """The server (a process where the app is not registered) reads the
    panel from the export alone."""
    from server_helpers import start_server

    import nlpseq

    base = tmp_path / "serving"
    nlpseq.load(trained).export(base)
    with start_server({"reviews": base}, grpc=False,
                      log_dir=tmp_path) as server:
        status, body = server.get("/nlpseq/v1/models")
    assert status == 200
    (model,) = body["models"]
    assert (model["app"], model["panel"], model["example"]) == (
        Reviews.name, "classifier", Reviews.demo_example)


@pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is None,
                    reason="needs the onnx extra (pip install 'nlpseq[onnx]')")
def test_its_onnx_export_gives_the_models_outputs(trained, tmp_path):
    import numpy as np
    import onnxruntime

    import nlpseq
    from nlpseq.onnx_runtime import read_export

    task = nlpseq.load(trained)
    export = read_export(task.export(tmp_path / "onnx", format="onnx"))
    assert export.app == Reviews.name and export.family == "classifier"
    ids = export.encoders["encoder"](["great film", "dull and boring film"])
    session = onnxruntime.InferenceSession(str(export.model_path))
    (got,) = session.run(None, {export.inputs[0]: ids})
    np.testing.assert_allclose(
        got, np.asarray(task.model(ids, training=False)), rtol=0, atol=1e-5)


def test_an_export_without_its_panel_gets_its_apps_or_familys():
    """Exports written before nlpseq.json named the panel: the server asks
    the registry for the app's, else for an app of the same family."""
    from nlpseq.server.manager import registered_demo

    sentiment = APPS.get("sentiment")
    assert registered_demo("sentiment", "classifier") == {
        "panel": "classifier", "example": sentiment.demo_example}
    assert registered_demo("an-old-tagger", "tagger") == {
        "panel": "ner", "example": APPS.get("ner").demo_example}
    assert registered_demo(None, None) == {}
    assert registered_demo("unknown", "unknown") == {}
