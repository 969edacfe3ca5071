"""Reading a file's bytes (plain or gzip) and decoding them as strict UTF-8.

Private helpers shared by the readers; every failure is an
:class:`~nlpseq.errors.NlpseqError` naming the file.
"""

import gzip
import zlib
from pathlib import Path

from nlpseq.errors import NlpseqError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


def is_gzip_name(name: str) -> bool:
    """Whether a file name ends in ``.gz`` (any case)."""
    return name.lower().endswith(".gz")


def existing_file(spec: str, expected: str) -> Path:
    """The path of a SPEC naming a file, failing with one line when it is
    missing or a folder (``expected`` says what it should be)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        raise NlpseqError(f"{spec}: a folder; expected {expected}")
    if not path.exists():
        raise NlpseqError(f"File not found: {spec}")
    return path


def open_binary(path, shown: str):
    """``open(path, "rb")``, failing with one line that names the file."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NlpseqError(f"File not found: {shown}") from None
    except OSError as error:
        raise NlpseqError(
            f"{shown}: cannot read ({error.strerror or error})") from None


def read_bytes(path: Path, shown: str) -> bytes:
    """The content of a file, gunzipped if it starts with the gzip magic bytes.

    Compression is detected from the content, not the name: a ``.gz`` that is
    really plain text and a ``.csv`` that is really gzip both read correctly.

    Args:
        path: the file.
        shown: how to name the file in messages.

    Example:
        >>> read_bytes(Path("train.csv.gz"), "train.csv.gz")[:10]  # doctest: +SKIP
        b'text,label'
    """
    with open_binary(path, shown) as file:
        try:
            data = file.read()
        except OSError as error:
            raise NlpseqError(
                f"{shown}: cannot read ({error.strerror or error})") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise NlpseqError(f"{shown}: corrupt gzip data ({error})") from None
    return data


def decode_utf8(data: bytes, shown: str) -> str:
    """Bytes as text, strictly UTF-8 (a leading byte-order mark is dropped).

    Args:
        data: the bytes (already gunzipped).
        shown: how to name the file in messages.

    Raises:
        NlpseqError: ``FILE:LINE: not UTF-8 text (byte 0x.. at column N)``,
            for the first byte that is not valid UTF-8.

    Example:
        >>> decode_utf8("naïve\\n".encode(), "a.txt")
        'naïve\\n'
    """
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise NlpseqError(
            f"{shown}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} "
            f"at column {column}); save the file as UTF-8") from None


def iter_lines(path, shown=None):
    """The lines of a text file (plain or gzip), one at a time, without ``\\n``.

    Streams: a file of any size is never loaded whole. ``path`` ``"-"`` reads
    standard input.

    Raises:
        NlpseqError: missing file, or ``FILE:LINE: not UTF-8 text`` at the
            first bad line.
    """
    import sys

    shown = shown or str(path)
    if str(path) == "-":
        handle, close = sys.stdin.buffer, False
    else:
        handle, close = open_binary(path, shown), True
        if handle.peek(2)[:2] == GZIP_MAGIC:
            handle = gzip.GzipFile(fileobj=handle)
    try:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM):]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise NlpseqError(
                    f"{shown}:{number}: not UTF-8 text (byte "
                    f"0x{raw[error.start]:02x} at column {error.start + 1})"
                ) from None
            yield line.rstrip("\r\n")
    except (OSError, EOFError, zlib.error) as error:
        raise NlpseqError(f"{shown}: cannot read ({error})") from None
    finally:
        if close:
            handle.close()
