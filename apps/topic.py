"""Topic classification: a headline in, one of several topics out.

A declaration over the classifier family (:mod:`nlpseq.tasks.classifier`),
showing what a new app costs: a name, its sample data and the defaults that
suit it (a bidirectional GRU with mean and max pooling, softmax over the
topics). Its built-in sample has four topics (sport, politics, technology,
food), written by ``apps/data/make_topic_sample.py``.

Example:
    $ nlpseq topic train
    $ nlpseq topic predict "The minister signs a new treaty"
"""

from pathlib import Path

from nlpseq.tasks.classifier import ClassifierTask
from nlpseq.tasks.settings import with_defaults

DATA = Path(__file__).parent / "data"


class Topic(ClassifierTask):
    """Topic classification of short texts into several classes."""

    name = "topic"
    default_data = DATA / "topic_sample.csv"
    default_valid = DATA / "topic_valid.csv"
    data_example = "headlines.csv"
    predict_example = "The minister signs a new treaty"
    demo_example = "The goalkeeper takes the title"
    settings = with_defaults(ClassifierTask.settings, cell="gru",
                             bidirectional=True, units=32, embedding_dim=32,
                             pooling="max_mean", max_length=100)
    common_defaults = {"epochs": 8, "learning_rate": 3e-3}
