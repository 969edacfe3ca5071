"""Translation: a sentence in, its translation out.

A declaration over the sequence-to-sequence family
(:mod:`nlpseq.tasks.seq2seq`): an encoder-decoder with attention, greedy or
beam-search decoding, BLEU and chrF, with the built-in sample of German ->
English sentence pairs. ``apps/configs/translation_multi30k.toml`` is the
Multi30k configuration, ``translation_multi30k_subwords.toml`` the same with
subword units (``--subwords``).

Example:
    $ nlpseq translation train                    # the built-in sample
    $ nlpseq translation predict "Ein alter Arbeiter singt ein Lied am Strand."
    An old worker is singing a song on the beach.
"""

from pathlib import Path

from nlpseq.tasks.seq2seq import Seq2SeqTask

DATA = Path(__file__).parent / "data"


class Translation(Seq2SeqTask):
    """Translation: an encoder-decoder with attention (sentence to sentence)."""

    name = "translation"
    default_data = DATA / "translation_sample.tsv"
    default_valid = DATA / "translation_valid.tsv"
    data_example = "pairs.tsv"
    predict_example = "Ein alter Arbeiter singt ein Lied am Strand."
    demo_example = "Zwei kleine Jungen essen einen Apfel im Schnee."
    common_defaults = {"epochs": 20, "batch_size": 64, "patience": 3}
