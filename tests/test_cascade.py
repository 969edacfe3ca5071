"""The classifier's cascade (nlpseq/cascade.py, ``nlpseq <app> cascade``).

The threshold's choice is checked against a brute-force search of every
cut; the cascaded model against the whole model (the same probabilities
wherever the network ran) and against the n-gram model alone (elsewhere);
the network's calls against the rows it was given; the SavedModel and the
ONNX export against the Python API.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

import nlpseq
from nlpseq.cascade import cascaded, choose_threshold, margins
from nlpseq.cli import cli
from nlpseq.errors import NlpseqError

TINY = {"units": 8, "embedding_dim": 8, "batch_size": 16, "epochs": 2,
        "seed": 3, "ngram_buckets": 4096}
TEXTS = ["A wonderful film, I loved it!", "Dull and far too long.",
         "It is not bad at all", "the worst acting I have seen",
         "great fun", "boring", "", "an odd little film; some good parts"]


def brute_force(margin, alone, full, tolerance):
    """The largest count k of highest-margin texts decided alone such that
    every count up to k keeps the accuracy within the tolerance, at a cut
    between two different margins: every k tried."""
    order = np.argsort(-margin, kind="stable")
    m, a, f = margin[order], alone[order], full[order]
    n = len(m)
    floor = f.mean() - tolerance / 100

    def accuracy(k):
        return (a[:k].sum() + f[k:].sum()) / n

    best = 0
    for k in range(n + 1):
        if accuracy(k) < floor - 1e-12:
            break
        if k in (0, n) or m[k - 1] > m[k]:
            best = k
    return best, accuracy(best)


@pytest.mark.parametrize("seed", range(40))
def test_the_threshold_is_the_largest_safe_cut(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    # rounded margins: ties happen
    margin = np.round(rng.exponential(1.0, n), 1)
    alone = rng.random(n) < 0.5 + 0.4 * np.tanh(margin)
    full = rng.random(n) < 0.8
    tolerance = float(rng.choice([0.0, 0.1, 1.0, 5.0]))
    chosen = choose_threshold(margin, alone, full, tolerance)
    k, accuracy = brute_force(margin, alone, full, tolerance)
    decided = margin > chosen["threshold"]
    assert decided.sum() == k
    assert chosen["decided_alone"] == pytest.approx(k / n)
    assert chosen["accuracy"] == pytest.approx(accuracy)
    assert chosen["full_accuracy"] == pytest.approx(full.mean())
    # the cascade's accuracy computed from the threshold itself
    got = np.where(decided, alone, full).mean()
    assert got == pytest.approx(accuracy)
    assert got >= full.mean() - tolerance / 100 - 1e-12


def test_a_sure_and_right_ngram_model_decides_everything():
    margin = np.array([3.0, 2.0, 1.0, 0.0])
    everything = choose_threshold(margin, [1, 1, 1, 1], [1, 1, 1, 0])
    assert everything["decided_alone"] == 1.0
    assert (margin > everything["threshold"]).all()
    nothing = choose_threshold(margin, [0, 1, 1, 1], [1, 1, 1, 1], 0.0)
    assert nothing["decided_alone"] == 0.0
    assert not (margin > nothing["threshold"]).any()
    with pytest.raises(ValueError, match="finite"):
        choose_threshold([np.nan, 1.0], [1, 1], [1, 1])


def test_margins_in_numpy_and_in_the_graph_agree():
    rng = np.random.default_rng(0)
    for outputs in (1, 4):
        logits = rng.normal(size=(50, outputs)).astype("float32")
        expected = margins(logits)
        if outputs == 1:
            np.testing.assert_allclose(expected, np.abs(logits[:, 0]))
        else:
            top = np.sort(logits, axis=1)
            np.testing.assert_allclose(expected, top[:, -1] - top[:, -2],
                                       rtol=1e-6)
        threshold = float(np.median(expected))
        seen = []

        def network(ids):
            seen.append(ids.numpy())
            return tf.fill([tf.shape(ids)[0], max(outputs, 2)], -1.0)

        ids = tf.constant(np.arange(50, dtype="int32")[:, None])
        got = cascaded(ids, lambda ids: tf.gather(logits, ids[:, 0]),
                       network, threshold,
                       lambda lg: tf.fill([tf.shape(lg)[0],
                                           max(outputs, 2)], 1.0)).numpy()
        # the network ran once, on exactly the rows at or under the
        # threshold, in order
        (rows,) = seen
        np.testing.assert_array_equal(
            rows[:, 0], np.flatnonzero(expected <= threshold))
        np.testing.assert_array_equal(got[:, 0] < 0, expected <= threshold)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cascade") / "sentiment"
    nlpseq.train("sentiment", model_dir=folder, **TINY)
    return folder


def full_and_ngram(task, texts):
    parts = task.graph_function("cascade_parts")(tf.constant(texts))
    return parts["full"].numpy(), parts["ngram"].numpy()


def test_the_cascade_is_the_whole_model_wherever_the_network_ran(trained):
    task = nlpseq.load(trained)
    texts = [t for t in TEXTS if t]
    full, ngram = full_and_ngram(task, texts)
    # the whole model without a cascade
    whole = task.predict_probabilities(texts)
    np.testing.assert_allclose(whole, full, atol=1e-6)
    margin = margins(ngram)
    threshold = float(np.median(margin))
    task.set_cascade({"threshold": threshold})
    cascade = task.predict_probabilities(texts)
    network = margin <= threshold
    assert 0 < network.sum() < len(texts)
    np.testing.assert_allclose(cascade[network], full[network], atol=1e-6)
    # elsewhere: the n-gram model's probabilities, sigmoid(weight * logit)
    alone = 1 / (1 + np.exp(-task.config["ngram_weight"] * ngram[:, 0]))
    np.testing.assert_allclose(cascade[~network, 1], alone[~network],
                               atol=1e-6)
    np.testing.assert_allclose(cascade.sum(axis=1), 1.0, atol=1e-6)


def cli_run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def one_error(result, *words):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[-1], result.output


def test_the_command_chooses_saves_serves_and_removes(trained, tmp_path):
    result = cli_run("sentiment", "cascade", "--model-dir", trained,
                     "--tolerance", 5)
    assert result.exit_code == 0, result.output
    assert "decides alone" in result.output
    assert "the built-in validation sample" in result.output
    state = json.loads((trained / "preprocessor.json").read_text())["state"]
    chosen = state["cascade"]
    assert chosen["tolerance"] == 5.0 and chosen["texts"] == 50
    assert chosen["accuracy"] >= chosen["full_accuracy"] - 0.05 - 1e-9
    task = nlpseq.load(trained)
    assert task.preprocessor.cascade == chosen
    # evaluate reports the cascade's accuracy (as chosen on the same data)
    metrics = task.evaluate(str(task.default_valid))
    assert metrics["accuracy"] == pytest.approx(chosen["accuracy"])
    # the report says so
    report = task.report(output=tmp_path / "report.html")
    assert "Cascade: the n-gram model decides alone" in report.read_text()
    # the SavedModel's signature and the Python API agree
    path = task.export(tmp_path / "export")
    served = tf.saved_model.load(str(path)).signatures["serving_default"](
        text=tf.constant(TEXTS))
    records = task.predict(TEXTS)
    assert [r["label"] or "" for r in records] == [
        x.decode() for x in served["label"].numpy()]
    for row, record in zip(served["probabilities"].numpy(), records):
        if record["label"] is not None:
            expected = [record["probabilities"][n] for n in task.class_names]
            np.testing.assert_allclose(row, expected, atol=1e-5)
    # --off: the whole model again
    result = cli_run("sentiment", "cascade", "--model-dir", trained, "--off")
    assert result.exit_code == 0, result.output
    state = json.loads((trained / "preprocessor.json").read_text())["state"]
    assert "cascade" not in state
    assert nlpseq.load(trained).preprocessor.cascade is None


def test_the_onnx_export_carries_the_cascade(trained, tmp_path):
    for name in ("tf2onnx", "onnx"):
        pytest.importorskip(name, reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime",
                              reason="the onnx extra is not installed")
    from nlpseq.onnx_runtime import read_export

    task = nlpseq.load(trained)
    texts = [t for t in TEXTS if t]
    _, ngram = full_and_ngram(task, texts)
    task.set_cascade({"threshold": float(np.median(margins(ngram)))})
    export = read_export(task.export(tmp_path, format="onnx"))
    assert export.state["cascade"] == task.preprocessor.cascade
    session = ort.InferenceSession(str(export.model_path))
    (classes,) = session.run(None, {"token_ids": export.encoders["encoder"](
        texts)})
    expected = task.predict_probabilities(texts)[:, 1:]
    np.testing.assert_allclose(classes, expected, atol=1e-5)


def test_bad_uses_are_one_error_line(trained, tmp_path):
    plain = tmp_path / "plain"
    nlpseq.train("sentiment", model_dir=plain, units=4, embedding_dim=4,
                 epochs=1)
    before = (plain / "preprocessor.json").read_bytes()
    one_error(cli_run("sentiment", "cascade", "--model-dir", plain),
              "--ngram-buckets")
    assert (plain / "preprocessor.json").read_bytes() == before
    one_error(cli_run("sentiment", "cascade", "--model-dir", trained,
                      "--off", "--tolerance", 1), "--off")
    one_error(cli_run("sentiment", "cascade", "--model-dir",
                      tmp_path / "nothing"), "not found")
    result = cli_run("sentiment", "cascade", "--model-dir", trained,
                     "--tolerance", -1)
    assert result.exit_code == 2 and "--tolerance" in result.output
    before = (trained / "preprocessor.json").read_bytes()
    one_error(cli_run("sentiment", "cascade", "--model-dir", trained,
                      "--tolerance", "nan"), "tolerance", "got nan")
    assert (trained / "preprocessor.json").read_bytes() == before
    with pytest.raises(NlpseqError, match=r"^cascade: tolerance must be a "
                                          r"finite number, got inf$"):
        nlpseq.load(trained).choose_cascade(None, float("inf"))
    one_error(cli_run("sentiment", "cascade", "--model-dir", trained,
                      "--data", tmp_path / "missing.csv"), "missing.csv")
    # a damaged cascade entry: the folder is reported as corrupted
    saved = json.loads((trained / "preprocessor.json").read_text())
    saved["state"]["cascade"] = {"threshold": None}
    damaged = tmp_path / "damaged"
    shutil.copytree(trained, damaged)
    (damaged / "preprocessor.json").write_text(json.dumps(saved))
    one_error(cli_run("sentiment", "evaluate", "--model-dir", damaged),
              "corrupted", "threshold")


def test_a_model_replaced_since_loading_is_not_given_the_cascade(trained,
                                                                 tmp_path):
    import os

    from nlpseq.errors import NlpseqError

    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    task = nlpseq.load(folder)
    task.set_cascade({"threshold": 1.0})
    before = (folder / "preprocessor.json").read_bytes()
    # another model.keras published meanwhile
    stat = (folder / "model.keras").stat()
    os.utime(folder / "model.keras", ns=(stat.st_atime_ns,
                                         stat.st_mtime_ns + 10**9))
    with pytest.raises(NlpseqError, match="another model was trained"):
        task.save_cascade()
    assert (folder / "preprocessor.json").read_bytes() == before
    # loaded again: saved
    task = nlpseq.load(folder)
    task.set_cascade({"threshold": 1.0})
    task.save_cascade()
    assert nlpseq.load(folder).preprocessor.cascade == {"threshold": 1.0}


def test_the_topic_apps_cascade_uses_the_gap_of_its_two_best_logits(
        tmp_path):
    folder = tmp_path / "topic"
    task = nlpseq.train("topic", model_dir=folder, units=8, embedding_dim=8,
                        epochs=2, seed=1, ngram_buckets=4096)
    texts = ["The minister signs a new treaty", "The chef opens a new menu",
             "a late goal wins the cup", "a new phone with a faster chip",
             "parliament votes on the budget", "the soup of the day"]
    full, ngram = full_and_ngram(task, texts)
    margin = margins(ngram)
    top = np.sort(ngram, axis=1)
    np.testing.assert_allclose(margin, top[:, -1] - top[:, -2], rtol=1e-6)
    task.set_cascade({"threshold": float(np.median(margin))})
    cascade = task.predict_probabilities(texts)
    network = margin <= float(np.median(margin))
    assert 0 < network.sum() < len(texts)
    np.testing.assert_allclose(cascade[network], full[network], atol=1e-6)
    weighted = task.config["ngram_weight"] * ngram[~network]
    alone = np.exp(weighted - weighted.max(axis=1, keepdims=True))
    alone /= alone.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cascade[~network], alone, atol=1e-6)
    # the command chooses it for the topic app too
    result = cli_run("topic", "cascade", "--model-dir", folder,
                     "--tolerance", 100)
    assert result.exit_code == 0, result.output
    assert nlpseq.load(folder).preprocessor.cascade["decided_alone"] == 1.0
