"""Tagged sentences: CoNLL column files, JSONL, and ``tfds:`` datasets.

A tagging SPEC is what ``nlpseq ner train --data SPEC`` takes:

- a CoNLL column file (plain or ``.gz``): one token per line, columns
  separated by spaces or tabs, the token in the first column and the tag in
  the last (``token_column``, ``tag_column`` choose others, counted from 0;
  negative counts from the end), a blank line between sentences,
  ``-DOCSTART-`` lines skipped;
- a ``.jsonl`` file (plain or ``.gz``): one ``{"tokens": [...], "tags":
  [...]}`` object per line;
- ``tfds:NAME[:SPLIT]`` (e.g. ``tfds:conll2003``): a dataset with a
  sequence of token strings and a sequence of tag class labels.

Every problem of the data raises :class:`~nlpseq.errors.NlpseqError` with
one line naming the file and line.

Example:
    >>> data = read_tagged("conll2003/valid.txt")  # doctest: +SKIP
    >>> data.tokens[0], data.tags[0]  # doctest: +SKIP
    (['CRICKET', '-', 'LEICESTERSHIRE', ...], ['O', 'O', 'B-ORG', ...])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from nlpseq.data._files import iter_lines
from nlpseq.data.tfds import (
    is_tfds_spec,
    load_failure,
    open_builder,
    parse_tfds_spec,
)
from nlpseq.errors import NlpseqError


@dataclass
class TaggedSentences:
    """Sentences as token lists with one tag per token.

    Attributes:
        tokens, tags: lists of lists of str (tags may be ``None``: untagged
            input for prediction).
        source: where they came from.
        lines: the line number of each sentence's first token (0 when the
            source has no lines).
        token_per_line: whether each token has a line of its own (CoNLL),
            so that token ``i`` is on line ``lines[n] + i``.
    """

    tokens: list
    tags: list
    source: str
    lines: list = field(default_factory=list)
    token_per_line: bool = False

    def __len__(self):
        return len(self.tokens)

    def subset(self, start, end):
        return TaggedSentences(self.tokens[start:end], self.tags[start:end],
                               self.source, self.lines[start:end],
                               self.token_per_line)


def read_conll(path, token_column=0, tag_column=-1, shown=None,
               tagged=True):
    """Read a CoNLL column file.

    Args:
        path: the file (plain or gzip), or ``"-"`` for standard input.
        token_column, tag_column: which columns hold the token and the tag.
        tagged: whether the file has tags (``False``: a token per line,
            any other column ignored).

    Raises:
        NlpseqError: ``FILE:LINE: expected N columns ...``, a missing
            column, not UTF-8, or no sentence at all.
    """
    shown = shown or str(path)
    tokens, tags, lines = [], [], []
    sentence, sentence_tags, first_line = [], [], 0
    columns = None
    needed = max(token_column if token_column >= 0 else -token_column - 1,
                 (tag_column if tag_column >= 0 else -tag_column - 1)
                 if tagged else 0) + 1

    def close():
        nonlocal sentence, sentence_tags
        if sentence:
            tokens.append(sentence)
            tags.append(sentence_tags if tagged else None)
            lines.append(first_line)
        sentence, sentence_tags = [], []

    for number, line in enumerate(iter_lines(path, shown), start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if columns is None:
            columns = len(fields)
            if columns < needed:
                raise NlpseqError(
                    f"{shown}:{number}: {columns} column(s), but the "
                    f"{'tag' if tagged else 'token'} column is number "
                    f"{needed} (the columns are train's --token-column / "
                    "--tag-column)")
            if tagged and token_column % columns == tag_column % columns:
                raise NlpseqError(
                    f"{shown}:{number}: {columns} column(s), and the token "
                    f"and the tag would both be column "
                    f"{token_column % columns + 1}; tagged data needs a "
                    "token column and a tag column (train's "
                    "--token-column / --tag-column)")
        elif len(fields) != columns:
            raise NlpseqError(
                f"{shown}:{number}: expected {columns} columns (as on the "
                f"first line), got {len(fields)}: {line.strip()[:60]!r}")
        if not sentence:
            first_line = number
        sentence.append(fields[token_column])
        if tagged:
            sentence_tags.append(fields[tag_column])
    close()
    if not tokens:
        raise NlpseqError(f"{shown}: no sentences (an empty file?)")
    return TaggedSentences(tokens, tags, shown, lines, token_per_line=True)


def read_tagged_jsonl(path, shown=None):
    """Read ``{"tokens": [...], "tags": [...]}`` objects, one per line."""
    shown = shown or str(path)
    tokens, tags, lines = [], [], []
    for number, line in enumerate(iter_lines(path, shown), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise NlpseqError(f"{shown}:{number}: not JSON ({error})") \
                from None
        words = record.get("tokens") if isinstance(record, dict) else None
        labels = record.get("tags") if isinstance(record, dict) else None
        if not (isinstance(words, list) and isinstance(labels, list)
                and all(isinstance(w, str) for w in words + labels)):
            raise NlpseqError(
                f"{shown}:{number}: expected an object with \"tokens\" and "
                "\"tags\" lists of strings")
        bad = next((w for w in words if not w.strip() or w.split() != [w]),
                   None)
        if bad is not None:
            raise NlpseqError(
                f"{shown}:{number}: token {bad!r} is empty or holds "
                "whitespace")
        if len(words) != len(labels):
            raise NlpseqError(
                f"{shown}:{number}: {len(words)} tokens but {len(labels)} "
                "tags")
        if words:
            tokens.append(words)
            tags.append(labels)
            lines.append(number)
    if not tokens:
        raise NlpseqError(f"{shown}: no sentences (an empty file?)")
    return TaggedSentences(tokens, tags, shown, lines)


def read_tfds_tagged(name, split="train", data_dir=None, download=True):
    """Tokens and tags of a TensorFlow Datasets tagging dataset: the first
    sequence-of-text feature and the first sequence-of-ClassLabel feature
    whose name mentions ``ner`` (else the first such feature)."""
    tfds, builder, source = open_builder(name, split, data_dir)
    features = builder.info.features
    token_key, tag_key = None, None
    for key in features:
        feature = features[key]
        inner = getattr(feature, "feature", None)
        if inner is None:
            continue
        if isinstance(inner, tfds.features.ClassLabel):
            if tag_key is None or ("ner" in key and "ner" not in tag_key):
                tag_key = key
        elif token_key is None and getattr(inner, "dtype", None) is not None \
                and "string" in str(inner.dtype):
            token_key = key
    if token_key is None or tag_key is None:
        raise NlpseqError(f"{source}: no sequence of tokens and of tag "
                          "labels among its features")
    names = features[tag_key].feature.names
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir,
                            download=download, shuffle_files=False)
        examples = list(tfds.as_numpy(dataset))
    except Exception as error:
        raise load_failure(builder, name, source, error, download,
                           data_dir) from None
    tokens, tags = [], []
    for number, example in enumerate(examples, start=1):
        words = [w.decode("utf-8", errors="replace")
                 for w in example[token_key]]
        if len(words) != len(example[tag_key]):
            raise NlpseqError(
                f"{source}: example {number}: {len(words)} tokens but "
                f"{len(example[tag_key])} tags")
        if words:
            tokens.append(words)
            tags.append([names[int(i)] for i in example[tag_key]])
    if not tokens:
        raise NlpseqError(f"{source}: no sentences")
    return TaggedSentences(tokens, tags, source, [0] * len(tokens))


def read_tagged(spec, token_column=0, tag_column=-1, input_format=None):
    """Read the tagged sentences a SPEC names (see the module docstring).

    ``input_format`` (``conll`` or ``jsonl``) overrides the guess from the
    file name (``.jsonl``/``.json``[``.gz``] is JSONL, anything else CoNLL).
    """
    spec = os.fspath(spec)
    if not spec.strip():
        raise NlpseqError("empty data spec: give a CoNLL or JSONL file, or "
                          "tfds:NAME[:SPLIT]")
    if is_tfds_spec(spec):
        return read_tfds_tagged(*parse_tfds_spec(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        raise NlpseqError(f"{spec}: a folder; expected a CoNLL or JSONL file")
    if not path.exists():
        raise NlpseqError(f"File not found: {spec}")
    name = path.name.lower().removesuffix(".gz")
    kind = input_format or ("jsonl" if name.endswith((".jsonl", ".json"))
                            else "conll")
    if kind == "jsonl":
        return read_tagged_jsonl(path, spec)
    return read_conll(path, token_column, tag_column, spec)
