"""The app half of the mixed-precision and XLA tests
(``test_precision.py``, ``test_precision_xla.py``): each app trains one
epoch on a part of its validation sample under a run's settings, is
exported, and its export is called.
"""

import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import nlpseq
from nlpseq import distribute
from nlpseq.registry import APPS
from nlpseq.tasks.trainer import Trainer

ROOT = APPS.get("sentiment").default_data.parent
INPUTS = {
    "sentiment": ["a wonderful film", "dull and slow"],
    "topic": ["the team won the match", "the minister spoke"],
    "next-word": ["the", "she went to the"],
    "ner": ["John lives in Paris", "Hello"],
    "translation": ["the cat", "the house is big"],
}
#: Each app's files and how many of their first records a run reads.
SAMPLES = {"sentiment": ("sentiment_valid.csv", 33, 1),
           "topic": ("topic_valid.csv", 33, 1),
           "next-word": ("next_word_valid.txt", 40, 0),
           "ner": ("ner_valid.conll", 24, 0),
           "translation": ("translation_valid.tsv", 40, 0)}
#: The runs of every app: mixed_bfloat16 (test_precision.py), and
#: mixed_float16 with XLA (test_precision_xla.py: loss scaling and bucketed
#: batches in one run).
RUNS = {"bfloat16": {"precision": "mixed_bfloat16"},
        "float16+xla": {"precision": "mixed_float16", "jit_compile": True}}
#: The apps whose run of ``RUNS`` is marked ``slow`` (``make test-all``):
#: XLA compiles every bucket's step, 20 to 35 s an app on 2 cores; the
#: bfloat16 runs of topic (sentiment's family), next-word, ner and translation
#: take 6 to 18 s. Sentiment's XLA and bfloat16 runs stay in ``make
#: test``.
SLOW = {"bfloat16": {"topic", "next-word", "ner", "translation"},
        "float16+xla": {"topic", "next-word", "ner", "translation"}}


def app_params(run):
    """The apps of :data:`INPUTS` as fixture parameters for ``run``, those
    of :data:`SLOW` marked ``slow``."""
    return [pytest.param(app, marks=pytest.mark.slow) if app in SLOW[run]
            else app for app in INPUTS]


def small_sample(app, folder):
    """The first records of ``app``'s validation sample, as a file."""
    name, count, header = SAMPLES[app]
    text = (ROOT / name).read_text(encoding="utf-8")
    if name.endswith(".conll"):  # sentences, one blank line apart
        blocks = text.strip().split("\n\n")
        small = "\n\n".join(blocks[:count]) + "\n"
    else:
        small = "\n".join(text.splitlines()[:count + header]) + "\n"
    path = folder / name
    path.write_text(small, encoding="utf-8")
    return str(path)


def float32_outputs(task):
    """The dtypes of a float32 export's ``serving_default`` outputs: the
    task's signature traced over a float32 model with the same
    preprocessor."""
    reference = type(task)(dict(task.config, precision="float32",
                                jit_compile=False), task.preprocessor)
    reference.model = reference.build_in_precision()
    function, signature = reference.serving_functions()["serving_default"]
    traced = tf.function(function).get_concrete_function(*signature)
    return {name: spec.dtype for name, spec in
            traced.structured_outputs.items()}


def train_and_serve(app, run, tmp_path_factory):
    """Train ``app`` one epoch under ``RUNS[run]``, export it and call the
    export: ``(app, run, task, folder, outputs)``."""
    folder = tmp_path_factory.mktemp(f"{app}-{run}")
    data = small_sample(app, folder)
    task = nlpseq.train(app, model_dir=folder / "model", units=4,
                        embedding_dim=4, batch_size=64, epochs=1, seed=2,
                        data=data, valid=data, **RUNS[run])
    saved = tf.saved_model.load(str(task.export(folder / "export")))
    outputs = saved.signatures["serving_default"](tf.constant(INPUTS[app]))
    return app, run, task, folder, outputs


def check_the_global_policy(trained):
    """The policy applies to the model only: Keras' global policy is
    float32 again after train and load; the folder records the
    precision."""
    app, run, task, folder, _ = trained
    assert keras.config.dtype_policy().name == "float32"
    assert task.model.dtype_policy.name == RUNS[run]["precision"]
    loaded = nlpseq.load(folder / "model")
    assert keras.config.dtype_policy().name == "float32"
    assert loaded.config["precision"] == RUNS[run]["precision"]
    assert loaded.model.dtype_policy.name == RUNS[run]["precision"]
    # XLA compiles the training only: evaluation and prediction after it
    # run without
    assert loaded.config["jit_compile"] == RUNS[run].get("jit_compile",
                                                         False)
    assert task.model.jit_compile is False
    # float16 trains with loss scaling, over the configured optimizer
    optimizer = task.model.optimizer
    if RUNS[run]["precision"] == "mixed_float16":
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        assert optimizer.inner_optimizer.global_clipnorm == 5.0
    else:
        assert isinstance(optimizer, keras.optimizers.Adam)
    with open(folder / "model" / "history.csv", encoding="utf-8") as file:
        last = list(csv.DictReader(file))[-1]
    assert math.isfinite(float(last["loss"]))
    assert math.isfinite(float(last["val_loss"]))
    # the model a distributed run hands back keeps the precision too
    weights = task.model.get_weights()
    distribute.local_model(task, Trainer(task).compile)
    assert task.model.dtype_policy.name == RUNS[run]["precision"]
    for mine, theirs in zip(task.model.get_weights(), weights):
        np.testing.assert_array_equal(mine, theirs)


def check_the_float32_dtypes(trained):
    """The SavedModel takes strings and returns what a float32 export
    returns, finite, and what ``nlpseq.load`` predicts."""
    app, run, task, folder, outputs = trained
    got = {name: value.dtype for name, value in outputs.items()}
    assert got == float32_outputs(task)
    for value in outputs.values():
        if value.dtype.is_floating:
            assert np.isfinite(value.numpy()).all()
    records = nlpseq.load(folder / "model").predict(INPUTS[app])
    if app in ("sentiment", "topic"):
        probabilities = outputs["probabilities"].numpy()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0,
                                   atol=1e-5)
        names = [n.decode() for n in outputs["class_names"].numpy()[0]]
        for record, row in zip(records, probabilities):
            np.testing.assert_allclose(
                [record["probabilities"][n] for n in names], row, atol=1e-5)
    elif app == "next-word":
        probabilities = outputs["probabilities"].numpy()
        assert ((probabilities > 0) & (probabilities <= 1)).all()
        for record, tokens, row in zip(records, outputs["tokens"].numpy(),
                                       probabilities):
            best = record["next"][0]
            assert best["token"] == tokens[0].decode()
            assert best["probability"] == pytest.approx(row[0], abs=1e-5)
    elif app == "ner":
        for record, tags in zip(records, outputs["tags"].numpy()):
            assert record["tags"] == [t.decode() for t in tags
                                      if t][:len(record["tags"])]
    else:
        for record, text, score in zip(records,
                                       outputs["translation"].numpy(),
                                       outputs["score"].numpy()):
            assert record["translation"] == text.decode()
            assert record["score"] == pytest.approx(score, abs=1e-3)
