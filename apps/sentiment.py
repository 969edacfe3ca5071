"""Sentiment classification: a review in, a label and its probability out.

A declaration over the classifier family (:mod:`nlpseq.tasks.classifier`):
the family's model and life cycle, with the built-in sample of short
reviews. ``apps/configs/sentiment_imdb.toml`` is the IMDB configuration.

Example:
    $ nlpseq sentiment train                     # the built-in sample
    $ nlpseq sentiment predict "not bad at all"
"""

from pathlib import Path

from nlpseq.tasks.classifier import ClassifierTask

DATA = Path(__file__).parent / "data"


class Sentiment(ClassifierTask):
    """Sentiment classification of reviews (a label and its probability)."""

    name = "sentiment"
    default_data = DATA / "sentiment_sample.csv"
    default_valid = DATA / "sentiment_valid.csv"
    data_example = "reviews.csv"
    predict_example = "not bad at all"
    demo_example = ("Not tedious, not amateurish, just a haunting piece of "
                    "filmmaking.")
