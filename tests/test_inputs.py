"""The Python API's input contract (``nlpseq.inputs``): every entry
point checks its arguments at the door, and a bad one is one
``NlpseqError`` naming the call, the argument and what was expected (a
``NlpseqTypeError``, also a ``TypeError``, for a wrong type); nothing is
predicted, read or written before."""

import math
import re
from pathlib import Path

import pytest
from server_helpers import tiny_task

import nlpseq
from nlpseq.errors import NlpseqError, NlpseqTypeError

ROOT = Path(__file__).resolve().parents[1]
VALID = str(ROOT / "apps" / "data" / "sentiment_valid.csv")


@pytest.fixture(scope="module")
def task():
    return tiny_task("sentiment")


@pytest.mark.parametrize("texts, message", [
    ({"text": "x"}, "predict: texts is a dict; expected a str or a list"),
    (b"great film", "predict: texts is bytes (decode them first"),
    (bytearray(b"x"), "predict: texts is bytes"),
    (None, "predict: texts is None; expected a str or a list"),
    (3, "predict: texts is int; expected"),
    (math.nan, "predict: texts is float; expected"),
    ([["a"]], "predict: input 1 is list; expected a str"),
    (["fine", None], "predict: input 2 is None; expected a str"),
    (["fine", b"x"], "predict: input 2 is bytes"),
    (("a", 1.5), "predict: input 2 is float"),
])
def test_predict_refuses_what_is_not_text(task, texts, message):
    with pytest.raises(NlpseqTypeError, match=re.escape(message)):
        task.predict(texts)


def test_predict_names_itself_for_one_bad_text(task):
    # (a lone surrogate, as a bad decode leaves, is no UTF-8 text)
    with pytest.raises(NlpseqError, match=r"^predict: input 1 is not valid "
                                          r"Unicode text"):
        task.predict("a\ud800b")
    # (an NlpseqError, and the TypeError Python code expects)
    assert issubclass(NlpseqTypeError, NlpseqError)
    assert issubclass(NlpseqTypeError, TypeError)


def test_predict_takes_any_iterable_of_str(task):
    expected = task.predict(["a good film", "dull"])
    assert task.predict(("a good film", "dull")) == expected
    assert task.predict(t for t in ["a good film", "dull"]) == expected
    assert task.predict("a good film") == expected[0]
    assert task.predict([]) == []


def test_nothing_is_predicted_before_a_bad_input(task, monkeypatch):
    called = []
    monkeypatch.setattr(type(task), "predict_lines",
                        lambda self, lines: called.append(lines) or [])
    with pytest.raises(NlpseqTypeError, match="input 3"):
        task.predict(["a", "b", 3])
    assert called == []


def test_predict_stream_predicts_what_came_before_a_bad_input(task):
    stream = task.predict_stream(iter(["a good film", "dull", 7, "more"]),
                                 chunk=2)
    got = [next(stream), next(stream)]
    assert [r["text"] for r in got] == ["a good film", "dull"]
    with pytest.raises(NlpseqTypeError, match="predict_stream: input 3 is "
                                              "int; expected a str"):
        next(stream)


@pytest.mark.parametrize("call, message", [
    (lambda t: list(t.predict_stream("ab")),
     "predict_stream takes an iterable of strings; use predict()"),
    (lambda t: list(t.predict_stream(None)),
     "predict_stream: lines is None; expected an iterable of str"),
    (lambda t: list(t.predict_stream(["a"], chunk=0)),
     "predict_stream: chunk is 0; expected at least 1"),
    (lambda t: list(t.predict_stream(["a"], chunk="2")),
     "predict_stream: chunk is str; expected an integer"),
])
def test_predict_stream_checks_its_arguments(task, call, message):
    with pytest.raises(NlpseqError, match=re.escape(message)):
        call(task)


def test_unknown_keywords_are_refused_with_the_known_ones(task):
    with pytest.raises(NlpseqError, match=re.escape(
            "sentiment predict: unknown option 'temprature'; known options: "
            "none")):
        task.predict(["a"], temprature=0.5)
    generator = tiny_task("next-word")
    with pytest.raises(NlpseqError, match=re.escape(
            "next-word predict: unknown option 'temprature'; known options: "
            "")) as caught:
        generator.predict(["a"], temprature=0.5)
    assert "top_k" in str(caught.value)
    # (a known one still works, for that call only)
    assert len(generator.predict("the", top_k=2)["next"]) == 2


@pytest.mark.parametrize("call, message", [
    (lambda t: t.evaluate(None),
     "evaluate: data is None; expected a path"),
    (lambda t: t.evaluate(3), "evaluate: data is int; expected a path"),
    (lambda t: t.evaluate(""), "evaluate: data is empty; expected a path"),
    (lambda t: t.evaluate(b"x.csv"), "evaluate: data is bytes"),
    (lambda t: t.evaluate(["a good film"]),
     "evaluate: data is list; expected a path (a data SPEC) or data read "
     "by the task's read_data()"),
    (lambda t: t.evaluate({"text": ["a"], "label": ["pos"]}),
     "evaluate: data is a dict; expected a path"),
    (lambda t: t.export(output=3), "export: output is int; expected a path"),
    (lambda t: t.export(output="x", version=0),
     "export: version is 0; expected at least 1"),
    (lambda t: t.export(output="x", version=True),
     "export: version is bool; expected an integer"),
    (lambda t: t.export(output="x", version="2"),
     "export: version is str; expected an integer"),
])
def test_evaluate_and_export_check_their_arguments(task, tmp_path, call,
                                                  message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NlpseqError, match=re.escape(message)):
        call(task)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call, message", [
    (lambda: nlpseq.load(None), "load: path is None; expected a path"),
    (lambda: nlpseq.load(""), "load: path is empty; expected a path"),
    (lambda: nlpseq.load(42), "load: path is int; expected a path"),
    (lambda: nlpseq.train("sentiment", config=42),
     "train: config is int; expected a path"),
    (lambda: nlpseq.train("sentiment", data=""),
     "train: data is empty; expected a path"),
    (lambda: nlpseq.train("sentiment", model_dir=["m"]),
     "train: model_dir is list; expected a path"),
    (lambda: nlpseq.train("sentiment", resume="yes"),
     "train: resume is str; expected True or False"),
    (lambda: nlpseq.train("sentiment", verbose=5),
     "train: verbose is 5; expected from 0 to 2"),
    (lambda: nlpseq.train(None), "app is None; expected an app's name, one "
                                 "of: "),
    (lambda: nlpseq.train(["sentiment"]), "app is list; expected"),
    (lambda: nlpseq.train("sentiment", init_from=""),
     "init_from is empty; expected a value (or leave the option out)"),
])
def test_load_and_train_check_their_arguments(tmp_path, monkeypatch, call,
                                              message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NlpseqError, match=re.escape(message)):
        call()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_init_from_on_the_command_line(tmp_path):
    """``--init-from "$LM"`` with ``LM`` unset is refused, not a
    from-scratch model published without a word."""
    from click.testing import CliRunner

    from nlpseq.cli import cli

    result = CliRunner().invoke(cli, [
        "sentiment", "train", "--init-from", "", "--model-dir",
        str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --init-from: init_from is empty; expected a value (or leave "
        "the option out)"]
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def generator():
    return tiny_task("next-word")


@pytest.mark.parametrize("settings, message", [
    (dict(prompt=None), "generate: prompt is None; expected a str"),
    (dict(prompt=b"the"), "generate: prompt is bytes"),
    (dict(prompt="the\ud800"), "generate: input 1 is not valid Unicode text"),
    (dict(length=0), "length must be >= 1, got 0"),
    (dict(length="5"), "length must be"),
    (dict(strategy="best"), "strategy must be one of greedy, sample, beam"),
    (dict(temperature=math.nan), "temperature must be a finite number"),
    (dict(top_k=-1), "top_k must be >= 0"),
])
def test_generate_checks_its_settings_as_the_command_does(generator,
                                                          settings, message):
    with pytest.raises(NlpseqError, match=re.escape(message)):
        generator.generate(**settings)


def test_generate_with_good_settings(generator):
    text, tokens = generator.generate("the", length=3, strategy="sample",
                                      temperature=0.5, seed=1)
    assert isinstance(text, str) and len(tokens) == 3


@pytest.mark.parametrize("call, message", [
    (lambda t: t.report(output=3), "report: output is int; expected a path"),
    (lambda t: t.report(data=2.5), "report: data is float; expected a path"),
    (lambda t: t.report(data=""), "report: data is empty; expected a path"),
])
def test_report_checks_its_arguments(task, call, message):
    with pytest.raises(NlpseqError, match=re.escape(message)):
        call(task)
