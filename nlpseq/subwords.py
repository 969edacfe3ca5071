"""Subword units: a vocabulary of word pieces learned from the training text,
and segmentation into pieces and joining back inside the TensorFlow graph.

The vocabulary is WordPiece-style: a word-initial piece is written as is
(``Hund``), a piece that continues a word starts with :data:`CONTINUATION`
(``##e``), so ``Hunde`` may be ``Hund ##e``. It is learned by byte-pair
encoding merges over the words of the training text (:func:`learn_pieces`,
Sennrich et al. 2016, with the continuation marker of the WordPiece
trainers): it starts from every character seen, word-initial and
continuing, and adds the merge of the most frequent pair of adjacent
pieces until it has the size asked for (ties broken by the pieces' text,
so the result does not depend on the reading order).

:class:`SubwordEncoder` is a :class:`~nlpseq.text.TextEncoder` whose
tokens are pieces: the text is standardized and split into words as the
word-level encoder does, and each word is segmented by greedy
longest-match-first (the WordPiece rule): at each position, the longest
piece of the vocabulary that the word continues with; a word with a
position no piece matches, or of more than :data:`MAX_WORD_CHARS`
characters, is the one unknown piece. The segmentation runs in the graph
with core TensorFlow ops only (``tf.strings``, the vocabulary's hash table:
one lookup of every word of a batch, and for the words that are no piece
a ``tf.while_loop`` over their pieces, all of them at once), so a SavedModel
holding it loads in stock TensorFlow Serving.
:func:`join_pieces` joins a sentence of pieces back into words, in the
graph. :func:`segment_word` is the same segmentation in plain Python.

Example:
    >>> pieces = learn_pieces({"Hund": 5, "Hunde": 3, "und": 4}, 14)
    >>> encoder = SubwordEncoder(["", "[UNK]"] + pieces, lowercase=False)
    >>> encoder.tokenize(["Hunde und Hündin"]).to_list()
    [[b'Hunde', b'und', b'[UNK]']]
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict

import keras
import tensorflow as tf

from nlpseq.text import PADDING, UNKNOWN, TextEncoder

#: The mark of a piece that continues a word.
CONTINUATION = "##"
#: Longer words are the unknown piece (a bound on one word's work).
MAX_WORD_CHARS = 100


def initial_pieces(word):
    """A word's characters as pieces: the first as is, the others
    continuing (``["H", "##u", "##n", "##d"]``)."""
    return [word[0]] + [CONTINUATION + c for c in word[1:]]


def learn_pieces(word_counts, size, min_frequency=2):
    """The pieces of a vocabulary of at most ``size`` entries, learned by
    byte-pair encoding merges (module docstring).

    Args:
        word_counts: ``{word: count}`` (``Counter``) of the training text's
            words; words over :data:`MAX_WORD_CHARS` characters are left
            out (they are unknown anyway).
        size: the number of pieces wanted.
        min_frequency: merge only pairs seen at least this often.

    Returns:
        The pieces: the characters (word-initial and continuing ones,
        most frequent first), then the merged pieces in the order
        learned. Fewer than ``size`` when no pair is left that is
        seen ``min_frequency`` times (every word of the text is a piece
        already); only the ``size`` most frequent characters when there are
        more.
    """
    words, counts = [], []
    for word, count in sorted(word_counts.items()):
        if word and len(word) <= MAX_WORD_CHARS and count > 0:
            words.append(initial_pieces(word))
            counts.append(count)
    alphabet = Counter()
    for symbols, count in zip(words, counts):
        for symbol in symbols:
            alphabet[symbol] += count
    pieces = sorted(alphabet, key=lambda s: (-alphabet[s], s))[:size]
    known = set(pieces)
    pairs, where = Counter(), defaultdict(set)
    for index, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pairs[pair] += counts[index]
            where[pair].add(index)
    heap = [(-count, pair) for pair, count in pairs.items()]
    heapq.heapify(heap)
    while len(pieces) < size and heap:
        count, pair = heapq.heappop(heap)
        if pairs.get(pair) != -count:
            continue  # (a count that changed since)
        if -count < min_frequency:
            break
        merged = pair[0] + pair[1][len(CONTINUATION):]
        if merged not in known:
            known.add(merged)
            pieces.append(merged)
        changed = set()
        for index in sorted(where.pop(pair, ())):
            old = words[index]
            new = _merge(old, pair, merged)
            for p in zip(old, old[1:]):
                pairs[p] -= counts[index]
                where[p].discard(index)
                changed.add(p)
            for p in zip(new, new[1:]):
                pairs[p] += counts[index]
                where[p].add(index)
                changed.add(p)
            words[index] = new
        for p in changed:
            if pairs[p] > 0:
                heapq.heappush(heap, (-pairs[p], p))
            else:
                del pairs[p]
                where.pop(p, None)
    return pieces


def _merge(symbols, pair, merged):
    """``symbols`` with each occurrence of ``pair``, left to right, as
    ``merged``."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_vocabulary(token_lists, size, reserved=()):
    """The vocabulary ``["", "[UNK]", *reserved, pieces...]`` of at most
    ``size`` entries learned from tokenized texts (:func:`learn_pieces`)."""
    counts = Counter()
    for tokens in token_lists:
        counts.update(t.decode("utf-8") if isinstance(t, bytes) else t
                      for t in tokens)
    for special in (PADDING, UNKNOWN, *reserved):
        counts.pop(special, None)
    head = [PADDING, UNKNOWN, *reserved]
    return head + learn_pieces(counts, size - len(head))


def segment_word(word, pieces, longest=None):
    """One word's pieces by greedy longest-match-first, in plain Python (what
    :meth:`SubwordEncoder.segment` computes in the graph).

    Args:
        word: the word (``str``).
        pieces: the vocabulary's pieces (a set, or any container).
        longest: the longest piece's characters (without the mark).

    Returns:
        The pieces, or ``["[UNK]"]`` for a word that cannot be segmented
        or is over :data:`MAX_WORD_CHARS` characters.
    """
    if longest is None:
        longest = max((len(p.removeprefix(CONTINUATION)) for p in pieces),
                      default=0)
    if len(word) > MAX_WORD_CHARS:
        return [UNKNOWN]
    out, start = [], 0
    while start < len(word):
        for end in range(min(len(word), start + longest), start, -1):
            piece = word[start:end]
            if start:
                piece = CONTINUATION + piece
            if piece in pieces:
                out.append(piece)
                start = end
                break
        else:
            return [UNKNOWN]
    return out


def refuse_onnx(config, format):
    """Refuse ``export --format onnx`` of a model of ``subwords`` (the ONNX
    export's tokenizers read whole words).

    Raises:
        NlpseqError: the one-line reason.
    """
    from nlpseq.errors import NlpseqError

    if format == "onnx" and config.get("subwords"):
        raise NlpseqError(
            "--format onnx: a model of --subwords cannot be exported as "
            "ONNX (its tokenizers read whole words); export a "
            "SavedModel, which segments the words itself")


def join_pieces(text):
    """In the graph: sentences of space-separated pieces (``[...]``
    strings) with each continuing piece joined to the one before it
    (``"Hund ##e"`` -> ``"Hunde"``)."""
    return tf.strings.regex_replace(text, "(^| )" + CONTINUATION, "")


@keras.saving.register_keras_serializable(package="nlpseq")
class SubwordEncoder(TextEncoder):
    """Strings to padded piece ids: a :class:`~nlpseq.text.TextEncoder`
    whose tokens are the pieces of its words.

    Args:
        vocabulary: ``["", "[UNK]", pieces...]`` (:func:`learn_vocabulary`;
            entries that are no piece, such as a target side's ``<s>`` and
            ``</s>``, are never matched by a word).
        max_length: keep at most this many pieces of each text.
        lowercase, strip_html, split_punctuation, truncate: as for
            :class:`~nlpseq.text.TextEncoder`; the text is split into words.
    """

    def __init__(self, vocabulary, split="words", **kwargs):
        if split != "words":
            raise ValueError(f"a SubwordEncoder splits text into words, "
                             f"got split={split!r}")
        super().__init__(vocabulary, split=split, **kwargs)
        #: The longest piece's characters (without the mark).
        self.longest = max([1] + [len(p.removeprefix(CONTINUATION))
                                  for p in self.vocabulary[2:]])

    @property
    def characters(self):
        """The characters the vocabulary's pieces are made of."""
        return set("".join(p.removeprefix(CONTINUATION)
                           for p in self.vocabulary[2:]))

    def words(self, texts):
        """The words of each text before segmentation (``RaggedTensor``)."""
        return tf.strings.split(self.standardize(texts))

    def segment(self, words):
        """The piece ids of each word of ``words`` (strings ``[n]``): an
        int32 ``RaggedTensor`` ``[n, pieces]``; an unknown word is one id 1.

        A word that is a piece of the vocabulary is that piece (the longest
        match there is); the others go through :meth:`longest_match`."""
        words = tf.convert_to_tensor(words, tf.string)
        chars = tf.strings.length(words, unit="UTF8_CHAR")
        whole = tf.cast(self.lookup(words), tf.int32)
        long = chars > MAX_WORD_CHARS
        index = tf.where((whole <= 1) & ~long & (chars > 0))[:, 0]
        pieces = self.longest_match(tf.gather(words, index))
        first = tf.where(long, 1, tf.where(chars > 0, whole, -1))
        ids = tf.concat([first[:, None], tf.fill(
            [tf.shape(words)[0], tf.shape(pieces)[1] - 1], -1)], axis=1)
        ids = tf.tensor_scatter_nd_update(ids, index[:, None], pieces)
        # (each row's pieces come first, then the padding)
        return tf.RaggedTensor.from_tensor(ids, lengths=tf.reduce_sum(
            tf.cast(ids >= 0, tf.int32), axis=1))

    def longest_match(self, words):
        """The piece ids of each of ``words`` (strings ``[n]``) by greedy
        longest match: ``[n, pieces]``, at least one column, padded with
        -1; an unknown word is one id 1.

        One ``tf.while_loop`` for all the words: each iteration looks up,
        for every word not finished, the candidates of the
        :attr:`longest` lengths from its position (byte offsets of its
        characters from ``unicode_decode_with_offsets``, strings from
        ``substr``), takes the longest found, and moves on past it."""
        _, offsets = tf.strings.unicode_decode_with_offsets(words, "UTF-8")
        chars = tf.cast(offsets.row_lengths(), tf.int32)
        width = tf.reduce_max(tf.concat([chars, [0]], 0))
        offsets = tf.cast(offsets.to_tensor(), tf.int32)
        offsets = tf.pad(offsets, [[0, 0], [0, width + 1 -
                                            tf.shape(offsets)[1]]])
        # bounds[w, i]: the byte where character i of word w starts, or the
        # word's length in bytes from its end on
        bounds = tf.where(tf.range(width + 1)[None, :] < chars[:, None],
                          offsets, tf.strings.length(words)[:, None])
        lengths = tf.range(1, tf.minimum(self.longest, width) + 1)
        count = tf.shape(words)[0]

        def running(position, unknown):
            return ~unknown & (position < chars)

        def step(position, unknown, ids):
            active = running(position, unknown)
            ends = position[:, None] + lengths[None, :]
            valid = ends <= chars[:, None]
            begin = tf.gather(bounds, position, batch_dims=1)[:, None]
            end = tf.gather(bounds, tf.minimum(ends, chars[:, None]),
                            batch_dims=1)
            shape = tf.shape(end)
            candidates = tf.strings.substr(
                tf.broadcast_to(words[:, None], shape),
                tf.broadcast_to(begin, shape), end - begin)
            candidates = tf.where(
                position[:, None] > 0,
                tf.strings.join([CONTINUATION, candidates]), candidates)
            found_ids = tf.cast(self.lookup(candidates), tf.int32)
            found = valid & (found_ids > 1) & active[:, None]
            best = tf.reduce_max(tf.where(found, lengths[None, :], 0), axis=1)
            piece = tf.gather(found_ids, tf.maximum(best - 1, 0),
                              batch_dims=1)
            emitted = tf.where(active & (best > 0), piece, -1)
            return (position + best, unknown | (active & (best == 0)),
                    tf.concat([ids, emitted[:, None]], axis=1))

        _, unknown, ids = tf.while_loop(
            lambda position, unknown, _: tf.reduce_any(
                running(position, unknown)),
            step,
            (tf.zeros([count], tf.int32), chars > MAX_WORD_CHARS,
             tf.zeros([count, 0], tf.int32)),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]),
                              tf.TensorShape([None, None])))
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]],
                     constant_values=-1)
        first = tf.range(tf.shape(ids)[1])[None, :] == 0
        return tf.where(unknown[:, None], tf.where(first, 1, -1), ids)

    def token_ids(self, texts):
        words = self.words(texts)
        pieces = tf.RaggedTensor.from_row_splits(
            self.segment(words.flat_values), words.row_splits)
        ids = pieces.merge_dims(1, 2)
        if self.max_length is not None:
            ids = ids[:, :self.max_length] if self.truncate == "post" \
                else ids[:, -self.max_length:]
        return ids

    def tokenize(self, texts):
        """The pieces of each text: a ``tf.RaggedTensor`` of strings."""
        return tf.gather(tf.constant(self.vocabulary), self.token_ids(texts))


__all__ = ["CONTINUATION", "MAX_WORD_CHARS", "SubwordEncoder",
           "initial_pieces", "join_pieces", "learn_pieces",
           "learn_vocabulary", "refuse_onnx", "segment_word"]
