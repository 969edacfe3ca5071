"""The Python API's input contract, checked at the door as Click checks
the command line's: :func:`texts` and :func:`text_stream` for what
``predict`` and ``predict_stream`` take, :func:`path_argument` for
folders, files and data SPECs, :func:`unknown_keywords` for keyword
arguments. Each refusal is one :class:`~nlpseq.errors.NlpseqError` (an
:class:`~nlpseq.errors.NlpseqTypeError` for a wrong type) naming the call,
the argument and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from nlpseq.errors import NlpseqError, NlpseqTypeError

__all__ = ["NlpseqError", "NlpseqTypeError"]  # (and the checks below)

#: What ``predict`` takes, in its messages.
TEXTS = "a str or a list (or any iterable) of str"
#: The types of a value that can only be meant as a data SPEC (a path),
#: as opposed to data already read: checked by :func:`path_argument`.
SPEC_LIKE = (str, os.PathLike, bytes, bytearray, int, float)


class Checked:
    """Texts checked already (by :func:`texts` or :func:`text_stream`):
    :func:`text_stream` passes them on as they are, so that ``predict``,
    ``predict_stream`` and a family's ``predict_stream`` over the base's
    check each text once."""

    def __init__(self, iterable):
        self._iterator = iter(iterable)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._iterator)


def kind(value):
    """``value``'s type as a message names it (``None``, ``int``...)."""
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray)):
        return "bytes (decode them first: value.decode('utf-8'))"
    if isinstance(value, Mapping):
        return "a dict"
    return type(value).__name__


def texts(call, value):
    """``(list of the texts, whether one text was given)`` for ``call``'s
    ``texts`` argument; every element checked before anything runs."""
    if isinstance(value, str):
        check_text(call, 1, value)
        return Checked([value]), True
    if isinstance(value, (bytes, bytearray, Mapping)) or \
            not isinstance(value, Iterable):
        raise NlpseqTypeError(f"{call}: texts is {kind(value)}; expected "
                              f"{TEXTS}")
    value = list(value)
    for index, text in enumerate(value, 1):
        check_text(call, index, text)
    return Checked(value), False


def text_stream(call, value):
    """The strings of the iterable ``value``, each checked as it comes (the
    inputs before a bad one are predicted first); :class:`Checked` texts
    as they are."""
    if isinstance(value, Checked):
        return value
    if isinstance(value, str):
        raise NlpseqTypeError(f"{call} takes an iterable of strings; use "
                              "predict() for one text")
    if isinstance(value, (bytes, bytearray, Mapping)) or \
            not isinstance(value, Iterable):
        raise NlpseqTypeError(f"{call}: lines is {kind(value)}; expected an "
                              "iterable of str")

    def checked():
        for index, text in enumerate(value, 1):
            check_text(call, index, text)
            yield text
    return Checked(checked())


def check_text(call, index, text):
    """Refuse input ``index`` unless it is a str that UTF-8 can encode
    (a lone surrogate, from a bad decode, cannot be)."""
    if not isinstance(text, str):
        raise NlpseqTypeError(f"{call}: input {index} is {kind(text)}; "
                              "expected a str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise NlpseqError(f"{call}: input {index} is not valid Unicode text "
                          f"(a lone surrogate at character {error.start + 1}"
                          "); expected text that UTF-8 can encode") from None


def path_argument(call, name, value, optional=True):
    """``value`` (a path: a str or an ``os.PathLike``) as a str; ``None``
    stays ``None`` where ``optional``. An empty string is refused."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise NlpseqTypeError(f"{call}: {name} is {kind(value)}; expected a "
                              "path (a str or a pathlib.Path)")
    text = os.fspath(value)
    if isinstance(text, bytes) or not text.strip():
        raise NlpseqError(f"{call}: {name} is empty; expected a path")
    return text


def unknown_keywords(call, given, known, what="option"):
    """Refuse the keywords of ``given`` that are not in ``known``."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        raise NlpseqError(f"{call}: unknown {what} '{unknown[0]}'; known "
                          f"{what}s: {listed}")


def flag(call, name, value):
    """``value``, which must be a bool."""
    if not isinstance(value, bool):
        raise NlpseqTypeError(f"{call}: {name} is {kind(value)}; expected "
                              "True or False")
    return value


def count(call, name, value, low=1, high=None, optional=False):
    """``value``, an int in ``[low, high]`` (a bool is no count; ``None``
    stays ``None`` where ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise NlpseqTypeError(f"{call}: {name} is {kind(value)}; expected "
                              "an integer")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else \
            f"at least {low}"
        raise NlpseqError(f"{call}: {name} is {value}; expected {bound}")
    return value


def data_argument(call, value, read):
    """``value`` read by ``read(spec, "evaluate")`` when it is a data SPEC
    (a path, ``sample:NAME``, ``tfds:NAME``); data already read (what the
    family's ``read_data`` returns) as it is; plain lists and dicts are
    neither."""
    if value is None or isinstance(value, SPEC_LIKE):
        spec = path_argument(call, "data", value, optional=False)
        return read(spec, call)
    if isinstance(value, (Mapping, list, tuple, set)):
        raise NlpseqTypeError(
            f"{call}: data is {kind(value)}; expected a path (a data SPEC) "
            "or data read by the task's read_data()")
    return value
