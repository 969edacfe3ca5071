"""Property-based tests of the input surfaces (Hypothesis): random Unicode
and byte strings, numbers (NaN and infinities included), nested and empty
structures thrown at ``Task.predict`` and at the settings parser only ever
give the right result or the documented error — never another exception,
and for text the command line's answer. (The REST predict body's are in
``test_server.py``, beside the server they use.) The examples are bounded
so the suite keeps its time."""

import json
import math
import string

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlpseq
from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.registry import APPS

#: Anything a caller could pass where texts are expected.
LEAVES = st.one_of(
    st.text(max_size=20), st.binary(max_size=10), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.none(),
    st.booleans())
VALUES = st.recursive(
    LEAVES, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
#: Texts of every kind: any Unicode (lone surrogates excluded: a str
#: that cannot be UTF-8, refused by its own test), whitespace, markup.
TEXTS = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    st.text(" \t\n\u00a0\u3000\u2028", max_size=5),
    st.text(string.printable, max_size=40))
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny sentiment model in a model folder (for the command line)."""
    folder = tmp_path_factory.mktemp("properties") / "sentiment"
    return nlpseq.train("sentiment", model_dir=folder, units=4,
                        embedding_dim=4, epochs=1, batch_size=16, seed=2)


def is_text_list(value):
    return isinstance(value, (list, tuple)) and all(
        isinstance(v, str) for v in value)


@SETTINGS
@given(value=VALUES)
def test_predict_gives_records_or_the_documented_error(model, value):
    try:
        result = model.predict(value)
    except NlpseqError as error:
        assert not (isinstance(value, str) or is_text_list(value)), error
        assert "\n" not in str(error)
        return
    if isinstance(value, str):
        assert result["text"] == value
    else:
        assert is_text_list(value)
        assert [r["text"] for r in result] == list(value)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXTS.filter(lambda t: "\n" not in t and "\r" not in
                                   t and "\x0b" not in t and "\x0c" not in t
                                   and "\x1c" not in t and "\x1d" not in t
                                   and "\x1e" not in t and "\x85" not in t
                                   and "\u2028" not in t
                                   and "\u2029" not in t),
                      min_size=1, max_size=4))
def test_predict_answers_as_the_command_line(model, tmp_path, texts):
    """The same texts, one per line of ``--input``, get the same records
    from ``nlpseq sentiment predict --format jsonl``."""
    path = tmp_path / "inputs.txt"
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    result = CliRunner().invoke(cli, [
        "sentiment", "predict", "--model-dir", str(model.folder.path),
        "--input", str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = model.predict(texts)
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected):
        assert got["text"] == want["text"]
        assert got["label"] == want["label"]
        if want["probability"] is None:
            assert got["probability"] is None
        else:
            assert got["probability"] == pytest.approx(want["probability"],
                                                       abs=1e-6)


@SETTINGS
@given(name=st.sampled_from(sorted(
    s.name for s in APPS.get("sentiment").all_settings())),
    value=VALUES)
def test_the_settings_parser_takes_or_names_what_is_wrong(name, value):
    """A setting given any value is taken, checked (a finite number in its
    range, a choice...), or refused with one line naming it."""
    cls = APPS.get("sentiment")
    try:
        config = cls.effective_config({name: value})
    except NlpseqError as error:
        assert "\n" not in str(error)
        assert name in str(error) or name.replace("_", "-") in str(error)
        return
    taken = config[name]
    if isinstance(taken, float):
        assert math.isfinite(taken)
    if isinstance(taken, str) and value is not None:
        assert taken.strip()


@SETTINGS
@given(entries=st.dictionaries(st.text(string.ascii_lowercase + "_-",
                                       min_size=1, max_size=12), VALUES,
                               max_size=4))
def test_a_config_file_of_anything_is_taken_or_one_line(tmp_path_factory,
                                                        entries):
    cls = APPS.get("sentiment")
    # (YAML reads JSON: any JSON value is a YAML config file)
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    try:
        text = json.dumps(entries, allow_nan=False)
    except (TypeError, ValueError):
        return  # (bytes, NaN: not JSON)
    path.write_text(text)
    try:
        cls.effective_config({}, str(path))
    except NlpseqError as error:
        assert "\n" not in str(error)
