"""ONNX export (``export --format onnx``): every app's model converts and
onnxruntime gives the Keras model's outputs; the pure-Python tokenizer of
:mod:`nlpseq.onnx_runtime` gives TextEncoder's and TokenEncoder's ids."""

import json

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.onnx_runtime import TextTokenizer, TokenTokenizer, read_export
from nlpseq.registry import APPS
from nlpseq.text import TextEncoder, TokenEncoder

# -- the pure-Python tokenizer (no extra needed) -------------------------------

TEXTS = [
    "A good film.<br /><br />Really GOOD!",
    "don't 'quote' it's the actors' best, isn't it?",
    "  leading\tand trailing\nspaces  ",
    "ÉCOLE Straße İstanbul ΟΔΟΣ Σ ǅ",
    "3.5/10 -- 100% (ok); e-mail: a@b.c #tag",
    "<BR>break< br />another<br/>x<b>bold</b>",
    "emoji 😀 and ‘curly’ “quotes” … — dash",
    "vertical\vtab and\u00a0nbsp\u2003em-space",
    "'",
    "",
    "   ",
    "x'",
    "'x",
    "中文字符，标点。日本語",
    "Ünïcödé ÀÉÎ 123 ٣٤ Ⅻ",
]

VOCABULARY = ["", "[UNK]", "a", "good", "film", ".", "!", "don't", "'", "it's",
              "?", "école", "straße", "i", "ο", "σ", "😀", "x", "<", ">", "b",
              "3", "5", "/", "10", "spaces", "tab", "and", "is", "中"]


@pytest.mark.parametrize("options", [
    {},
    {"max_length": 3},
    {"max_length": 3, "truncate": "pre"},
    {"lowercase": False},
    {"strip_html": False},
    {"split_punctuation": False},
    {"split": "characters", "max_length": 12, "truncate": "pre"},
    {"split": "characters", "lowercase": False, "strip_html": False,
     "split_punctuation": False},
], ids=str)
def test_text_tokenizer_gives_text_encoders_ids(options):
    extra = [c for c in "abcdefgh oéΣ" if c not in VOCABULARY]
    encoder = TextEncoder(VOCABULARY + extra, **options)
    tokenizer = TextTokenizer.from_config(encoder.get_config())
    expected = encoder(tf.constant(TEXTS)).numpy()
    assert tokenizer(TEXTS).tolist() == expected.tolist()
    assert tokenizer.tokenize(TEXTS[1]) == [
        t.decode() for t in encoder.tokenize([TEXTS[1]]).to_list()[0]]
    for text in TEXTS:  # one at a time: the same padding to one column
        assert tokenizer([text]).tolist() == \
            encoder(tf.constant([text])).numpy().tolist()


@pytest.mark.parametrize("options", [
    {}, {"lowercase": False, "digits_to_zero": False},
    {"max_word_length": 3}])
def test_token_tokenizer_gives_token_encoders_ids(options):
    sentences = [["EU", "rejects", "German", "call", "1996", "İstanbul"],
                 ["Peter", "Blackburn", "", "", "", ""],
                 ["ΣΟΦΙΑ", "x", "٣", "0", "", ""]]
    encoder = TokenEncoder(["", "[UNK]", "eu", "german", "0000", "peter", "x",
                            "1996", "σοφια"],
                           ["", "[UNK]"] + list("EUreGmanPt1Σ"), **options)
    tokenizer = TokenTokenizer.from_config(encoder.get_config())
    words, chars = encoder(tf.constant(sentences))
    got_words, got_chars = tokenizer(sentences)
    assert got_words.tolist() == words.numpy().tolist()
    assert got_chars.tolist() == chars.numpy().tolist()


# -- conversion (the onnx extra) ----------------------------------------------

EXTRA = ("the onnx extra is not installed: pip install -e '.[onnx]' "
         "(tf2onnx, onnx, onnxruntime)")


@pytest.fixture
def ort():
    """onnxruntime; the test is skipped where the extra is absent."""
    for name in ("tf2onnx", "onnx"):
        pytest.importorskip(name, reason=EXTRA)
    return pytest.importorskip("onnxruntime", reason=EXTRA)

WORDS = [f"w{i}" for i in range(30)]
STATES = {
    "sentiment": {"vocabulary": WORDS, "class_names": ["negative",
                                                       "positive"]},
    "topic": {"vocabulary": WORDS, "class_names": ["a", "b", "c", "d"]},
    "next-word": {"level": "word", "vocabulary": WORDS + ["<eos>"]},
    "ner": {"words": WORDS, "characters": list("abcdefghij"),
            "tags": ["O", "B-PER", "I-PER", "E-PER", "S-PER"],
            "first_rare_id": 20},
    "translation": {"source_vocabulary": WORDS,
                    "target_vocabulary": ["<s>", "</s>"] + WORDS},
}
TINY = {"units": 6, "embedding_dim": 6}


def tiny_task(app, **flags):
    """An untrained task of ``app`` (random weights), without data."""
    cls = APPS.get(app)
    config = cls.effective_config({**TINY, **flags})
    task = cls(config, cls.preprocessor_class.from_config(STATES[app],
                                                          config))
    task.model = task.build_model()
    return task


def random_ids(rng, rows, high, lengths):
    """``rows`` rows of ids in [2, high), of the given lengths, padded."""
    ids = np.zeros((rows, max(lengths)), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(2, high, length)
    return ids


def model_inputs(task, rng, rows=100):
    """100 inputs of varied lengths (1 to 12 steps, right-padded)."""
    lengths = rng.integers(1, 13, rows)
    lengths[0] = 12
    size = len(WORDS) + 2
    if task.family == "tagger":
        words = random_ids(rng, rows, size, lengths)
        chars = rng.integers(2, 12, words.shape + (6,)).astype(np.int32)
        chars[:, :, 4:] = 0
        chars[words == 0] = 0
        return [words, chars]
    if task.family == "seq2seq":
        targets = random_ids(rng, rows, size + 2, rng.integers(1, 9, rows))
        return [random_ids(rng, rows, size, lengths), targets]
    return [random_ids(rng, rows, size, lengths)]


CASES = {
    "sentiment": ("sentiment", {}),  # LSTM, max pooling
    "sentiment-rnn-bidirectional": ("sentiment", {
        "cell": "rnn", "bidirectional": True, "layers": 2,
        "pooling": "last", "bigram_buckets": 16}),
    "topic": ("topic", {}),  # bidirectional GRU
    "next-word": ("next-word", {}),  # 2 LSTM layers, tied embeddings
    "next-word-gru": ("next-word", {"cell": "gru", "tie_embeddings": False,
                                    "layers": 1}),
    "ner": ("ner", {}),  # BiLSTM, character BiLSTM, CRF
    "ner-cnn-chars": ("ner", {"char_features": "cnn", "crf": False}),
    "translation": ("translation", {}),  # encoder-decoder with attention
    "translation-tied": ("translation", {"tie_embeddings": True,
                                         "embedding_dropout": 0.1,
                                         "weight_drop": 0.2}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_onnxruntime_gives_the_keras_models_outputs(case, ort, tmp_path):
    app, flags = CASES[case]
    task = tiny_task(app, **flags)
    path = task.export(tmp_path, format="onnx")
    assert path == tmp_path / "1"
    assert sorted(p.name for p in path.iterdir()) == ["model.onnx",
                                                      "preprocessor.json"]
    export = read_export(path)
    session = ort.InferenceSession(str(export.model_path))
    assert [i.name for i in session.get_inputs()] == export.inputs == [
        t.name for t in task.model.inputs]
    assert [o.name for o in session.get_outputs()] == export.outputs
    if app == "translation":  # (tied too: not the last layer's name)
        assert export.outputs == ["logits"]
    inputs = model_inputs(task, np.random.default_rng(7))
    expected = task.model([tf.constant(x) for x in inputs]
                          if len(inputs) > 1 else inputs[0], training=False)
    got = session.run(None, dict(zip(export.inputs, inputs)))
    assert len(got) == 1
    np.testing.assert_allclose(got[0], np.asarray(expected), rtol=0,
                               atol=1e-5)


def test_preprocessor_json_holds_what_tokenizing_needs(ort, tmp_path):
    task = tiny_task("translation")
    saved = json.loads((task.export(tmp_path, format="onnx")
                        / "preprocessor.json").read_text())
    assert saved["app"] == "translation" and saved["version"] == 1
    assert saved["outputs"] == ["logits"]
    source = saved["encoders"]["source_encoder"]
    assert source["vocabulary"] == ["", "[UNK]"] + WORDS
    assert {k: source[k] for k in ("lowercase", "strip_html",
                                   "split_punctuation", "split")} == {
        "lowercase": False, "strip_html": False, "split_punctuation": True,
        "split": "words"}
    # (vocabularies once, in the encoders)
    assert saved["preprocessor"]["state"] == {}
    assert saved["config"]["max_length"] == task.config["max_length"]


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    import nlpseq

    folder = tmp_path_factory.mktemp("onnx") / "sentiment"
    task = nlpseq.train("sentiment", model_dir=folder, units=4,
                        embedding_dim=4, batch_size=16, epochs=1, seed=2)
    return task, folder


def test_cli_exports_onnx_that_runs_from_raw_text(sentiment, ort,
                                                  tmp_path):
    task, folder = sentiment
    result = CliRunner().invoke(cli, [
        "sentiment", "export", "--model-dir", str(folder), "--output",
        str(tmp_path), "--format", "onnx"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "model.onnx" in result.output and "classes" in result.output
    path = tmp_path / "1"
    assert (path / "model.onnx").is_file()
    assert (path / "preprocessor.json").is_file()
    # the snippet of docs/onnx.md
    export = read_export(path)
    session = ort.InferenceSession(str(export.model_path))
    texts = ["A wonderful film.<br />I loved it!", "Dull, DULL; avoid...",
             "it's not bad"]
    ids = export.encoders["encoder"](texts)
    (classes,) = session.run(None, {"token_ids": ids})
    probabilities = np.concatenate([1 - classes, classes], axis=-1)
    labels = [export.state["class_names"][i]
              for i in probabilities.argmax(-1)]
    records = task.predict(texts)
    assert labels == [r["label"] for r in records]
    for row, record in zip(probabilities, records):
        expected = [record["probabilities"][n]
                    for n in export.state["class_names"]]
        np.testing.assert_allclose(row, expected, atol=1e-5)
    # versions go on, as with the SavedModel; the default stays savedmodel
    again = CliRunner().invoke(cli, [
        "sentiment", "export", "--model-dir", str(folder), "--output",
        str(tmp_path)], catch_exceptions=False)
    assert again.exit_code == 0 and (tmp_path / "2/saved_model.pb").is_file()


def test_the_onnx_export_command_is_quiet(sentiment, ort, tmp_path):
    """A fresh process, as a user runs it: TensorFlow starts quietly before
    tf2onnx imports it, so stderr holds nothing (no C++ start-up log, no
    CUDA line)."""
    import os
    import subprocess
    import sys

    _, folder = sentiment
    env = {k: v for k, v in os.environ.items()
           if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "nlpseq", "sentiment", "export",
         "--model-dir", str(folder), "--format", "onnx", "--output",
         str(tmp_path)], capture_output=True, text=True, env=env,
        timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Exported {tmp_path / '1'} (ONNX")
    assert result.stderr == ""


def test_onnx_goes_beside_the_serving_versions_not_among_them(
        sentiment, ort, tmp_path):
    """export/ is TensorFlow Serving's base path, where every numbered
    folder is a SavedModel version: ONNX versions go to export-onnx/, are
    numbered on their own, and a retrain carries them over."""
    import shutil

    import nlpseq

    folder = tmp_path / "sentiment"
    shutil.copytree(sentiment[1], folder)
    runner = CliRunner()
    result = runner.invoke(cli, ["sentiment", "export", "--model-dir",
                                 str(folder), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert (folder / "export-onnx" / "1" / "model.onnx").is_file()
    assert not (folder / "export").exists()
    assert nlpseq.load(folder).export() == folder / "export" / "1"
    # (a version written into export/ before: the command says where to)
    (folder / "export" / "2").mkdir()
    (folder / "export" / "2" / "model.onnx").write_bytes(b"onnx")
    again = runner.invoke(cli, ["sentiment", "export", "--model-dir",
                                str(folder), "--format", "onnx"])
    assert again.exit_code == 0, again.output
    assert (folder / "export-onnx" / "2" / "model.onnx").is_file()
    note = again.output.splitlines()[1]
    assert note.startswith("Note: ONNX exports written into export/")
    assert str(folder / "export" / "2") in note
    assert note.endswith(f"move them to {folder / 'export-onnx'}/")
    nlpseq.train("sentiment", model_dir=folder, units=4, embedding_dim=4,
                 epochs=1, seed=3)
    assert sorted(p.name for p in (folder / "export-onnx").iterdir()) == [
        "1", "2"]


def test_export_refuses_an_unknown_format(sentiment, tmp_path):
    task, _ = sentiment
    with pytest.raises(NlpseqError, match="--format 'tflite': choose one"):
        task.export(tmp_path, format="tflite")
    assert not tmp_path.joinpath("1").exists()


def test_onnx_without_the_extra_is_one_clear_error(monkeypatch, tmp_path):
    import sys

    from nlpseq.exporters import check_format

    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(NlpseqError, match=r"needs the onnx extra \(tf2onnx "
                       r"is not installed\): pip install 'nlpseq\[onnx\]'"):
        check_format("onnx")
    check_format("savedmodel")


def test_the_taggers_crf_decodes_from_the_export_as_in_the_model(ort,
                                                                 tmp_path):
    """The CRF's weights travel in preprocessor.json; NumPy's Viterbi over
    onnxruntime's tag scores gives the model's own decoding."""
    from nlpseq.onnx_runtime import viterbi

    task = tiny_task("ner")
    for weight in (task.crf.transitions, task.crf.start_transitions,
                   task.crf.end_transitions):  # (not all zeros)
        weight.assign(np.random.default_rng(3).normal(
            size=weight.shape).astype("float32"))
    export = read_export(task.export(tmp_path, format="onnx"))
    assert export.crf is not None
    session = ort.InferenceSession(str(export.model_path))
    words, chars = model_inputs(task, np.random.default_rng(11))
    scores = session.run(None, dict(zip(export.inputs, [words, chars])))[0]
    got = viterbi(scores, words > 0, **export.crf)
    expected = task.crf.decode(tf.constant(scores), tf.constant(words > 0))
    np.testing.assert_array_equal(got, np.asarray(expected))
    assert read_export(tiny_task("sentiment").export(
        tmp_path / "s", format="onnx")).crf is None
