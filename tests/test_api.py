"""The Python API: nlpseq.train / nlpseq.load, task.predict / evaluate /
export and errors (the README's example, run as written, is in
test_readme.py)."""

import re
from pathlib import Path

import pytest

import nlpseq
from nlpseq.errors import NlpseqError

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(units=4, embedding_dim=4, batch_size=16, epochs=1, seed=2)


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api") / "sentiment"
    return nlpseq.train("sentiment", model_dir=folder, **TINY), folder


def test_predict_takes_a_list_or_one_text(sentiment):
    task, _ = sentiment
    records = task.predict(["a good film", "a bad film"])
    assert [r["text"] for r in records] == ["a good film", "a bad film"]
    one = task.predict("ab")  # one text, not one record per character
    assert isinstance(one, dict) and one["text"] == "ab"
    assert task("ab") == one
    assert task.predict(["ab"]) == [one]
    assert list(task.predict_stream(iter(["ab"] * 3), chunk=2)) == [one] * 3
    with pytest.raises(TypeError, match="iterable of strings"):
        list(task.predict_stream("ab"))


def test_load_finds_the_app_from_the_folder(sentiment):
    task, folder = sentiment
    loaded = nlpseq.load(folder)
    assert type(loaded).name == "sentiment"
    assert loaded.predict("a good film") == task.predict("a good film")
    metrics = loaded.evaluate(str(ROOT / "apps/data/sentiment_valid.csv"))
    assert metrics["count"] == 50 and 0.0 <= metrics["accuracy"] <= 1.0


def test_export_from_the_api(sentiment, tmp_path):
    import tensorflow as tf

    task, _ = sentiment
    path = task.export(tmp_path / "served", version=3)
    assert path == tmp_path / "served" / "3"
    served = tf.saved_model.load(str(path)).signatures["serving_default"](
        text=tf.constant(["a good film"]))
    assert served["label"].numpy()[0].decode() == \
        task.predict("a good film")["label"]


@pytest.mark.parametrize("call, message", [
    (lambda: nlpseq.train("frobnicate"), "unknown app 'frobnicate'"),
    (lambda: nlpseq.train("sentiment", unitz=3),
     "unknown setting 'unitz' for the 'sentiment' app"),
    (lambda: nlpseq.train("sentiment", units=-3), "--units"),
    (lambda: nlpseq.load("/nonexistent/model"),
     "Model folder not found: /nonexistent/model"),
])
def test_errors_are_nlpseq_errors(call, message):
    with pytest.raises(NlpseqError, match=re.escape(message)):
        call()
