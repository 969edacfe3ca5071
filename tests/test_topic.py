"""The topic app: a new app is a short declaration over a family. A
multi-class classifier trained on a small file the test writes."""

import csv
import inspect

import numpy as np
import pytest

import nlpseq
from nlpseq.registry import APPS

TOPICS = {"sport": ["match", "goal", "coach", "league"],
          "food": ["bread", "soup", "chef", "menu"],
          "tech": ["chip", "phone", "software", "robot"]}


def write_topics(path, count, seed):
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["headline", "topic"])
        for i in range(count):
            topic = list(TOPICS)[i % 3]
            words = rng.choice(TOPICS[topic], 2)
            writer.writerow([f"news about the {words[0]} and {words[1]}",
                             topic])
    return path


@pytest.fixture(scope="module")
def topic_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("topic")
    train = write_topics(folder / "train.csv", 90, seed=1)
    valid = write_topics(folder / "valid.csv", 30, seed=2)
    task = nlpseq.train("topic", data=train, valid=valid,
                        model_dir=folder / "model", epochs=6, units=8,
                        embedding_dim=8, batch_size=8, seed=3)
    return task, folder


def test_the_app_is_a_short_declaration():
    cls = APPS.get("topic")
    source = inspect.getsource(inspect.getmodule(cls))
    assert len(source.splitlines()) <= 40
    assert cls.family == "classifier"
    defaults = {s.name: s.default for s in cls.all_settings()}
    assert defaults["cell"] == "gru" and defaults["bidirectional"] is True


def test_three_topics_learned_from_a_file_with_other_column_names(
        topic_model):
    task, folder = topic_model
    assert task.class_names == ["food", "sport", "tech"]
    assert task.model.output_shape == (None, 3)  # a softmax over topics
    metrics = task.evaluate(str(folder / "valid.csv"))
    assert set(metrics["per_class"]) == {"food", "sport", "tech"}
    # each topic has words of its own: the model separates them
    assert metrics["accuracy"] >= 0.9
    record = task.predict("news about the chef and the soup")
    assert record["label"] == "food"
    assert sum(record["probabilities"].values()) == pytest.approx(1, 1e-4)


def test_the_saved_topic_model_loads_as_any_model(topic_model):
    task, folder = topic_model
    loaded = nlpseq.load(folder / "model")
    assert type(loaded) is type(task)
    texts = ["news about the goal", "the robot and the phone"]
    assert [r["probabilities"] for r in loaded.predict(texts)] == \
        [r["probabilities"] for r in task.predict(texts)]
