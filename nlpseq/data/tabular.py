"""Labelled texts from a table file: CSV, TSV, JSON Lines or Parquet.

Each format may be gzip-compressed (``train.csv.gz``); compression is detected
from the file's first bytes, so the name's ``.gz`` is optional. Text files are
read as strict UTF-8.

Columns: the text column defaults to the first present of ``text, review,
sentence, content, document`` and the label column to the first of ``label,
sentiment, labels, class, target, polarity`` (names compared ignoring case);
``text_column`` / ``label_column`` choose others.

Rows whose text is empty or whitespace-only are skipped and counted; a row
with text but no label (an empty cell, JSON ``null``, a NaN, or the strings
``NaN``, ``None``, ``null`` in any case) is an error naming its line. Label
values keep their type: JSON and Parquet say it themselves; in CSV and TSV a
label column whose values are all integers becomes ``int`` and one of all
``true``/``false`` becomes ``bool``, otherwise labels are strings (stripped of
spaces).

Formats:
    - ``.csv``: comma-separated, first row is the header, ``"`` quotes fields
      (which may span lines; errors name the line where the row starts).
    - ``.tsv``: tab-separated, first row is the header, no quoting (a ``"``
      is an ordinary character; fields cannot hold tabs or line breaks).
    - ``.jsonl`` / ``.json``: one JSON object per line; a ``.json`` (or
      ``.jsonl``) whose content starts with ``[`` may instead be one JSON array
      of objects.
    - ``.parquet``: needs ``pyarrow``.

Example:
    >>> data = read_tabular("../shared/datasets/imdb/valid.csv.gz")  # doctest: +SKIP
    >>> len(data), data.class_names()  # doctest: +SKIP
    (5000, ['neg', 'pos'])
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import numpy as np

from nlpseq.data._files import decode_utf8, is_gzip_name, read_bytes
from nlpseq.data.labelled import LabelledTexts
from nlpseq.errors import NlpseqError

#: File extension (before an optional ``.gz``) -> format name.
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
}
#: Default text column names, in order of preference.
TEXT_COLUMNS = ("text", "review", "sentence", "content", "document", "headline")
#: Default label column names, in order of preference.
LABEL_COLUMNS = ("label", "sentiment", "labels", "class", "target", "polarity",
                 "topic", "category")

_INTEGER = re.compile(r"[+-]?\d+")
#: Label cells that mean "no value" (as pandas and others write it),
#: compared lower-cased: an error, like an empty cell.
MISSING_LABELS = ("nan", "none", "null")


def supported_extensions() -> str:
    """The supported extensions, for messages: ``.csv, .tsv, ... (each ...)``."""
    return ", ".join(FORMATS) + " (each optionally with .gz)"


def table_format(path) -> str | None:
    """The format of a table file from its name, or ``None`` if unsupported.

    Args:
        path: a file name or path; a final ``.gz`` is looked through.

    Example:
        >>> table_format("train.csv.gz"), table_format("notes.txt")
        ('csv', None)
    """
    name = Path(path).name.lower()
    if is_gzip_name(name):
        name = name[:-3]
    return FORMATS.get(Path(name).suffix)


def read_tabular(path, text_column: str | None = None,
                 label_column: str | None = None,
                 labels: bool = True) -> LabelledTexts:
    """Read the texts and labels of a CSV, TSV, JSON Lines or Parquet file.

    Rows are returned in file order (:func:`nlpseq.data.read_labelled_texts`
    shuffles them).

    Args:
        path: the file (plain or gzip-compressed).
        text_column: the column holding the texts; default: the first present
            of :data:`TEXT_COLUMNS`.
        label_column: the column holding the labels; default: the first present
            of :data:`LABEL_COLUMNS`.
        labels: ``False`` reads the texts only (the labels are ``None``).

    Raises:
        NlpseqError: an unsupported extension, an unreadable or malformed file,
            an unknown column, a row without label, or no rows at all; the
            message names the file and, where it applies, the line.

    Example:
        >>> data = read_tabular("reviews.tsv", text_column="body")  # doctest: +SKIP
        >>> data.texts[0], data.labels[0]  # doctest: +SKIP
        ('A fine film.', 'pos')
    """
    path = Path(path)
    shown = str(path)
    kind = table_format(path)
    if kind is None:
        raise NlpseqError(
            f"{shown}: unsupported file type; supported: {supported_extensions()}")
    data = read_bytes(path, shown)
    if not data or data.isspace():
        raise NlpseqError(f"{shown}: no rows (the file is empty)")
    table = None
    if kind == "parquet":
        table = _parquet_table(data, shown)
        columns, rows = list(table.column_names), []
        infer_types = False
    elif kind == "jsonl":
        columns, rows = _json_rows(decode_utf8(data, shown), shown)
        infer_types = False
    else:
        columns, rows = _delimited_rows(
            decode_utf8(data, shown), shown, kind)
        infer_types = True

    text_key = _pick_column(shown, columns, text_column, TEXT_COLUMNS, "text")
    label_key = _pick_column(shown, columns, label_column, LABEL_COLUMNS,
                             "label") if labels else None
    if text_key == label_key:
        raise NlpseqError(
            f"{shown}: the text and the label column are both {text_key!r}")
    text_index = columns.index(text_key)
    label_index = columns.index(label_key) if labels else None
    if table is not None:
        rows = _parquet_rows(table, shown, text_key, label_key)

    with_labels = labels
    texts, labels, skipped = [], [], 0
    for where, row in rows:
        if isinstance(row, dict):
            text, label = row.get(text_key), row.get(label_key)
        else:
            text = row[text_index]
            label = row[label_index] if with_labels else None
        text = _as_text(text, where, text_key)
        if not text.strip():
            skipped += 1
            continue
        texts.append(text)
        labels.append(_as_label(label, where, label_key) if with_labels
                      else None)
    if not texts:
        raise NlpseqError(
            f"{shown}: no rows with text in column {text_key!r} "
            f"({skipped} empty)")
    if infer_types and with_labels:
        labels = _infer_label_type(labels)
    return LabelledTexts(texts, labels, shown, skipped)


def _pick_column(shown, columns, requested, candidates, kind) -> str:
    """The column to use: the requested one, else the first known name."""
    available = ", ".join(repr(c) for c in columns)
    if requested is not None:
        if requested in columns:
            return requested
        folded = [c for c in columns if c.lower() == requested.lower()]
        if len(folded) == 1:
            return folded[0]
        raise NlpseqError(
            f"{shown}: no {kind} column {requested!r}; "
            f"available columns: {available}")
    by_lower = {}
    for column in columns:
        by_lower.setdefault(column.lower(), column)
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    raise NlpseqError(
        f"{shown}: no {kind} column (looked for {', '.join(candidates)}); "
        f"available columns: {available}; choose one with --{kind}-column")


def _as_text(value, where, column) -> str:
    """A cell of the text column as a string ('' for missing)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise NlpseqError(
                f"{where}: column {column!r} is not UTF-8 text") from None
    if isinstance(value, float) and value != value:  # NaN
        return ""
    if isinstance(value, (dict, list)):
        raise NlpseqError(
            f"{where}: column {column!r} holds a {type(value).__name__}, "
            "expected text")
    return str(value)


def _as_label(value, where, column):
    """A cell of the label column as a single Python value."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "" or (isinstance(value, float)
                                        and value != value):
        raise NlpseqError(f"{where}: missing label in column {column!r}")
    if isinstance(value, str) and value.lower() in MISSING_LABELS:
        raise NlpseqError(
            f"{where}: missing label in column {column!r} (it holds "
            f"{value!r}, which is how a missing value is written)")
    if isinstance(value, (dict, list, tuple)):
        raise NlpseqError(
            f"{where}: column {column!r} holds a {type(value).__name__}, "
            "expected a single label")
    return value


def _infer_label_type(labels: list[str]) -> list:
    """Labels read as strings, as ints or bools when all of them are."""
    if all(_INTEGER.fullmatch(label) for label in labels):
        return [int(label) for label in labels]
    lowered = [label.lower() for label in labels]
    if all(label in ("true", "false") for label in lowered):
        return [label == "true" for label in lowered]
    return labels


def _delimited_rows(text: str, shown: str, kind: str):
    """Header and ``(FILE:LINE, fields)`` rows of a CSV or TSV text."""
    if kind == "csv":
        options = {"delimiter": ",", "quoting": csv.QUOTE_MINIMAL}
        hint = " (quote fields that contain ',')"
    else:
        options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
        hint = " (fields cannot contain tabs)"
    # Reviews can be long; the csv module's default limit is 128 KiB a field.
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, **options)
    header, rows, previous = None, [], 0
    try:
        for fields in reader:
            line, previous = previous + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if header is None:
                header = [name.strip() for name in fields]
                continue
            if len(fields) != len(header):
                raise NlpseqError(
                    f"{shown}:{line}: expected {len(header)} fields "
                    f"({', '.join(header)}), found {len(fields)}"
                    + (hint if len(fields) > len(header) else ""))
            rows.append((f"{shown}:{line}", fields))
    except csv.Error as error:
        if "unexpected end of data" in str(error):
            raise NlpseqError(
                f"{shown}:{previous + 1}: a quoted field starting on this line "
                "is never closed") from None
        raise NlpseqError(
            f"{shown}:{reader.line_num}: malformed {kind.upper()} ({error})"
        ) from None
    if header is None:
        raise NlpseqError(f"{shown}: no rows (the file is empty)")
    if not rows:
        raise NlpseqError(f"{shown}: no rows (only a header line)")
    return header, rows


def _json_rows(text: str, shown: str):
    """Columns and ``(where, object)`` rows of JSON Lines or a JSON array."""
    rows = []
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise NlpseqError(
                f"{shown}:{error.lineno}: invalid JSON ({error.msg} at column "
                f"{error.colno})") from None
        if not isinstance(records, list):  # pragma: no cover - '[' means list
            records = [records]
        for number, record in enumerate(records, 1):
            where = f"{shown}: record {number}"
            if not isinstance(record, dict):
                raise NlpseqError(
                    f"{where}: expected a JSON object, found "
                    f"{type(record).__name__}")
            rows.append((where, record))
    else:
        for number, line in enumerate(text.split("\n"), 1):
            line = line.strip()
            if not line:
                continue
            where = f"{shown}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise NlpseqError(
                    f"{where}: invalid JSON ({error.msg} at column "
                    f"{error.colno}); expected one JSON object per line"
                ) from None
            if not isinstance(record, dict):
                raise NlpseqError(
                    f"{where}: expected a JSON object per line, found "
                    f"{type(record).__name__}")
            rows.append((where, record))
    if not rows:
        raise NlpseqError(f"{shown}: no rows (the file holds no JSON objects)")
    columns = list(dict.fromkeys(key for _, record in rows for key in record))
    return columns, rows


def _parquet_table(data: bytes, shown: str):
    """A Parquet file's content as a ``pyarrow.Table`` (needs pyarrow)."""
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError:
        raise NlpseqError(
            f"{shown}: reading Parquet needs pyarrow: pip install pyarrow"
        ) from None
    try:
        table = parquet.read_table(io.BytesIO(data))
    except pyarrow.ArrowException as error:
        reason = (str(error).strip().splitlines() or ["unknown error"])[0]
        raise NlpseqError(
            f"{shown}: not a readable Parquet file ({reason})") from None
    if table.num_rows == 0:
        raise NlpseqError(f"{shown}: no rows")
    return table


def _parquet_rows(table, shown: str, text_key: str, label_key: str):
    """``(FILE: row N, {text, label})`` rows of the two chosen columns."""
    texts = table.column(text_key).to_pylist()
    labels = (table.column(label_key).to_pylist() if label_key is not None
              else [None] * len(texts))
    return [(f"{shown}: row {i}", {text_key: text, label_key: label})
            for i, (text, label) in enumerate(zip(texts, labels), 1)]
