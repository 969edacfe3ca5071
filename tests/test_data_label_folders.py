"""Reading a folder of label sub-folders of .txt files (nlpseq.data.label_folders)."""

import gzip

import pytest

from nlpseq.data import read_folder, read_labelled_texts
from nlpseq.errors import NlpseqError


def _imdb_like(root, per_label=3):
    """An aclImdb-style folder: neg/, pos/, unsup/ and some clutter."""
    for label in ("neg", "pos", "unsup"):
        (root / label).mkdir(parents=True)
        for i in range(per_label):
            (root / label / f"{i}_{label}.txt").write_text(
                f"{label} review {i}", encoding="utf-8")
    (root / "labeledBow.feat").write_text("0:1 2:3\n")
    (root / "urls_pos.txt").write_text("http://example.com\n")
    (root / "empty_dir").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.md").write_text("not a text file")
    (root / ".cache").mkdir()
    (root / ".cache" / "x.txt").write_text("hidden")
    return root


def test_reads_label_folders_in_order(tmp_path):
    root = _imdb_like(tmp_path / "train")
    data = read_folder(root)
    assert data.labels == ["neg"] * 3 + ["pos"] * 3
    assert data.texts == [f"{label} review {i}" for label in ("neg", "pos")
                          for i in range(3)]
    assert data.source == str(root)
    assert data.skipped_empty == 0


def test_unsup_is_read_only_when_asked_for(tmp_path):
    root = _imdb_like(tmp_path / "train")
    data = read_folder(root, labels=["pos", "unsup"])
    assert data.labels == ["pos"] * 3 + ["unsup"] * 3


def test_unknown_label_folder_lists_the_label_folders(tmp_path):
    root = _imdb_like(tmp_path / "train")
    with pytest.raises(NlpseqError) as caught:
        read_folder(root, labels=["pos", "neutral", "notes"])
    assert str(caught.value) == (
        f"{root}: no label folder 'neutral', 'notes' holding .txt files; "
        "label folders: neg, pos, unsup")


def test_gzipped_text_files_are_read(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "a.txt.gz").write_bytes(gzip.compress("zipped".encode()))
    (tmp_path / "good" / "b.TXT").write_text("upper case name")
    data = read_folder(tmp_path)
    assert data.texts == ["zipped", "upper case name"]
    assert data.labels == ["good", "good"]


def test_no_label_folders_is_an_error(tmp_path):
    (tmp_path / "stray.txt").write_text("beside, not inside, a label folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NlpseqError) as caught:
        read_folder(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: no label folders (expected one sub-folder per label "
        "holding .txt files, like pos/1.txt and neg/2.txt)")


def test_only_unsup_means_no_label_folders(tmp_path):
    (tmp_path / "unsup").mkdir()
    (tmp_path / "unsup" / "1.txt").write_text("unlabelled")
    with pytest.raises(NlpseqError, match="no label folders"):
        read_folder(tmp_path)


def test_non_utf8_file_is_named_with_its_line(tmp_path):
    (tmp_path / "pos").mkdir()
    (tmp_path / "pos" / "a.txt").write_text("fine")
    bad = tmp_path / "pos" / "b.txt"
    bad.write_bytes(b"first line\nna\xefve\n")
    with pytest.raises(NlpseqError) as caught:
        read_folder(tmp_path)
    assert str(caught.value) == (
        f"{bad}:2: not UTF-8 text (byte 0xef at column 3); save the file as UTF-8")


def test_empty_files_are_skipped_and_counted(tmp_path):
    for label, texts in {"neg": ["bad", ""], "pos": [" \n", "good", "great"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(text)
    data = read_folder(tmp_path)
    assert (data.texts, data.labels, data.skipped_empty) == (
        ["bad", "good", "great"], ["neg", "pos", "pos"], 2)


def test_only_empty_files_is_an_error(tmp_path):
    (tmp_path / "pos").mkdir()
    (tmp_path / "pos" / "0.txt").write_text("")
    with pytest.raises(NlpseqError) as caught:
        read_folder(tmp_path)
    assert str(caught.value) == f"{tmp_path}: all 1 text files are empty"


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(NlpseqError) as caught:
        read_folder(tmp_path / "gone")
    assert str(caught.value) == f"File not found: {tmp_path / 'gone'}"
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NlpseqError) as caught:
        read_folder(tmp_path / "f.txt")
    assert str(caught.value) == f"{tmp_path / 'f.txt'}: not a folder"


def test_dispatcher_reads_a_folder_and_shuffles_it(tmp_path):
    root = _imdb_like(tmp_path / "train", per_label=20)
    in_order = read_labelled_texts(str(root), shuffle=False)
    assert in_order.labels == ["neg"] * 20 + ["pos"] * 20
    first = read_labelled_texts(root, seed=5)
    assert read_labelled_texts(root, seed=5).texts == first.texts
    assert set(first.labels[:10]) == {"neg", "pos"}
    assert all(text.startswith(label) for text, label in zip(first.texts,
                                                             first.labels))


def test_dispatcher_rejects_columns_for_a_folder(tmp_path):
    root = _imdb_like(tmp_path / "train")
    with pytest.raises(NlpseqError) as caught:
        read_labelled_texts(root, text_column="text")
    assert str(caught.value) == (
        f"{root}: a folder of label sub-folders has no columns; "
        "--text-column and --label-column are for table files")
