"""Named-entity recognition: a tag per token, entities as spans.

A declaration over the tagger family (:mod:`nlpseq.tasks.tagger`): the
family's BiLSTM-CRF with character features and its life cycle, with the
built-in sample of CoNLL-2003-style sentences (IOB2 tags: PER, LOC, ORG,
MISC). ``apps/configs/ner_conll2003.toml`` is the CoNLL-2003 configuration.

Example:
    $ nlpseq ner train                        # the built-in sample
    $ nlpseq ner predict "Peter Blackburn visited Brussels ."
    [PER Peter Blackburn] visited [LOC Brussels] .
"""

from pathlib import Path

from nlpseq.tasks.tagger import TaggerTask, read_vectors, word_tokenize

DATA = Path(__file__).parent / "data"


class Ner(TaggerTask):
    """Named-entity recognition: BiLSTM-CRF with character features."""

    name = "ner"
    default_data = DATA / "ner_sample.conll"
    default_valid = DATA / "ner_valid.conll"
    data_example = "train.conll"
    predict_example = "Peter Blackburn visited Brussels ."
    demo_example = ("Castillo told reporters in New Harbor that Northwind "
                    "Bank had grown.")
    common_defaults = {"epochs": 30, "batch_size": 16, "patience": 4}


__all__ = ["Ner", "read_vectors", "word_tokenize"]
