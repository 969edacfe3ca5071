"""From raw strings to token ids, inside the TensorFlow graph.

:class:`TextEncoder` is a Keras layer: strings ``[batch]`` in, token ids
``[batch, time]`` out (0 = padding, 1 = out-of-vocabulary). Because it is made
of TensorFlow string ops, the same code tokenizes the training data, serves
predictions and runs inside an exported SavedModel, so a served model sees
exactly the preprocessing it was trained with.

Standardization, in order (each step switchable):

1. ``strip_html``: HTML line breaks (``<br />``) become spaces;
2. ``lowercase``: Unicode-aware lower-casing;
3. ``split_punctuation``: every punctuation mark becomes a token of its own
   (apostrophes inside words stay: ``don't`` is one token);
4. split on whitespace (``split="words"``), or into Unicode characters, spaces
   included (``split="characters"``, for character-level models).

Example:
    >>> import tensorflow as tf
    >>> encoder = TextEncoder(build_vocabulary([["a", "good", "film"]]))
    >>> encoder.tokenize(["A good<br />film!"]).to_list()
    [[b'a', b'good', b'film', b'!']]
    >>> encoder(tf.constant(["a good film", "bad"])).numpy().tolist()
    [[2, 4, 3], [1, 0, 0]]
"""

from __future__ import annotations

from collections import Counter

import keras
import tensorflow as tf

PADDING = ""
UNKNOWN = "[UNK]"
#: How standardized text is cut into tokens.
SPLITS = ("words", "characters")


#: The characters of Python's ``str.isspace``, as an RE2 class.
WHITESPACE = r"[\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f} \x{85}\p{Z}]"


def blank(text):
    """In the graph: whether each string of ``text`` is empty or whitespace
    only, as ``not line.strip()`` says of a line in Python (the inputs
    that get a family's empty result)."""
    return tf.strings.regex_full_match(text, WHITESPACE + "*")


def build_vocabulary(token_lists, max_size=None, min_count=1):
    """The vocabulary of tokenized texts, most frequent first.

    Args:
        token_lists: an iterable of token sequences (``str`` or ``bytes``).
        max_size: at most this many entries in all, counting the padding and
            out-of-vocabulary entries; ``None`` for no limit.
        min_count: leave out tokens seen fewer times.

    Returns:
        A list: ``["", "[UNK]", token, ...]``; ties in frequency are broken
        alphabetically, so the result does not depend on reading order.
    """
    counts = Counter()
    for tokens in token_lists:
        counts.update(t.decode("utf-8") if isinstance(t, bytes) else t
                      for t in tokens)
    counts.pop(PADDING, None)
    counts.pop(UNKNOWN, None)
    ranked = sorted((t for t, c in counts.items() if c >= min_count),
                    key=lambda t: (-counts[t], t))
    if max_size is not None:
        ranked = ranked[:max(0, max_size - 2)]
    return [PADDING, UNKNOWN] + ranked


@keras.saving.register_keras_serializable(package="nlpseq")
class TextEncoder(keras.layers.Layer):
    """Strings to padded token ids.

    Args:
        vocabulary: ``["", "[UNK]", tokens...]`` as made by
            :func:`build_vocabulary` (index 0 pads, index 1 is unknown).
        max_length: keep at most this many tokens of each text; ``None``
            keeps all.
        truncate: which end of a longer text to cut: ``"post"`` keeps the
            first ``max_length`` tokens, ``"pre"`` the last ones (reviews
            often end with their verdict).
        lowercase, strip_html, split_punctuation: the standardization steps
            (see the module docstring).
        split: ``"words"`` (on whitespace) or ``"characters"``.

    Call arguments:
        texts: a string tensor ``[batch]``.

    Returns:
        ``int32`` ids ``[batch, time]``, padded with 0 to the longest text of
        the batch (at least one column, so an empty text is one padding step).
    """

    def __init__(self, vocabulary, max_length=None, lowercase=True,
                 strip_html=True, split_punctuation=True, truncate="post",
                 split="words", **kwargs):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "string")
        super().__init__(**kwargs)
        vocabulary = list(vocabulary)
        if len(vocabulary) < 2 or vocabulary[0] != PADDING \
                or vocabulary[1] != UNKNOWN:
            raise ValueError(
                "vocabulary must start with the padding entry '' and the "
                f"unknown entry '{UNKNOWN}', got {vocabulary[:2]!r}")
        if max_length is not None and (
                not isinstance(max_length, int) or max_length < 1):
            raise ValueError(
                f"max_length must be a positive integer or None, got "
                f"{max_length!r}")
        if truncate not in ("pre", "post"):
            raise ValueError(
                f"truncate must be 'pre' or 'post', got {truncate!r}")
        if split not in SPLITS:
            raise ValueError(
                f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.split = split
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.truncate = truncate
        self.lowercase = bool(lowercase)
        self.strip_html = bool(strip_html)
        self.split_punctuation = bool(split_punctuation)
        # (A vocabulary of no words, as for tokenizing only, maps every
        # token to the unknown id.)
        self.lookup = keras.layers.StringLookup(
            vocabulary=vocabulary[2:], mask_token=PADDING,
            oov_token=UNKNOWN, num_oov_indices=1, output_mode="int",
            name="lookup") if len(vocabulary) > 2 else None
        self.supports_masking = False
        self.built = True  # nothing to build: no weights

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def standardize(self, texts):
        """The standardized strings (before splitting)."""
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if self.strip_html:
            texts = tf.strings.regex_replace(texts, r"(?i)<\s*br\s*/?\s*>", " ")
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        if self.split_punctuation:
            texts = tf.strings.regex_replace(
                texts, r"([^\pL\pN\s'])", r" \1 ")
            # Apostrophes at word edges (quotes) are tokens; inside a word
            # (don't, it's) they stay.
            texts = tf.strings.regex_replace(texts, r"(^|\s)'", r"\1 ' ")
            texts = tf.strings.regex_replace(texts, r"'(\s|$)", r" ' \1")
        return texts

    def tokenize(self, texts):
        """The tokens of each text: a ``tf.RaggedTensor`` of strings."""
        texts = self.standardize(texts)
        if self.split == "characters":
            tokens = tf.strings.unicode_split(texts, "UTF-8")
        else:
            tokens = tf.strings.split(texts)
        if self.max_length is not None:
            if self.truncate == "post":
                tokens = tokens[:, :self.max_length]
            else:
                tokens = tokens[:, -self.max_length:]
        return tokens

    def token_ids(self, texts):
        """The ids of each text's tokens: a ``tf.RaggedTensor`` of int32."""
        tokens = self.tokenize(texts)
        if self.lookup is None:
            return tf.ones_like(tokens, dtype=tf.int32)
        return tf.cast(self.lookup(tokens), tf.int32)

    def call(self, texts):
        ids = self.token_ids(texts)
        dense = ids.to_tensor(default_value=0)
        # At least one column: a batch of empty texts is one padding step.
        width = tf.maximum(tf.shape(dense)[1], 1)
        return tf.pad(dense, [[0, 0], [0, width - tf.shape(dense)[1]]])

    def compute_output_spec(self, texts):
        return keras.KerasTensor((texts.shape[0], None), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocabulary": list(self.vocabulary),
            "max_length": self.max_length,
            "truncate": self.truncate,
            "lowercase": self.lowercase,
            "strip_html": self.strip_html,
            "split_punctuation": self.split_punctuation,
            "split": self.split,
        })
        return config


@keras.saving.register_keras_serializable(package="nlpseq")
class TokenEncoder(keras.layers.Layer):
    """Token strings to word ids and character ids, inside the graph.

    For taggers, whose input is already split into tokens: ``[batch, time]``
    strings (``""`` pads) in; word ids ``[batch, time]`` and character ids
    ``[batch, time, chars]`` out (0 pads, 1 is unknown). Words are looked up
    normalized (``lowercase``, and with ``digits_to_zero`` every digit as
    ``0``, so ``1996`` and ``2001`` share an entry); characters keep case.

    Args:
        words: ``["", "[UNK]", ...]`` as made by :func:`build_vocabulary`.
        characters: the same for characters.
        max_word_length: keep at most this many characters of a token.
    """

    def __init__(self, words, characters, max_word_length=20, lowercase=True,
                 digits_to_zero=True, **kwargs):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "string")
        super().__init__(**kwargs)
        for name, vocabulary in (("words", words), ("characters",
                                                    characters)):
            if len(vocabulary) < 2 or vocabulary[:2] != [PADDING, UNKNOWN]:
                raise ValueError(f"{name} must start with '' and "
                                 f"'{UNKNOWN}', got {list(vocabulary)[:2]!r}")
        self.words = list(words)
        self.characters = list(characters)
        self.max_word_length = int(max_word_length)
        self.lowercase = bool(lowercase)
        self.digits_to_zero = bool(digits_to_zero)
        self.word_lookup = self._lookup(self.words, "word_lookup")
        self.char_lookup = self._lookup(self.characters, "char_lookup")
        self.built = True

    @staticmethod
    def _lookup(vocabulary, name):
        return keras.layers.StringLookup(
            vocabulary=vocabulary[2:], mask_token=PADDING, oov_token=UNKNOWN,
            num_oov_indices=1, output_mode="int", name=name) \
            if len(vocabulary) > 2 else None

    def normalize(self, tokens):
        """The form under which a token is looked up as a word."""
        tokens = tf.convert_to_tensor(tokens, dtype=tf.string)
        if self.lowercase:
            tokens = tf.strings.lower(tokens, encoding="utf-8")
        if self.digits_to_zero:
            tokens = tf.strings.regex_replace(tokens, r"\d", "0")
        return tokens

    def call(self, tokens):
        tokens = tf.convert_to_tensor(tokens, dtype=tf.string)
        if self.word_lookup is None:
            word_ids = tf.cast(tokens != "", tf.int32)
        else:
            word_ids = tf.cast(self.word_lookup(self.normalize(tokens)),
                               tf.int32)
        chars = tf.strings.unicode_split(tokens, "UTF-8")
        chars = chars[:, :, :self.max_word_length]
        if self.char_lookup is None:
            char_ids = tf.ones_like(chars, dtype=tf.int32)
        else:
            char_ids = tf.cast(
                tf.ragged.map_flat_values(self.char_lookup, chars), tf.int32)
        char_ids = char_ids.to_tensor(default_value=0)
        # at least one step and one character column (a batch of empty
        # sentences is one padding step, as in TextEncoder)
        steps = tf.maximum(tf.shape(word_ids)[1], 1)
        width = tf.maximum(tf.shape(char_ids)[2], 1)
        word_ids = tf.pad(word_ids, [[0, 0], [0, steps - tf.shape(word_ids)[1]]])
        char_ids = tf.pad(char_ids, [[0, 0],
                                     [0, steps - tf.shape(char_ids)[1]],
                                     [0, width - tf.shape(char_ids)[2]]])
        return word_ids, char_ids

    def compute_output_spec(self, tokens):
        return (keras.KerasTensor(tuple(tokens.shape[:2]), dtype="int32"),
                keras.KerasTensor(tuple(tokens.shape[:2]) + (None,),
                                  dtype="int32"))

    def get_config(self):
        config = super().get_config()
        config.update({
            "words": list(self.words),
            "characters": list(self.characters),
            "max_word_length": self.max_word_length,
            "lowercase": self.lowercase,
            "digits_to_zero": self.digits_to_zero,
        })
        return config
