"""The Python API: nlpseq.train / nlpseq.load, task.predict / evaluate /
export, a quiet library, and the README's example run as written."""

import os
import re
import subprocess
import sys
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


def _python(code, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_readme_python_example_runs_quietly(tmp_path):
    """The README's example runs, and the library prints nothing of its
    own (no progress, no TensorFlow start-up or oneDNN notices): only the
    example's two prints."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "apps").symlink_to(ROOT / "apps")
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("[{'text': 'a good film', 'label': ")
    assert lines[1] in ("pos", "neg")
    assert len(list((tmp_path / "saved_models/sentiment-api/export").glob(
        "*/saved_model.pb"))) == 1
    # (the Quick start's model folder is not touched)
    assert not (tmp_path / "saved_models" / "sentiment").exists()
