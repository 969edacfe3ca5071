"""Running an ONNX export without TensorFlow: tokenization in pure Python.

``nlpseq <app> export --format onnx`` writes ``model.onnx`` (token ids in)
and ``preprocessor.json`` (vocabularies, labels and the text settings). This
module reads ``preprocessor.json`` and turns raw text into the same ids as
:class:`nlpseq.text.TextEncoder` and :class:`nlpseq.text.TokenEncoder` do
inside TensorFlow, with the standard library and NumPy only (it imports
neither TensorFlow nor Keras), so a deployment needs ``onnxruntime`` and
``numpy`` besides this file.

Example (a sentiment export; see ``docs/onnx.md``)::

    import onnxruntime
    from nlpseq.onnx_runtime import read_export

    export = read_export("saved_models/sentiment/export/1")
    session = onnxruntime.InferenceSession(str(export.model_path))
    ids = export.encoders["encoder"](["A great film!", "Dull.<br />Avoid"])
    (classes,) = session.run(None, {"token_ids": ids})

The standardization follows TensorFlow's RE2 regular expressions exactly:
``\\s`` is ASCII whitespace (space, ``\\t \\n \\f \\r``), ``\\pL``/``\\pN``
are Unicode letters and numbers, words are split on ASCII whitespace (``\\v``
included), and lower-casing is Unicode's full mapping (``İ`` becomes ``i``
and a combining dot, a word-final ``Σ`` becomes ``ς``), as ``str.lower``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: The export's files.
MODEL_FILE = "model.onnx"
PREPROCESSOR_FILE = "preprocessor.json"
#: ``preprocessor.json``'s ``format`` entry.
FORMAT = "nlpseq-onnx"

PADDING_ID = 0
UNKNOWN_ID = 1

# RE2's \s (TensorFlow's regular expressions): ASCII, without \v.
_RE2_SPACE = "\t\n\f\r "
# tf.strings.split without a separator: ASCII whitespace, \v included.
_SPLIT = re.compile(r"[ \t\n\v\f\r]+")
_BREAK = re.compile(r"<[\t\n\f\r ]*br[\t\n\f\r ]*/?[\t\n\f\r ]*>",
                    re.IGNORECASE | re.ASCII)
_QUOTE_BEFORE = re.compile(r"(^|[\t\n\f\r ])'")
_QUOTE_AFTER = re.compile(r"'([\t\n\f\r ]|\Z)")
_DIGIT = re.compile(r"[0-9]")


def _lower(text):
    """Unicode lower-casing as TensorFlow's ``tf.strings.lower(...,
    encoding="utf-8")`` does it (ICU's full mapping, as Python's)."""
    return text.lower()


def _keeps_place(char):
    """Whether ``char`` stays inside its token (``[\\pL\\pN\\s']``)."""
    return (char in _RE2_SPACE or char == "'"
            or unicodedata.category(char)[0] in "LN")


def _pad(rows, width=None):
    """``[len(rows), max(1, longest)]`` int32, padded with 0."""
    width = max([1] + [len(r) for r in rows]) if width is None else width
    out = np.zeros((len(rows), width), np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


@dataclass
class TextTokenizer:
    """:class:`nlpseq.text.TextEncoder` without TensorFlow: raw strings to
    padded ids ``[batch, time]`` (0 pads, 1 is unknown).

    Built from one entry of ``preprocessor.json``'s ``encoders``
    (:meth:`from_config`).
    """

    vocabulary: list
    max_length: int | None = None
    truncate: str = "post"
    lowercase: bool = True
    strip_html: bool = True
    split_punctuation: bool = True
    split: str = "words"
    _index: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self._index = {token: i for i, token in
                       enumerate(self.vocabulary) if i >= 2}

    @classmethod
    def from_config(cls, config):
        return cls(**{k: config[k] for k in (
            "vocabulary", "max_length", "truncate", "lowercase",
            "strip_html", "split_punctuation", "split")})

    def standardize(self, text):
        if self.strip_html:
            text = _BREAK.sub(" ", text)
        if self.lowercase:
            text = _lower(text)
        if self.split_punctuation:
            text = "".join(c if _keeps_place(c) else f" {c} " for c in text)
            text = _QUOTE_BEFORE.sub(r"\1 ' ", text)
            text = _QUOTE_AFTER.sub(r" ' \1", text)
        return text

    def tokenize(self, text):
        """The tokens of one text (``str``), cut to ``max_length``."""
        text = self.standardize(text)
        if self.split == "characters":
            tokens = list(text)
        else:
            tokens = [t for t in _SPLIT.split(text) if t]
        if self.max_length is not None:
            tokens = (tokens[:self.max_length] if self.truncate == "post"
                      else tokens[-self.max_length:])
        return tokens

    def token_ids(self, text):
        """The ids of one text's tokens (a list of ``int``)."""
        return [self._index.get(t, UNKNOWN_ID) for t in self.tokenize(text)]

    def __call__(self, texts):
        """Ids ``[len(texts), time]`` (int32), at least one column."""
        if isinstance(texts, str):
            texts = [texts]
        return _pad([self.token_ids(t) for t in texts])


@dataclass
class TokenTokenizer:
    """:class:`nlpseq.text.TokenEncoder` without TensorFlow: sentences of
    tokens to word ids ``[batch, time]`` and character ids ``[batch, time,
    chars]`` (the tagger's inputs ``word_ids`` and ``char_ids``)."""

    words: list
    characters: list
    max_word_length: int = 20
    lowercase: bool = True
    digits_to_zero: bool = True
    _words: dict = field(default=None, repr=False, compare=False)
    _chars: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self._words = {w: i for i, w in enumerate(self.words) if i >= 2}
        self._chars = {c: i for i, c in enumerate(self.characters) if i >= 2}

    @classmethod
    def from_config(cls, config):
        return cls(**{k: config[k] for k in (
            "words", "characters", "max_word_length", "lowercase",
            "digits_to_zero")})

    def normalize(self, token):
        if self.lowercase:
            token = _lower(token)
        if self.digits_to_zero:
            token = _DIGIT.sub("0", token)
        return token

    def __call__(self, sentences):
        """``(word_ids, char_ids)`` of token lists (``""`` pads)."""
        words, chars = [], []
        for tokens in sentences:
            words.append([0 if t == "" else self._words.get(
                self.normalize(t), UNKNOWN_ID) for t in tokens])
            chars.append([[self._chars.get(c, UNKNOWN_ID)
                           for c in t[:self.max_word_length]]
                          for t in tokens])
        word_ids = _pad(words)
        width = max([1] + [len(c) for row in chars for c in row])
        char_ids = np.zeros(word_ids.shape + (width,), np.int32)
        for i, row in enumerate(chars):
            for j, ids in enumerate(row):
                char_ids[i, j, :len(ids)] = ids
        return word_ids, char_ids


_TOKENIZERS = {"TextEncoder": TextTokenizer, "TokenEncoder": TokenTokenizer}


@dataclass
class OnnxExport:
    """An ONNX export folder read back: see :func:`read_export`.

    Attributes:
        model_path: ``model.onnx``.
        app, family: the app and its model family.
        inputs, outputs: the ONNX graph's input and output names.
        encoders: the tokenizers by the preprocessor's attribute name
            (``encoder``; ``source_encoder`` and ``target_encoder`` for
            translation).
        state: the preprocessor's other entries (``class_names``,
            ``tags``, ``level``...).
        config: the model's settings (``config.json``).
        crf: a tagger's CRF weights (``transitions``, ``start_transitions``,
            ``end_transitions``) for :func:`viterbi`, or ``None``.
    """

    model_path: Path
    app: str
    family: str
    inputs: list
    outputs: list
    encoders: dict
    state: dict
    config: dict
    crf: dict = None


def read_export(folder):
    """The export in ``folder`` (``<output>/<version>/``)."""
    folder = Path(folder)
    saved = json.loads((folder / PREPROCESSOR_FILE).read_text("utf-8"))
    if saved.get("format") != FORMAT:
        raise ValueError(f"{folder / PREPROCESSOR_FILE}: not an nlpseq ONNX "
                         "export")
    encoders = {name: _TOKENIZERS[entry["class"]].from_config(entry)
                for name, entry in saved["encoders"].items()}
    return OnnxExport(folder / MODEL_FILE, saved["app"], saved["family"],
                      saved["inputs"], saved["outputs"], encoders,
                      saved["preprocessor"]["state"], saved["config"],
                      saved.get("crf"))


def viterbi(scores, mask, transitions, start_transitions, end_transitions):
    """A linear-chain CRF's best tag sequences, in NumPy: the tagger's
    decoding of the exported ``tag_scores``.

    Args:
        scores: ``[batch, time, tags]`` emission scores.
        mask: ``[batch, time]``, true for real tokens (a prefix of each row).
        transitions: ``[tags, tags]``, from tag ``i`` to tag ``j``.
        start_transitions, end_transitions: ``[tags]``.

    Returns:
        ``[batch, time]`` int tag indices; 0 on padded steps.
    """
    scores = np.asarray(scores, "float64")
    transitions = np.asarray(transitions, "float64")
    start = np.asarray(start_transitions, "float64")
    end = np.asarray(end_transitions, "float64")
    mask = np.asarray(mask, bool)
    out = np.zeros(mask.shape, "int64")
    for row in range(scores.shape[0]):
        length = int(mask[row].sum())
        if not length:
            continue
        delta = start + scores[row, 0]
        pointers = []
        for t in range(1, length):
            total = delta[:, None] + transitions
            pointers.append(total.argmax(axis=0))
            delta = total.max(axis=0) + scores[row, t]
        best = [int((delta + end).argmax())]
        for pointer in reversed(pointers):
            best.append(int(pointer[best[-1]]))
        out[row, :length] = best[::-1]
    return out


__all__ = ["MODEL_FILE", "OnnxExport", "PREPROCESSOR_FILE", "TextTokenizer",
           "TokenTokenizer", "read_export", "viterbi"]
