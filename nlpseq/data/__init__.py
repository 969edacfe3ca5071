"""Reading labelled texts: one data SPEC in, texts and their labels out.

A SPEC is what ``nlpseq sentiment train --data SPEC`` takes:

- ``tfds:NAME[:SPLIT]``: a TensorFlow Datasets dataset
  (:mod:`nlpseq.data.tfds`), e.g. ``tfds:imdb_reviews:test``;
- a folder: one sub-folder of ``.txt`` files per label, the aclImdb layout
  (:mod:`nlpseq.data.label_folders`);
- a ``.csv``, ``.tsv``, ``.jsonl`` / ``.json`` or ``.parquet`` file, each
  optionally gzip-compressed (:mod:`nlpseq.data.tabular`).

Every bad input raises :class:`~nlpseq.errors.NlpseqError` with one line that
names the file (and line). Reading shuffles, with a seed, since real files are
often sorted by label.

Example:
    >>> from nlpseq.data import class_names, encode_labels, read_labelled_texts
    >>> train = read_labelled_texts("imdb/train.csv.gz")  # doctest: +SKIP
    >>> classes = class_names(train.labels)  # doctest: +SKIP
    >>> y = encode_labels(train.labels, classes, source=train.source)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from nlpseq.data.label_folders import read_folder
from nlpseq.data.labelled import (
    LabelledTexts,
    class_names,
    encode_labels,
    label_name,
)
from nlpseq.data.tabular import read_tabular, supported_extensions, table_format
from nlpseq.data.tfds import is_tfds_spec, parse_tfds_spec, read_tfds
from nlpseq.errors import NlpseqError


def held_out_cut(count, fraction, source, unit):
    """Where a split of ``count`` examples holding out ``fraction`` for
    validation cuts (the last part validates).

    Raises:
        NlpseqError: too few examples to keep some on both sides.
    """
    held = max(1, int(round(count * fraction)))
    if held >= count:
        raise NlpseqError(
            f"{source}: {count} {unit} are too few to hold out "
            f"--valid-split {fraction} for validation")
    return count - held


__all__ = ["held_out_cut",
    "LabelledTexts",
    "class_names",
    "encode_labels",
    "label_name",
    "read_folder",
    "read_labelled_texts",
    "read_tabular",
    "read_tfds",
]


def read_labelled_texts(spec, text_column: str | None = None,
                        label_column: str | None = None, shuffle: bool = True,
                        seed: int = 0) -> LabelledTexts:
    """Read the labelled texts that a data SPEC names.

    Args:
        spec: ``tfds:NAME[:SPLIT]``, a folder of label sub-folders, or a table
            file (``.csv``, ``.tsv``, ``.jsonl``, ``.json``, ``.parquet``, each
            optionally ``.gz``); a ``str`` or a path.
        text_column: the column (or TFDS feature) holding the texts; default:
            found by name (``text``, ``review``, ...). Not for folders.
        label_column: the column (or TFDS feature) holding the labels; default:
            found by name (``label``, ``sentiment``, ...). Not for folders.
        shuffle: put the texts in a random order; ``False`` keeps the order of
            the file (folder: label by label, files by name).
        seed: the shuffling seed: the same seed gives the same order.

    Returns:
        A :class:`LabelledTexts`.

    Raises:
        NlpseqError: ``File not found: PATH``, an unsupported file type, or any
            problem of the data itself (see the readers).

    Example:
        >>> data = read_labelled_texts("reviews.csv", seed=1)  # doctest: +SKIP
        >>> data.texts[0], data.labels[0], data.skipped_empty  # doctest: +SKIP
        ('Loved it.', 'pos', 0)
    """
    spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str or a path, got {type(spec).__name__}")
    if not spec.strip():
        raise NlpseqError(
            "empty data spec: give a file, a folder or tfds:NAME[:SPLIT]")
    if is_tfds_spec(spec):
        name, split = parse_tfds_spec(spec)
        data = read_tfds(name, split, text_column=text_column,
                         label_column=label_column)
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            if text_column is not None or label_column is not None:
                raise NlpseqError(
                    f"{spec}: a folder of label sub-folders has no columns; "
                    "--text-column and --label-column are for table files")
            data = read_folder(path)
        elif not path.exists():
            raise NlpseqError(f"File not found: {spec}")
        elif table_format(path) is None:
            raise NlpseqError(
                f"{spec}: unsupported file type; supported: "
                f"{supported_extensions()}, a folder of label sub-folders, or "
                "tfds:NAME[:SPLIT]")
        else:
            data = read_tabular(path, text_column=text_column,
                                label_column=label_column)
    return data.shuffled(seed) if shuffle else data
