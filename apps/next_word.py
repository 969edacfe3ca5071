"""Next-word prediction: a language model over words or characters.

A declaration over the language-model family
(:mod:`nlpseq.tasks.language_model`): the family's model, generation and
life cycle, with the built-in sample corpus. ``apps/configs/next_word_*.toml``
are the Penn Treebank and Shakespeare configurations.

Example:
    $ nlpseq next-word train                      # the built-in sample
    $ nlpseq next-word predict "on sunday i want to eat"
    on sunday i want to eat	pizza 0.3100  pasta 0.2200 ...
    $ nlpseq next-word generate --prompt "the king" --strategy beam
"""

from pathlib import Path

from nlpseq.tasks.language_model import LanguageModelTask

DATA = Path(__file__).parent / "data"


class NextWord(LanguageModelTask):
    """Next-word prediction: a word- or character-level language model."""

    name = "next-word"
    default_data = DATA / "next_word_sample.txt"
    default_valid = DATA / "next_word_valid.txt"
    data_example = "corpus.txt"
    predict_example = "on sunday i want to eat"
    demo_example = "on sunday i want"
