"""Plain-text corpora for language models: one data SPEC in, lines out.

A corpus SPEC is a text file (plain or gzip-compressed, any name; one sentence
per line or running text), a table of texts (``.csv``, ``.tsv``, ``.jsonl``,
``.parquet``, plain or ``.gz``: its text column, each text one line, in a
seeded random order, as a classifier's training data gives a language
model its texts) or ``tfds:NAME[:SPLIT]`` (each example's text, split into
lines). Lines are kept as they are, blank ones included, since a
character-level model learns line breaks too; the word-level model skips
lines without words.

Example:
    >>> corpus = read_corpus("ptb/ptb.valid.txt")  # doctest: +SKIP
    >>> len(corpus.lines), corpus.characters  # doctest: +SKIP
    (3370, 399782)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nlpseq.data._files import existing_file, iter_lines
from nlpseq.data.tabular import read_tabular, table_format
from nlpseq.data.tfds import is_tfds_spec, parse_tfds_spec, read_tfds_texts
from nlpseq.errors import NlpseqError


@dataclass
class Corpus:
    """The lines of a corpus, and where they came from."""

    lines: list
    source: str

    @property
    def characters(self) -> int:
        """Characters, counting one line break per line."""
        return sum(len(line) + 1 for line in self.lines)

    def split(self, fraction):
        """``(head, tail)``: the tail holds the last lines, about
        ``fraction`` of the characters (the first 90 % / last 10 % split of
        ``fraction=0.1``)."""
        total, kept, cut = self.characters, 0, len(self.lines)
        target = total * (1.0 - fraction)
        for index, line in enumerate(self.lines):
            if kept >= target:
                cut = index
                break
            kept += len(line) + 1
        return (Corpus(self.lines[:cut], self.source),
                Corpus(self.lines[cut:], self.source))


def read_corpus(spec, text_column: str | None = None, seed: int = 0) -> Corpus:
    """Read the corpus a SPEC names.

    Raises:
        NlpseqError: missing file, not UTF-8 (``FILE:LINE``), a TensorFlow
            Datasets failure, or a corpus with no text at all.
    """
    spec = os.fspath(spec)
    if not spec.strip():
        raise NlpseqError("empty data spec: give a text file or "
                          "tfds:NAME[:SPLIT]")
    if is_tfds_spec(spec):
        name, split = parse_tfds_spec(spec)
        lines = [line for text in read_tfds_texts(name, split, text_column)
                 for line in text.splitlines()]
    else:
        path = existing_file(spec, "a text file (plain or .gz), a table of "
                             "texts or tfds:NAME[:SPLIT]")
        if table_format(path) is not None:
            # (in a seeded random order, as the classifier reads tables: a
            # table is often sorted by label, and validation is its tail)
            texts = read_tabular(path, text_column, labels=False).shuffled(
                seed).texts
            lines = [" ".join(text.split()) for text in texts]
        else:
            lines = list(iter_lines(path, spec))
    if not any(line.strip() for line in lines):
        raise NlpseqError(f"{spec}: empty corpus (no text to learn from)")
    return Corpus(lines, spec)
