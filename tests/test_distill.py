"""Distillation: a classifier trained on a trained one's probabilities
(nlpseq/distillation.py, ``nlpseq <app> distill``).

The targets are checked against the teacher's own predictions, the loss
against the cross-entropy computed in NumPy, the copied weights against
the teacher's, a resumed run against an uninterrupted one; bad input is
one ``Error:`` line and writes nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import nlpseq
from nlpseq.cli import cli
from nlpseq.distillation import TARGETS, Teacher, fingerprint
from nlpseq.errors import NlpseqError
from nlpseq.tasks.classifier import agreement

TEACHER = {"units": 8, "embedding_dim": 8, "batch_size": 32, "epochs": 2,
           "seed": 3, "ngram_buckets": 4096, "bidirectional": True}
UNLABELLED = ["a lovely little film", "awful acting, awful script", "",
              "I would not watch it again", "the best of the year"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    nlpseq.train("sentiment", model_dir=root / "teacher", **TEACHER)
    unlabelled = root / "unlabelled.txt"
    unlabelled.write_text("\n".join(UNLABELLED) + "\n", "utf-8")
    return root


@pytest.fixture(scope="module")
def student(teacher):
    return nlpseq.train("sentiment", model_dir=teacher / "student",
                        teacher=str(teacher / "teacher"), bidirectional=False,
                        unlabelled=str(teacher / "unlabelled.txt"), epochs=1)


def test_the_targets_are_the_teachers_probabilities(teacher, student):
    from nlpseq.apps.sentiment import Sentiment

    taught = nlpseq.load(teacher / "teacher")
    # (the training texts in the student's order: its own --seed)
    train = Sentiment(student.config).read_data(
        str(Sentiment.default_data), "train")
    texts = list(train.texts) + [t for t in UNLABELLED if t.strip()]
    expected = taught.predict_probabilities(texts)[:, 1]
    with np.load(teacher / "student" / TARGETS) as stored:
        kept, of = stored["targets"], str(stored["texts"])
    assert of == fingerprint(texts)
    assert kept.shape == (len(texts),)
    np.testing.assert_allclose(kept, expected, rtol=1e-5, atol=1e-6)
    # soft targets, not the labels
    assert ((kept > 0.01) & (kept < 0.99)).any()


def test_the_student_reads_text_as_its_teacher(teacher, student):
    taught = nlpseq.load(teacher / "teacher")
    assert student.preprocessor.encoder.vocabulary == \
        taught.preprocessor.encoder.vocabulary
    assert student.class_names == taught.class_names
    config = json.loads((teacher / "student" / "config.json").read_text())
    settings = config["config"]
    assert settings["bidirectional"] is False
    assert settings["units"] == TEACHER["units"]
    assert settings["ngram_buckets"] == TEACHER["ngram_buckets"]
    assert settings["teacher"] == str((teacher / "teacher").resolve())
    # the n-gram model is the teacher's, not refitted
    for mine, theirs in zip(student.ngram_logits.weights,
                            taught.ngram_logits.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert np.abs(student.ngram_logits.weights[0].numpy()).max() > 0
    # and the published model predicts like the one in memory
    again = nlpseq.load(teacher / "student")
    np.testing.assert_allclose(
        again.predict_probabilities(UNLABELLED),
        student.predict_probabilities(UNLABELLED), rtol=1e-5, atol=1e-6)


def test_the_student_starts_from_the_teachers_forward_direction(teacher):
    from nlpseq.apps.sentiment import Sentiment

    from nlpseq.tasks import load

    source = Teacher(teacher / "teacher")
    config = source.adopt(Sentiment.effective_config(
        {"bidirectional": False, "teacher": str(teacher / "teacher")}),
        Sentiment)
    source.load(load)
    task = Sentiment(config)
    task.preprocessor = source.make_preprocessor(
        Sentiment.preprocessor_class, task.read_data(
            str(Sentiment.default_data), "train"), config)
    task.model = task.build_model()
    copied = source.copy_into(task)
    assert copied == ["embedding", "lstm_1", "ngram_logits"]
    forward = source.task.backbone.recurrent_layers[0].forward_layer
    mine = task.backbone.recurrent_layers[0]
    assert len(mine.weights) == len(forward.weights) > 0
    for a, b in zip(mine.weights, forward.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(
        task.backbone.embedding.weights[0].numpy(),
        source.task.backbone.embedding.weights[0].numpy())

    # other shapes: only what fits is copied
    narrow = Sentiment(source.adopt(Sentiment.effective_config(
        {"units": 4, "teacher": str(teacher / "teacher")}), Sentiment))
    narrow.preprocessor = task.preprocessor
    narrow.model = narrow.build_model()
    assert source.copy_into(narrow) == ["embedding", "ngram_logits"]


def test_the_loss_is_the_cross_entropy_against_the_targets(student):
    texts = ["a lovely little film", "awful acting, awful script",
             "not bad", "dull"]
    ids = student.encode_texts(texts)
    width = max(len(row) for row in ids)
    x = np.zeros((len(ids), width), "int32")
    for i, row in enumerate(ids):
        x[i, :len(row)] = row
    targets = np.array([0.9, 0.2, 0.6, 0.05], "float32")
    q = student.model.predict(x, verbose=0)[:, 0].astype("float64")
    q = np.clip(q, 1e-7, 1 - 1e-7)
    expected = -np.mean(targets * np.log(q) + (1 - targets) * np.log(1 - q))
    loss, agreed = student.model.evaluate(x, targets, verbose=0)
    assert loss == pytest.approx(expected, rel=1e-4)
    assert agreed == pytest.approx(np.mean((targets > 0.5) == (q > 0.5)))


def test_agreement_counts_the_same_most_probable_class():
    targets = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]],
                       "float32")
    outputs = np.array([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]],
                       "float32")
    np.testing.assert_array_equal(
        np.asarray(agreement(targets, outputs)), [1.0, 0.0, 1.0])
    binary = agreement(np.array([0.9, 0.4], "float32"),
                       np.array([[0.6], [0.7]], "float32"))
    np.testing.assert_array_equal(np.asarray(binary).ravel(), [1.0, 0.0])


def test_a_resumed_distillation_reaches_the_uninterrupted_weights(
        teacher, interrupted_after_first_epoch, monkeypatch):
    settings = {"teacher": str(teacher / "teacher"), "bidirectional": False,
                "unlabelled": str(teacher / "unlabelled.txt"), "epochs": 2,
                "keep": "last", "patience": 0}
    whole = nlpseq.train("sentiment", model_dir=teacher / "whole",
                         **settings)
    folder = teacher / "cut"
    with interrupted_after_first_epoch(), pytest.raises(NlpseqError,
                                                        match="--resume"):
        nlpseq.train("sentiment", model_dir=folder, **settings)
    assert (teacher / ".cut.training" / TARGETS).is_file()

    def no_teacher(self, load):
        raise AssertionError("the resumed run loaded the teacher again")

    monkeypatch.setattr(Teacher, "load", no_teacher)
    # the teacher's folder is not even needed: its targets are kept
    moved = teacher / "teacher-moved"
    (teacher / "teacher").rename(moved)
    try:
        resumed = nlpseq.train("sentiment", model_dir=folder, resume=True)
    finally:
        moved.rename(teacher / "teacher")
    for a, b in zip(whole.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5,
                                   atol=1e-6)
    with np.load(folder / TARGETS) as one, \
            np.load(teacher / "whole" / TARGETS) as other:
        np.testing.assert_array_equal(one["targets"], other["targets"])


def test_kept_targets_of_other_texts_are_computed_again(teacher, tmp_path):
    from nlpseq.distillation import soft_targets
    from nlpseq.tasks import load

    path = tmp_path / TARGETS
    source = Teacher(teacher / "teacher").load(load)
    first = soft_targets(source, ["good", "bad"], path)
    calls = []

    def made():
        calls.append(1)
        return source

    # the same texts: read back, the teacher not asked for
    np.testing.assert_array_equal(
        soft_targets(made, ["good", "bad"], path), first)
    assert not calls
    # as many texts, other ones: computed again
    other = soft_targets(made, ["bad", "good"], path)
    assert calls
    np.testing.assert_allclose(other, first[::-1], rtol=1e-6)


def test_a_student_of_more_classes_learns_probabilities(tmp_path):
    nlpseq.train("topic", model_dir=tmp_path / "teacher", units=8,
                 embedding_dim=8, epochs=1, seed=1)
    student = nlpseq.train("topic", model_dir=tmp_path / "student",
                           teacher=str(tmp_path / "teacher"), units=4,
                           epochs=1)
    with np.load(tmp_path / "student" / TARGETS) as stored:
        targets = stored["targets"]
    assert targets.ndim == 2 and targets.shape[1] == len(student.class_names)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-5)
    assert student.compile_arguments()["loss"] == "categorical_crossentropy"
    history = (tmp_path / "student" / "history.csv").read_text()
    assert "val_agreement" in history
    assert 0.0 <= student.metrics["accuracy"] <= 1.0


def _error(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines()
             if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, \
        result.output
    return lines[0]


def test_bad_input_is_one_error_line_and_writes_nothing(teacher, tmp_path):
    model = str(teacher / "teacher")
    out = tmp_path / "out"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", "utf-8")
    cases = [
        (["sentiment", "distill", "--model-dir", str(out)], "--teacher"),
        (["sentiment", "distill", "--teacher", str(tmp_path / "none"),
          "--model-dir", str(out)], "none"),
        (["topic", "distill", "--teacher", model, "--model-dir", str(out)],
         "'sentiment' app"),
        (["sentiment", "distill", "--teacher", model, "--vocab-size", "50",
          "--model-dir", str(out)], "--vocab-size 50"),
        (["sentiment", "distill", "--teacher", model, "--ngram-buckets",
          "16", "--model-dir", str(out)], "the teacher's: 4096"),
        (["sentiment", "distill", "--teacher", model, "--init-from", model,
          "--model-dir", str(out)], "No such option '--init-from'"),
        (["sentiment", "distill", "--teacher", model, "--unlabelled",
          str(empty), "--model-dir", str(out)], "--unlabelled: "),
        (["sentiment", "distill", "--teacher", model, "--model-dir", model],
         "the teacher's own folder"),
    ]
    for args, expected in cases:
        assert expected in _error(args), args
        assert not out.exists()
        assert not (tmp_path / ".out.training").exists()
    with pytest.raises(NlpseqError, match="choose one"):
        nlpseq.train("sentiment", model_dir=out, teacher=model,
                     init_from=model)
    with pytest.raises(NlpseqError, match="need a --teacher"):
        nlpseq.train("sentiment", model_dir=out,
                     unlabelled=str(teacher / "unlabelled.txt"))
    assert not out.exists()


def test_the_teachers_data_is_the_students_unless_given(teacher,
                                                         tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(
        f"{'good fun' if i % 2 else 'dull mess'} {i},"
        f"{'pos' if i % 2 else 'neg'}\n" for i in range(40)), "utf-8")
    nlpseq.train("sentiment", model_dir=tmp_path / "own", data=str(data),
                 valid_split=0.25, seed=7, units=4, embedding_dim=4,
                 epochs=1)
    student = nlpseq.train("sentiment", model_dir=tmp_path / "student",
                           teacher=str(tmp_path / "own"), epochs=1)
    # the same data, the same held-out texts (the teacher's seed)
    assert student.config["data"] == str(data)
    assert student.config["seed"] == 7
    assert student.metrics["count"] == 10
    # the teacher's data gone: said so, with the option to give
    data.rename(tmp_path / "elsewhere.csv")
    with pytest.raises(NlpseqError, match="the teacher's --data .* give "
                       "--data"):
        nlpseq.train("sentiment", model_dir=tmp_path / "again",
                     teacher=str(tmp_path / "own"))
    assert not (tmp_path / "again").exists()


def test_a_class_the_teacher_does_not_know_is_refused(teacher, tmp_path):
    data = tmp_path / "three.csv"
    data.write_text("text,label\ngood,pos\nbad,neg\nso so,mixed\n"
                    "fine,pos\nawful,neg\nmeh,mixed\n", "utf-8")
    with pytest.raises(NlpseqError, match="mixed"):
        nlpseq.train("sentiment", model_dir=tmp_path / "out",
                     data=str(data), valid_split=0.5,
                     teacher=str(teacher / "teacher"))
    assert not (tmp_path / "out").exists()
