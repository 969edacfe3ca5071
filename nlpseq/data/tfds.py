"""Labelled texts from a TensorFlow Datasets dataset: ``tfds:NAME[:SPLIT]``.

``NAME`` is what ``tfds.load`` takes (``imdb_reviews``, ``glue/sst2``,
``imdb_reviews:1.0.0``); ``SPLIT`` defaults to ``train`` and may be sliced
(``train[:80%]``). The text and label features come from the dataset's
``supervised_keys`` when it has them, else the first text feature and the
first ``ClassLabel`` feature; ``text_column`` / ``label_column`` name others.
``ClassLabel`` labels are returned as their class names (``"neg"``, ``"pos"``).

The dataset is downloaded and prepared on first use (into ``data_dir``, by
default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); any failure of
TensorFlow Datasets (unknown name, no network, not prepared) becomes one
:class:`~nlpseq.errors.NlpseqError` line. TensorFlow is imported only here,
and only when a ``tfds:`` spec is read.

Example:
    >>> data = read_tfds("imdb_reviews", "test")  # doctest: +SKIP
    >>> len(data), data.class_names()  # doctest: +SKIP
    (25000, ['neg', 'pos'])
"""

from __future__ import annotations

import os
import re

import numpy as np

from nlpseq.data.labelled import LabelledTexts
from nlpseq.errors import NlpseqError

#: What a dataset spec starts with.
PREFIX = "tfds:"
#: ``NAME[:VERSION][:SPLIT]``; a version is three dot-separated parts.
_SPEC = re.compile(
    r"(?P<name>[^:\s]+(?::\d+\.(?:\d+|\*)\.(?:\d+|\*))?)(?::(?P<split>.*))?")


def is_tfds_spec(spec: str) -> bool:
    """Whether a data spec names a TensorFlow Datasets dataset."""
    return spec.startswith(PREFIX)


def parse_tfds_spec(spec: str) -> tuple[str, str]:
    """The dataset name and split of a ``tfds:NAME[:SPLIT]`` spec.

    Args:
        spec: e.g. ``tfds:imdb_reviews``, ``tfds:imdb_reviews:test``,
            ``tfds:imdb_reviews:1.0.0:train[:10%]``.

    Example:
        >>> parse_tfds_spec("tfds:imdb_reviews")
        ('imdb_reviews', 'train')
        >>> parse_tfds_spec("tfds:imdb_reviews:1.0.0:train[:10%]")
        ('imdb_reviews:1.0.0', 'train[:10%]')
    """
    match = _SPEC.fullmatch(spec[len(PREFIX):]) if is_tfds_spec(spec) else None
    if match is None or match["split"] == "":
        raise NlpseqError(
            f"{spec}: expected tfds:NAME[:SPLIT], e.g. tfds:imdb_reviews:test")
    return match["name"], match["split"] or "train"


def _reason(error: BaseException) -> str:
    """The first non-empty line of an exception's message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    return reason if len(reason) <= 400 else reason[:397] + "..."


def _is_text_feature(feature) -> bool:
    """A scalar string feature (``Text`` without an encoder, or a Tensor)."""
    dtype = getattr(feature, "np_dtype", None)
    return (dtype is not None and np.dtype(dtype).kind in "OSU"
            and tuple(getattr(feature, "shape", ())) == ())


def _describe(features) -> str:
    return ", ".join(f"{key} ({type(features[key]).__name__})" for key in features)


def _pick_features(info, text_column, label_column, source, class_label_type):
    """The (text, label) feature keys of a dataset."""
    features = info.features
    if not hasattr(features, "keys"):
        raise NlpseqError(
            f"{source}: its features are not a dictionary, cannot find the text")
    supervised = info.supervised_keys
    if not (isinstance(supervised, (tuple, list)) and len(supervised) >= 2
            and all(isinstance(key, str) and key in features
                    for key in supervised[:2])):
        supervised = (None, None)

    if text_column is not None:
        if text_column not in features:
            raise NlpseqError(
                f"{source}: no feature {text_column!r}; features: "
                f"{_describe(features)}")
        if not _is_text_feature(features[text_column]):
            raise NlpseqError(
                f"{source}: feature {text_column!r} is not text "
                f"({type(features[text_column]).__name__})")
        text_key = text_column
    elif supervised[0] and _is_text_feature(features[supervised[0]]):
        text_key = supervised[0]
    else:
        text_key = next(
            (key for key in features if _is_text_feature(features[key])), None)
        if text_key is None:
            raise NlpseqError(
                f"{source}: no text feature; features: {_describe(features)}")

    if label_column is not None:
        if label_column not in features:
            raise NlpseqError(
                f"{source}: no feature {label_column!r}; features: "
                f"{_describe(features)}")
        label_key = label_column
    elif supervised[1] and supervised[1] != text_key:
        label_key = supervised[1]
    else:
        label_key = next(
            (key for key in features
             if isinstance(features[key], class_label_type)), None)
        if label_key is None:
            raise NlpseqError(
                f"{source}: no ClassLabel feature for the labels; features: "
                f"{_describe(features)}; choose one with --label-column")
    if label_key == text_key:
        raise NlpseqError(
            f"{source}: the text and the label feature are both {text_key!r}")
    return text_key, label_key


def open_builder(name: str, split: str, data_dir: str | None = None):
    """``(tfds, builder, source)`` of a dataset; any failure (the module
    missing, an unknown name) is one :class:`NlpseqError` line.

    TensorFlow Datasets raises many kinds of error (its own, AssertionError,
    ValueError, OSError, TensorFlow's); all mean "this dataset cannot be
    read".
    """
    from nlpseq.runtime import import_tensorflow

    source = f"{PREFIX}{name}:{split}"
    import_tensorflow()  # (quietly, before TensorFlow Datasets imports it)
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise NlpseqError(
            f"{source}: reading TensorFlow Datasets needs tensorflow-datasets: "
            "pip install tensorflow-datasets") from None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:
        raise NlpseqError(f"{source}: {_reason(error)}") from None
    return tfds, builder, source


def load_failure(builder, name, source, error, download=True,
                 data_dir=None):
    """The one-line :class:`NlpseqError` of a failed ``tfds.load``: a
    dataset that is not prepared locally and could not be downloaded and
    prepared here says so, and how to prepare it."""
    reason = _reason(error)
    try:
        prepared = builder.is_prepared()
    except Exception:  # noqa: BLE001 (then the reason is all there is)
        prepared = True
    if prepared or not download:
        return NlpseqError(f"{source}: {reason}")
    root = data_dir or os.environ.get("TFDS_DATA_DIR") or \
        "~/tensorflow_datasets"
    return NlpseqError(
        f"{source}: the dataset is not prepared in {builder.data_dir} and "
        f"cannot be downloaded and prepared here ({reason}); prepare it "
        "where the network is reachable (tfds build "
        f"{name.split(':')[0]} --data_dir DIR) and copy DIR to {root}, or "
        "set TFDS_DATA_DIR to a prepared copy")


def read_tfds(name: str, split: str = "train", text_column: str | None = None,
              label_column: str | None = None, data_dir: str | None = None,
              download: bool = True) -> LabelledTexts:
    """Read the texts and labels of a TensorFlow Datasets split.

    Examples come in the dataset's stored order (files are not shuffled);
    :func:`nlpseq.data.read_labelled_texts` shuffles them.

    Args:
        name: the dataset, as ``tfds.load`` takes it (``imdb_reviews``).
        split: the split, possibly sliced (``train[:90%]``).
        text_column: the text feature (default: from ``supervised_keys``, else
            the first text feature).
        label_column: the label feature (default: from ``supervised_keys``,
            else the first ``ClassLabel``).
        data_dir: where TensorFlow Datasets keeps its data (default: its own).
        download: download and prepare the dataset if it is not there yet.

    Raises:
        NlpseqError: TensorFlow Datasets is missing or fails (unknown dataset
            or split, download failure, not prepared), no text or label
            feature, or a text that is not UTF-8.

    Example:
        >>> data = read_tfds("imdb_reviews", "train[:1000]")  # doctest: +SKIP
        >>> data.labels[:3]  # doctest: +SKIP
        ['neg', 'neg', 'pos']
    """
    tfds, builder, source = open_builder(name, split, data_dir)
    text_key, label_key = _pick_features(
        builder.info, text_column, label_column, source,
        tfds.features.ClassLabel)
    label_feature = builder.info.features[label_key]
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir,
                            download=download, as_supervised=False,
                            shuffle_files=False)
        pairs = dataset.map(lambda example: (example[text_key],
                                             example[label_key])).batch(1024)
        batches = list(tfds.as_numpy(pairs))
    except Exception as error:
        raise load_failure(builder, name, source, error, download,
                           data_dir) from None

    to_name = (label_feature.int2str
               if isinstance(label_feature, tfds.features.ClassLabel) else None)
    texts, labels, skipped, number = [], [], 0, 0
    for text_batch, label_batch in batches:
        for raw_text, raw_label in zip(text_batch, label_batch):
            number += 1
            try:
                text = raw_text.decode("utf-8")
            except UnicodeDecodeError:
                raise NlpseqError(
                    f"{source}: example {number}: feature {text_key!r} is not "
                    "UTF-8 text") from None
            if not text.strip():
                skipped += 1
                continue
            label = raw_label.item() if isinstance(raw_label, np.generic) \
                else raw_label
            if to_name is not None:
                label = to_name(int(label))
            elif isinstance(label, bytes):
                label = label.decode("utf-8", errors="replace")
            texts.append(text)
            labels.append(label)
    if not texts:
        raise NlpseqError(
            f"{source}: no examples with text in feature {text_key!r} "
            f"({skipped} empty)")
    return LabelledTexts(texts, labels, source, skipped)


def read_tfds_texts(name: str, split: str = "train",
                    text_column: str | None = None,
                    data_dir: str | None = None,
                    download: bool = True) -> list[str]:
    """The texts of a TensorFlow Datasets split, in stored order (unlabelled
    corpora for language models; each example's text may span many lines).

    Args:
        name, split, data_dir, download: as for :func:`read_tfds`.
        text_column: the text feature (default: the first text feature).

    Raises:
        NlpseqError: TensorFlow Datasets is missing or fails, no text
            feature, or a text that is not UTF-8.
    """
    tfds, builder, source = open_builder(name, split, data_dir)
    features = builder.info.features
    if not hasattr(features, "keys"):
        raise NlpseqError(
            f"{source}: its features are not a dictionary, cannot find the text")
    if text_column is not None:
        if text_column not in features or not _is_text_feature(
                features[text_column]):
            raise NlpseqError(
                f"{source}: no text feature {text_column!r}; features: "
                f"{_describe(features)}")
        key = text_column
    else:
        key = next((k for k in features if _is_text_feature(features[k])),
                   None)
        if key is None:
            raise NlpseqError(
                f"{source}: no text feature; features: {_describe(features)}")
    return read_tfds_strings(tfds, name, split, (key,), source, data_dir,
                             download, builder)[0]


def read_tfds_strings(tfds, name, split, keys, source, data_dir=None,
                      download=True, builder=None):
    """The text features ``keys`` of a split, decoded: one list per key, in
    stored order (``tfds`` and ``source`` as :func:`open_builder` gives).

    Raises:
        NlpseqError: TensorFlow Datasets fails, or a text is not UTF-8.
    """
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir,
                            download=download, shuffle_files=False)
        batches = list(tfds.as_numpy(dataset.map(
            lambda example: tuple(example[k] for k in keys)).batch(1024)))
    except Exception as error:
        if builder is None:
            raise NlpseqError(f"{source}: {_reason(error)}") from None
        raise load_failure(builder, name, source, error, download,
                           data_dir) from None
    columns = [[] for _ in keys]
    for batch in batches:
        for key, column, values in zip(keys, columns, batch):
            for raw in values:
                try:
                    column.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise NlpseqError(
                        f"{source}: example {len(column) + 1}: feature "
                        f"{key!r} is not UTF-8 text") from None
    return columns
