"""Reading CSV, TSV, JSON Lines and Parquet files (nlpseq.data.tabular)."""

import csv
import gzip
import io
import json
import sys
from pathlib import Path

import pytest

from nlpseq.data import class_names, read_labelled_texts, read_tabular
from nlpseq.errors import NlpseqError

ROWS = [("Great film, loved it", "pos"), ("Awful.", "neg"),
        ('He said "meh"', "neg"), ("Fine\nin the end", "pos")]
DATASETS = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


def _csv_text(rows, header=("text", "label"), delimiter=","):
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write(path, content, gz=False):
    """Write str/bytes content to path, gzip-compressed if gz."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _write_table(tmp_path, kind, rows, gz=False, columns=("text", "label")):
    """Write rows in one of the formats; return the path."""
    name = {"csv": "d.csv", "tsv": "d.tsv", "jsonl": "d.jsonl",
            "json": "d.json", "parquet": "d.parquet"}[kind] + (".gz" if gz else "")
    path = tmp_path / name
    records = [dict(zip(columns, row)) for row in rows]
    if kind == "csv":
        content = _csv_text(rows, columns)
    elif kind == "tsv":  # TSV has no quoting: no tabs or line breaks in fields
        content = "\t".join(columns) + "\n" + "".join(
            "\t".join(str(v) for v in row) + "\n" for row in rows)
    elif kind == "jsonl":
        content = "".join(json.dumps(r) + "\n" for r in records)
    elif kind == "json":
        content = json.dumps(records, indent=2)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(records), buffer)
        content = buffer.getvalue()
    return _write(path, content, gz)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_reads_each_format_plain_and_gz(tmp_path, kind, gz):
    rows = ROWS if kind != "tsv" else [(t.replace("\n", " "), y) for t, y in ROWS]
    path = _write_table(tmp_path, kind, rows, gz)
    data = read_tabular(path)
    assert data.texts == [text for text, _ in rows]
    assert data.labels == [label for _, label in rows]
    assert data.source == str(path)
    assert data.skipped_empty == 0


def test_gzip_is_detected_by_content_not_name(tmp_path):
    content = _csv_text(ROWS)
    gzip_named_csv = _write(tmp_path / "a.csv", content, gz=True)
    plain_named_gz = _write(tmp_path / "b.csv.gz", content, gz=False)
    for path in (gzip_named_csv, plain_named_gz):
        assert read_tabular(path).texts == [text for text, _ in ROWS]


def test_corrupt_gzip_is_an_error(tmp_path):
    data = gzip.compress(_csv_text(ROWS).encode())
    path = _write(tmp_path / "cut.csv.gz", data[: len(data) // 2])
    with pytest.raises(NlpseqError, match=r"^.*cut\.csv\.gz: corrupt gzip data \("):
        read_tabular(path)


def test_default_columns_are_found_ignoring_case(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text(
        [("1", "Nice", "Positive")], ("id", "Review", "Sentiment")))
    data = read_tabular(path)
    assert (data.texts, data.labels) == (["Nice"], ["Positive"])


def test_default_columns_follow_the_order_of_preference(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text(
        [("s", "t", "c", "l")], ("sentence", "text", "class", "label")))
    data = read_tabular(path)
    assert (data.texts, data.labels) == (["t"], ["l"])


def test_explicit_columns(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text(
        [("Good", "x", "5"), ("Bad", "y", "1")], ("body", "text", "Stars")))
    data = read_tabular(path, text_column="body", label_column="stars")
    assert (data.texts, data.labels) == (["Good", "Bad"], [5, 1])


def test_unknown_explicit_column_lists_the_columns(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text(ROWS))
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path, text_column="body")
    assert str(caught.value) == (
        f"{path}: no text column 'body'; available columns: 'text', 'label'")
    with pytest.raises(NlpseqError) as caught:
        read_labelled_texts(path, label_column="stars")
    assert str(caught.value) == (
        f"{path}: no label column 'stars'; available columns: 'text', 'label'")


def test_missing_default_column_says_what_was_looked_for(tmp_path):
    path = _write(tmp_path / "r.jsonl", '{"body": "Good", "label": "pos"}\n')
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}: no text column (looked for text, review, sentence, content, "
        "document, headline); available columns: 'body', 'label'; choose one with "
        "--text-column")


def test_text_and_label_cannot_be_the_same_column(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text(ROWS))
    with pytest.raises(NlpseqError, match="text and the label column are both"):
        read_tabular(path, label_column="text")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_non_utf8_bytes_name_file_and_line(tmp_path, gz):
    content = "text,label\nok,pos\nalso ok,neg\ncaf\xe9 bad,pos\n".encode("latin-1")
    path = _write(tmp_path / ("r.csv.gz" if gz else "r.csv"), content, gz)
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}:4: not UTF-8 text (byte 0xe9 at column 4); save the file as UTF-8")


def test_non_utf8_in_jsonl(tmp_path):
    path = _write(tmp_path / "r.jsonl",
                  b'{"text": "ok", "label": 1}\n{"text": "\xff", "label": 0}\n')
    with pytest.raises(NlpseqError, match=r"r\.jsonl:2: not UTF-8 text \(byte 0xff"):
        read_tabular(path)


def test_utf8_byte_order_mark_is_ignored(tmp_path):
    path = _write(tmp_path / "r.csv", b"\xef\xbb\xbf" + _csv_text(ROWS).encode())
    assert read_tabular(path).labels == [label for _, label in ROWS]


@pytest.mark.parametrize("name, content, reason", [
    ("e.csv", "", "no rows (the file is empty)"),
    ("e.tsv", "\n\n", "no rows (the file is empty)"),
    ("h.csv", "text,label\n", "no rows (only a header line)"),
    ("h.tsv", "text\tlabel\n\n", "no rows (only a header line)"),
    ("e.jsonl", "", "no rows (the file is empty)"),
    ("b.jsonl", "\n \n", "no rows (the file is empty)"),
    ("a.json", "[]", "no rows (the file holds no JSON objects)"),
])
def test_empty_files_have_no_rows(tmp_path, name, content, reason):
    path = _write(tmp_path / name, content)
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}: {reason}"


def test_empty_texts_are_skipped_and_counted(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text(
        [("Good", "pos"), ("", "neg"), ("   ", "pos"), ("Bad", "neg"),
         ("\n", "")]))
    data = read_tabular(path)
    assert (data.texts, data.labels, data.skipped_empty) == (
        ["Good", "Bad"], ["pos", "neg"], 3)


def test_null_or_absent_json_texts_are_skipped(tmp_path):
    path = _write(tmp_path / "r.jsonl", "\n".join([
        '{"text": "Good", "label": "pos"}', '{"text": null, "label": "neg"}',
        '{"label": "neg"}', '{"text": "", "label": "pos"}', ""]))
    data = read_tabular(path)
    assert (data.texts, data.skipped_empty) == (["Good"], 3)


def test_only_empty_texts_is_an_error(tmp_path):
    path = _write(tmp_path / "r.csv", _csv_text([("", "pos"), (" ", "neg")]))
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}: no rows with text in column 'text' (2 empty)"


def test_missing_label_names_the_line_after_multiline_rows(tmp_path):
    # Row 1 spans lines 2-4, line 5 is blank, the whitespace text on line 7 is
    # skipped (its missing label does not matter), so the error is on line 8.
    content = 'text,label\n"one\ntwo\nthree",pos\n\nok,neg\n" ",\nno label,\n'
    path = _write(tmp_path / "r.csv", content)
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}:8: missing label in column 'label'"


@pytest.mark.parametrize("cell", ["NaN", "nan", "None", "null", " NAN "])
@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_label_written_as_a_missing_value_is_an_error(tmp_path, cell, kind):
    # (pandas writes a missing label as NaN: it is not a class of its own)
    rows = [("good", "pos"), ("bad", "neg"), ("fine", cell)]
    if kind == "jsonl":
        content = "".join(json.dumps({"text": t, "label": v}) + "\n"
                          for t, v in rows)
    else:
        sep = "," if kind == "csv" else "\t"
        content = f"text{sep}label\n" + "".join(
            f"{t}{sep}{v}\n" for t, v in rows)
    path = _write(tmp_path / f"r.{kind}", content)
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}:4: missing label in column 'label' (it holds "
        f"{cell.strip()!r}, which is how a missing value is written)"
        if kind != "jsonl" else
        f"{path}:3: missing label in column 'label' (it holds "
        f"{cell.strip()!r}, which is how a missing value is written)")


def test_missing_label_in_jsonl_names_the_line(tmp_path):
    path = _write(tmp_path / "r.jsonl",
                  '{"text": "a", "label": 1}\n\n{"text": "b"}\n')
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}:3: missing label in column 'label'"


def test_missing_label_in_json_array_names_the_record(tmp_path):
    path = _write(tmp_path / "r.json", '[{"text": "a", "label": 1},\n'
                                       ' {"text": "b", "label": null}]')
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}: record 2: missing label in column 'label'"


def test_missing_label_in_parquet_names_the_row(tmp_path):
    path = _write_table(tmp_path, "parquet", [("a", "pos"), ("b", None)])
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}: row 2: missing label in column 'label'"


def test_wrong_field_count_names_the_line(tmp_path):
    path = _write(tmp_path / "r.csv", "text,label\nok,pos\ngreat, really,pos\n")
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}:3: expected 2 fields (text, label), found 3 "
        "(quote fields that contain ',')")
    path = _write(tmp_path / "r.tsv", "text\tlabel\nonly text\n")
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == f"{path}:2: expected 2 fields (text, label), found 1"


def test_unclosed_quote_names_the_line_where_it_opens(tmp_path):
    path = _write(tmp_path / "r.csv", 'text,label\nok,pos\n"never closed,neg\nx,y\n')
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}:3: a quoted field starting on this line is never closed")


def test_malformed_quoting_names_the_line(tmp_path):
    path = _write(tmp_path / "r.csv", 'text,label\n"quoted"junk,pos\n')
    with pytest.raises(NlpseqError, match=r"r\.csv:2: malformed CSV \("):
        read_tabular(path)


def test_invalid_json_line_names_the_line(tmp_path):
    path = _write(tmp_path / "r.jsonl", '{"text": "a", "label": 1}\n{"text": \n')
    with pytest.raises(NlpseqError, match=r"r\.jsonl:2: invalid JSON \(Expecting"):
        read_tabular(path)
    path = _write(tmp_path / "s.jsonl", '{"text": "a", "label": 1}\n["b", 0]\n')
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}:2: expected a JSON object per line, found list")


def test_tsv_quotes_are_ordinary_characters(tmp_path):
    path = _write(tmp_path / "r.tsv",
                  'text\tlabel\n"Quoted" start\tpos\nsay "hi\tneg\n')
    assert read_tabular(path).texts == ['"Quoted" start', 'say "hi']


def test_csv_label_types_are_inferred(tmp_path):
    ints = read_tabular(_write(tmp_path / "i.csv", _csv_text(
        [("a", "10"), ("b", "2"), ("c", " 1 ")])))
    assert ints.labels == [10, 2, 1]
    assert class_names(ints.labels) == ["1", "2", "10"]
    bools = read_tabular(_write(tmp_path / "b.csv", _csv_text(
        [("a", "true"), ("b", "False"), ("c", "TRUE")])))
    assert bools.labels == [True, False, True]
    assert class_names(bools.labels) == ["False", "True"]
    mixed = read_tabular(_write(tmp_path / "m.csv", _csv_text(
        [("a", "1"), ("b", "pos ")])))
    assert mixed.labels == ["1", "pos"]


def test_json_label_types_are_kept(tmp_path):
    path = _write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in [
        {"text": "a", "label": True}, {"text": "b", "label": False}]))
    assert read_tabular(path).labels == [True, False]
    path = _write(tmp_path / "s.jsonl", "\n".join(json.dumps(r) for r in [
        {"text": "a", "label": 0}, {"text": "b", "label": 3}]))
    data = read_tabular(path)
    assert data.labels == [0, 3]
    assert class_names(data.labels) == ["0", "3"]


def test_json_label_must_be_a_single_value(tmp_path):
    path = _write(tmp_path / "r.jsonl", '{"text": "a", "label": ["x", "y"]}\n')
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}:1: column 'label' holds a list, expected a single label")


def test_parquet_label_types_are_kept(tmp_path):
    path = _write_table(tmp_path, "parquet", [("a", 1), ("b", 0), ("c", 2)])
    data = read_tabular(path)
    assert data.labels == [1, 0, 2]
    assert class_names(data.labels) == ["0", "1", "2"]


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path, monkeypatch):
    path = _write(tmp_path / "r.parquet", b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == (
        f"{path}: reading Parquet needs pyarrow: pip install pyarrow")


def test_corrupt_parquet_is_an_error(tmp_path):
    pytest.importorskip("pyarrow")
    path = _write(tmp_path / "r.parquet", b"this is not parquet at all")
    with pytest.raises(NlpseqError, match=r"r\.parquet: not a readable Parquet file"):
        read_tabular(path)


def test_unsupported_extension(tmp_path):
    path = _write(tmp_path / "r.xlsx", "whatever")
    expected = (f"{path}: unsupported file type; supported: .csv, .tsv, .jsonl, "
                ".json, .parquet (each optionally with .gz)")
    with pytest.raises(NlpseqError) as caught:
        read_tabular(path)
    assert str(caught.value) == expected
    with pytest.raises(NlpseqError) as caught:
        read_labelled_texts(path)
    assert str(caught.value) == (
        expected + ", a folder of label sub-folders, or tfds:NAME[:SPLIT]")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(NlpseqError) as caught:
        read_labelled_texts(str(path))
    assert str(caught.value) == f"File not found: {path}"


def test_shuffling_is_seeded_and_mixes_a_sorted_file(tmp_path):
    rows = [(f"neg {i}", "neg") for i in range(50)] + [
        (f"pos {i}", "pos") for i in range(50)]
    path = _write_table(tmp_path, "csv", rows, gz=True)
    in_order = read_labelled_texts(path, shuffle=False)
    assert in_order.texts == [text for text, _ in rows]
    first = read_labelled_texts(path, seed=3)
    assert read_labelled_texts(path, seed=3).texts == first.texts
    assert read_labelled_texts(path, seed=4).texts != first.texts
    assert set(first.labels[:10]) == {"neg", "pos"}
    assert sorted(first.texts) == sorted(in_order.texts)
    assert all(text.split()[0] == label
               for text, label in zip(first.texts, first.labels))


def test_real_imdb_validation_file():
    path = DATASETS / "imdb" / "valid.csv.gz"
    if not path.is_file():
        pytest.skip("shared datasets not present")
    data = read_labelled_texts(path, seed=0)
    assert len(data) == 5000
    assert data.skipped_empty == 0
    assert class_names(data.labels) == ["neg", "pos"]
    assert data.labels.count("pos") == data.labels.count("neg") == 2500
    head = data.labels[:100]
    assert 30 <= head.count("pos") <= 70
    assert all(isinstance(text, str) and text.strip() for text in data.texts)


def test_empty_spec():
    with pytest.raises(NlpseqError) as caught:
        read_labelled_texts(" ")
    assert str(caught.value) == (
        "empty data spec: give a file, a folder or tfds:NAME[:SPLIT]")
