"""The sentiment app: its data errors, its model, its built-in sample."""

import csv
import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from nlpseq.cli import cli
from nlpseq.registry import APPS

TINY = ["--units", "4", "--embedding-dim", "4", "--batch-size", "8",
        "--epochs", "1"]


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def write_csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rows(n=20):
    return [(f"film number {i} was {'good' if i % 2 else 'bad'}",
             "pos" if i % 2 else "neg") for i in range(n)]


def train_error(tmp_path, *args):
    result = run("sentiment", "train", "--model-dir", tmp_path / "m", *TINY,
                 *args)
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "m").exists()
    lines = result.output.splitlines()
    assert lines[-1].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[-1]


def test_missing_file(tmp_path):
    assert train_error(tmp_path, "--data", tmp_path / "no.csv") == (
        f"Error: File not found: {tmp_path / 'no.csv'}")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert train_error(tmp_path, "--data", path).startswith(
        f"Error: {path}")


def test_unknown_column_lists_the_available_ones(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows())
    message = train_error(tmp_path, "--data", path, "--text-column", "body")
    assert message.startswith(f"Error: {path}")
    assert "body" in message and "text" in message and "label" in message


def test_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.csv"
    lines = ["text,label"] + [f"{t},{label}" for t, label in rows(6)]
    lines[4] = "un film tr\xe8s bon,pos"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    assert train_error(tmp_path, "--data", path).startswith(
        f"Error: {path}:5: not UTF-8 text")


def test_fewer_than_two_classes(tmp_path):
    path = write_csv(tmp_path / "one.csv",
                     [(f"text {i}", "pos") for i in range(10)])
    assert train_error(tmp_path, "--data", path) == (
        f"Error: {path}: fewer than two classes in the training data "
        "(only pos)")


def test_empty_texts_are_skipped_and_counted(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows(20) + [("  ", "pos"),
                                                     ("", "neg")])
    result = run("sentiment", "train", "--data", path, "--model-dir",
                 tmp_path / "m", *TINY)
    assert result.exit_code == 0, result.output
    assert "skipped 2 empty texts" in result.output


def test_unknown_label_at_evaluation(tmp_path):
    path = write_csv(tmp_path / "t.csv", rows(20))
    assert run("sentiment", "train", "--data", path, "--model-dir",
               tmp_path / "m", *TINY).exit_code == 0
    other = write_csv(tmp_path / "o.csv", [("so so", "meh")] + rows(4))
    result = run("sentiment", "evaluate", "--model-dir", tmp_path / "m",
                 "--data", other)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {other}")
    assert "meh" in result.output


def test_gzip_tsv_multiclass_with_integer_labels(tmp_path):
    """Three classes from a gzipped TSV with integer labels: softmax head."""
    path = tmp_path / "t.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("review\tsentiment\n")
        for i in range(30):
            handle.write(f"review {i} word{i % 3}\t{i % 3}\n")
    model_dir = tmp_path / "m"
    result = run("sentiment", "train", "--data", path, "--model-dir",
                 model_dir, *TINY)
    assert result.exit_code == 0, result.output
    saved = json.loads((model_dir / "preprocessor.json").read_text())
    assert saved["state"]["class_names"] == ["0", "1", "2"]
    record = json.loads(run("sentiment", "predict", "--model-dir", model_dir,
                            "--format", "jsonl", "word1").output)
    assert set(record["probabilities"]) == {"0", "1", "2"}
    assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_model_layers_follow_the_settings():
    import keras

    from nlpseq import layers

    cls = APPS.get("sentiment")
    config = cls.effective_config({"cell": "gru", "bidirectional": True,
                                   "layers": 2, "units": 3,
                                   "pooling": "last"})
    task = cls(config, cls.preprocessor_class(
        config, ["", "[UNK]", "a", "b"], ["neg", "pos"]))
    model = task.build_model()
    recurrent = [x for x in model.layers
                 if isinstance(x, layers.Bidirectional)]
    assert len(recurrent) == 2
    assert all(isinstance(x.forward_layer, layers.GRU) for x in recurrent)
    assert recurrent[0].forward_layer.return_sequences
    assert not recurrent[1].forward_layer.return_sequences
    assert model.output_shape == (None, 1)
    ids = np.array([[2, 3, 0], [3, 0, 0]])
    assert model(ids).shape == (2, 1)
    assert not any(isinstance(x, layers.SequencePooling)
                   for x in model.layers)
    assert isinstance(model.layers[1], keras.layers.Embedding)


def test_word_dropout_reads_words_as_unknown_in_training_only():
    from nlpseq import layers

    cls = APPS.get("sentiment")
    config = cls.effective_config({"units": 3, "word_dropout": 0.5})
    task = cls(config, cls.preprocessor_class(
        config, ["", "[UNK]"] + [f"w{i}" for i in range(50)],
        ["neg", "pos"]))
    model = task.build_model()
    (dropout,) = [x for x in model.layers
                  if isinstance(x, layers.RareWordDropout)]
    ids = np.tile(np.arange(2, 52), (40, 1))
    ids[:, -10:] = 0  # padding
    dropped = dropout(ids, training=True).numpy()
    assert 0.4 < np.mean(dropped[:, :-10] == 1) < 0.6
    assert np.all(dropped[:, -10:] == 0)  # padding stays padding
    kept = dropped[:, :-10] != 1
    assert np.array_equal(dropped[:, :-10][kept], ids[:, :-10][kept])
    assert np.array_equal(dropout(ids, training=False).numpy(), ids)
    # inference is deterministic: the layer is off
    np.testing.assert_array_equal(model(ids).numpy(), model(ids).numpy())


def test_builtin_sample_is_balanced_and_has_negations():
    cls = APPS.get("sentiment")
    data = cls(cls.effective_config()).read_data(str(cls.default_data),
                                                 "train")
    assert len(data) >= 400
    labels = [str(x) for x in data.labels]
    assert abs(labels.count("pos") - labels.count("neg")) <= 2
    negated = [t for t in data.texts
               if any(w in t.lower().split() for w in ("not", "never"))]
    assert len(negated) >= 0.1 * len(data)


def _history(folder):
    return list(csv.DictReader(open(folder / "history.csv")))


@pytest.mark.slow  # (17 s; test_weight_average_and_dropout_resume_to_the_same_model
#  also trains with an average)
def test_weight_average_validates_and_keeps_the_average(tmp_path):
    data = write_csv(tmp_path / "train.csv", rows(60))
    flags = ["--data", data, *TINY, "--epochs", "3", "--patience", "0",
             "--learning-rate", "0.05", "--seed", "5"]
    raw, averaged = tmp_path / "raw", tmp_path / "averaged"
    assert run("sentiment", "train", "--model-dir", raw,
               *flags).exit_code == 0
    result = run("sentiment", "train", "--model-dir", averaged, *flags,
                 "--weight-average", "0.8")
    assert result.exit_code == 0, result.output
    a, b = _history(raw), _history(averaged)
    # training goes on from the raw weights: the same training losses...
    np.testing.assert_allclose([float(r["loss"]) for r in a],
                               [float(r["loss"]) for r in b], rtol=1e-4)
    # ...while validation sees the average
    assert [r["val_loss"] for r in a] != [r["val_loss"] for r in b]
    # and the kept model is the validated average of the best epoch
    best = min(b, key=lambda r: float(r["val_loss"]))
    metrics = json.loads((averaged / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(
        float(best["val_binary_accuracy"]), abs=1e-6)


def test_keep_last_keeps_the_last_epoch(tmp_path):
    data = write_csv(tmp_path / "train.csv", rows(60))
    model_dir = tmp_path / "m"
    result = run("sentiment", "train", "--data", data, "--model-dir",
                 model_dir, *TINY, "--epochs", "3", "--patience", "0",
                 "--learning-rate", "0.05", "--keep", "last")
    assert result.exit_code == 0, result.output
    config = json.loads((model_dir / "config.json").read_text())
    assert config["config"]["keep"] == "last"
    last = _history(model_dir)[-1]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(
        float(last["val_binary_accuracy"]), abs=1e-6)


def test_weight_average_and_dropout_resume_to_the_same_model(
        tmp_path, interrupted_after_first_epoch):
    import keras

    data = write_csv(tmp_path / "train.csv", rows(40))
    flags = ["--data", data, *TINY, "--epochs", "2", "--patience", "0",
             "--seed", "2", "--weight-average", "0.9"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert run("sentiment", "train", "--model-dir", straight,
               *flags).exit_code == 0
    with interrupted_after_first_epoch():
        assert run("sentiment", "train", "--model-dir", resumed,
                   *flags).exit_code == 1
    result = run("sentiment", "train", "--model-dir", resumed, "--resume")
    assert result.exit_code == 0, result.output
    a = keras.saving.load_model(straight / "model.keras")
    b = keras.saving.load_model(resumed / "model.keras")
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_bigram_bag_feeds_the_output_layer_and_serves(tmp_path):
    import tensorflow as tf

    from nlpseq import layers

    data = write_csv(tmp_path / "train.csv", rows(40))
    model_dir = tmp_path / "m"
    result = run("sentiment", "train", "--data", data, "--model-dir",
                 model_dir, *TINY, "--bigram-buckets", "50",
                 "--bigram-dim", "3", "--pooling", "max_mean")
    assert result.exit_code == 0, result.output
    pipeline = APPS.get("sentiment").load(model_dir)
    model = pipeline.model
    (bigrams,) = [x for x in model.layers
                  if isinstance(x, layers.HashedBigrams)]
    assert bigrams.buckets == 50
    # 2 * 4 pooled recurrent features + a 3-wide bag of bigrams
    assert model.get_layer("features").output.shape == (None, 11)
    texts = ["film number 3 was good", "was bad film", "unseen words here"]
    expected = pipeline.predict_probabilities(texts)
    assert run("sentiment", "export", "--model-dir", model_dir, "--output",
               tmp_path / "export").exit_code == 0
    served = tf.saved_model.load(str(tmp_path / "export" / "1"))
    outputs = served.signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected,
                               atol=1e-5)


def test_ngram_model_joins_the_network_in_prediction_and_serves(tmp_path):
    import keras
    import tensorflow as tf

    data = write_csv(tmp_path / "train.csv", rows(40))
    model_dir = tmp_path / "m"
    result = run("sentiment", "train", "--data", data, "--model-dir",
                 model_dir, *TINY, "--ngram-buckets", "64", "--ngram-weight",
                 "0.5")
    assert result.exit_code == 0, result.output
    pipeline = APPS.get("sentiment").load(model_dir)
    model = pipeline.model
    ngram = model.get_layer("ngram_logits")
    assert ngram.buckets == 64 and ngram.weight == 0.5
    texts = ["film number 3 was good", "was bad film", "unseen words here"]
    ids = keras.ops.convert_to_tensor(
        pipeline.preprocessor.encoder(tf.constant(texts)))
    network = keras.Model(model.inputs, model.get_layer("classes").output)
    logits = keras.ops.convert_to_numpy(network(ids))[:, 0]
    added = keras.ops.convert_to_numpy(ngram.ngram_logits(ids))[:, 0]
    # fitted: "good" and "bad" decide the class of the training texts
    assert added[0] > 0 > added[1]
    expected = 1 / (1 + np.exp(-(logits + 0.5 * added)))
    probabilities = pipeline.predict_probabilities(texts)
    np.testing.assert_allclose(probabilities[:, 1], expected, atol=1e-5)
    assert run("sentiment", "export", "--model-dir", model_dir, "--output",
               tmp_path / "export").exit_code == 0
    served = tf.saved_model.load(str(tmp_path / "export" / "1"))
    outputs = served.signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(outputs["probabilities"].numpy(),
                               probabilities, atol=1e-5)
