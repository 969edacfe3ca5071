"""Labelled texts from a folder of label sub-folders (the aclImdb layout).

The given folder's immediate sub-folders are the labels and each holds one
text per ``.txt`` file (``.txt.gz`` too), read as strict UTF-8::

    aclImdb/train/
        neg/0_3.txt  neg/1_1.txt  ...
        pos/0_9.txt  pos/1_7.txt  ...
        unsup/...    (skipped: aclImdb's unlabelled reviews)

Sub-folders holding no text files, hidden ones (``.git``) and files beside the
sub-folders are ignored. A sub-folder named ``unsup`` (aclImdb's 50,000
unlabelled reviews) is skipped unless asked for by ``labels``. Choose the
folder itself: ``aclImdb/train`` for training, ``aclImdb/test`` for testing.

Example:
    >>> data = read_folder("aclImdb/train")  # doctest: +SKIP
    >>> len(data), data.class_names()  # doctest: +SKIP
    (25000, ['neg', 'pos'])
"""

from __future__ import annotations

from pathlib import Path

from nlpseq.data._files import decode_utf8, read_bytes
from nlpseq.data.labelled import LabelledTexts
from nlpseq.errors import NlpseqError

#: Sub-folders skipped unless named in ``labels``: they hold unlabelled texts.
UNLABELLED_FOLDERS = ("unsup",)
#: File name endings read as texts (compared ignoring case).
TEXT_SUFFIXES = (".txt", ".txt.gz")


def _is_text_file(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(TEXT_SUFFIXES)


def label_folders(folder) -> dict[str, list[Path]]:
    """The label sub-folders of a folder and their text files, sorted by name.

    Args:
        folder: the folder holding one sub-folder per label.

    Example:
        >>> sorted(label_folders("aclImdb/train"))  # doctest: +SKIP
        ['neg', 'pos', 'unsup']
    """
    found = {}
    for sub in sorted(Path(folder).iterdir()):
        if sub.name.startswith(".") or not sub.is_dir():
            continue
        files = sorted(f for f in sub.iterdir() if _is_text_file(f))
        if files:
            found[sub.name] = files
    return found


def read_folder(folder, labels=None) -> LabelledTexts:
    """Read one text per file, labelled by the name of its sub-folder.

    Texts come label by label (in ``labels`` order, else sorted), files sorted
    by name; :func:`nlpseq.data.read_labelled_texts` shuffles them. Empty or
    whitespace-only files are skipped and counted.

    Args:
        folder: the folder whose sub-folders are the labels.
        labels: the label sub-folders to read (default: all that hold text
            files, except :data:`UNLABELLED_FOLDERS`).

    Raises:
        NlpseqError: the folder is missing, has no label sub-folders, a
            requested label has no sub-folder, a file is not UTF-8, or all
            texts are empty.

    Example:
        >>> data = read_folder("aclImdb/train", labels=["neg", "pos"])  # doctest: +SKIP
        >>> data.labels[0]  # doctest: +SKIP
        'neg'
    """
    root = Path(folder)
    shown = str(folder)
    if not root.exists():
        raise NlpseqError(f"File not found: {shown}")
    if not root.is_dir():
        raise NlpseqError(f"{shown}: not a folder")
    found = label_folders(root)
    if labels is None:
        chosen = [name for name in found if name not in UNLABELLED_FOLDERS]
    else:
        chosen = list(dict.fromkeys(str(name) for name in labels))
        missing = [name for name in chosen if name not in found]
        if missing:
            raise NlpseqError(
                f"{shown}: no label folder {', '.join(map(repr, missing))} "
                f"holding .txt files; label folders: "
                f"{', '.join(found) or 'none'}")
    if not chosen:
        raise NlpseqError(
            f"{shown}: no label folders (expected one sub-folder per label "
            "holding .txt files, like pos/1.txt and neg/2.txt)")

    texts, names, skipped = [], [], 0
    for label in chosen:
        for path in found[label]:
            text = decode_utf8(read_bytes(path, str(path)), str(path))
            if not text.strip():
                skipped += 1
                continue
            texts.append(text)
            names.append(label)
    if not texts:
        raise NlpseqError(
            f"{shown}: all {skipped} text files are empty")
    return LabelledTexts(texts, names, shown, skipped)
