"""The tagger family: a tag per token, entities as spans.

The many-to-many (aligned) model. Tokens -> word embedding (optionally
initialized from pretrained vectors, ``--embeddings``) concatenated with
character-level features of each word (a character BiLSTM or CNN) ->
dropout -> stacked nlpseq recurrent layers (bidirectional by default) ->
dropout -> a score per tag -> a linear-chain CRF (``--crf``, the default)
or a softmax per token.

Tags are read in the data's declared scheme (``--tag-scheme``, IOB2 by
default), turned into entity spans with ``conlleval``'s rules, and learned
in BIOES, which marks every entity's first and last token; predictions are
written back in the declared scheme. Evaluation is ``conlleval``'s: an
entity counts only when its type and both boundaries match. Data: tagged
sentences (CoNLL column files, JSON lines, ``tfds:``), read by
:func:`nlpseq.data.conll.read_tagged`.
"""

from __future__ import annotations

import collections
import itertools
from pathlib import Path

import numpy as np

from nlpseq import inputs
from nlpseq.config import Setting
from nlpseq.data import held_out_cut
from nlpseq.data.conll import read_tagged
from nlpseq.errors import NlpseqError
from nlpseq.log import LOG
from nlpseq.tagging import (
    SCHEMES,
    convert,
    entity_scores,
    entity_types,
    format_scores,
    scheme_errors,
    spans,
)
from nlpseq.tasks import char_lm
from nlpseq.tasks.base import FORMATS, Task
from nlpseq.tasks.preprocessor import Preprocessor
from nlpseq.tasks.settings import (
    encoder_settings,
    monitor_setting,
    transfer_settings,
    vocabulary_settings,
)

#: The scheme the model learns and predicts in.
MODEL_SCHEME = "bioes"

#: The tagger family's settings (apps change defaults with
#: :func:`~nlpseq.tasks.settings.with_defaults`).
SETTINGS = (
    Setting("token_column", int, 0, "CoNLL column of the tokens "
            "(from 0; negative: from the end)"),
    Setting("tag_column", int, -1, "CoNLL column of the tags (from 0; "
            "negative: from the end)"),
    Setting("tag_scheme", str, "iob2", "the tag scheme of the data "
            "(predictions are written in it too)", choices=SCHEMES),
    Setting("strict", bool, False, "refuse tags that break the scheme "
            "instead of repairing them as conlleval does"),
    *encoder_settings(cell="lstm", bidirectional=True, layers=1, units=100,
                      embedding_dim=100, dropout=0.5,
                      layers_help="stacked recurrent layers",
                      dropout_help="dropout on the word representations "
                      "and the recurrent outputs"),
    Setting("embeddings", str, None, "pretrained word vectors, GloVe or "
            "word2vec text format, to start the word embeddings from "
            "(their size sets --embedding-dim)"),
    *char_lm.SETTINGS,
    Setting("char_features", str, "lstm", "character features of each "
            "word", choices=("none", "lstm", "cnn")),
    Setting("char_dim", int, 25, "size of the character embeddings",
            minimum=1),
    Setting("char_units", int, 25, "character LSTM units per direction, "
            "or CNN filters", minimum=1),
    Setting("crf", bool, True, "a CRF output layer (else a softmax per "
            "token)"),
    *vocabulary_settings(vocab_size=100000, min_count=1),
    Setting("rare_word_dropout", float, 0.5, "in training, read words "
            "seen once as unknown with this probability (so the model "
            "learns what to do with new words)", minimum=0.0,
            maximum=1.0),
    Setting("lowercase", bool, True, "look words up lower-cased (the "
            "character features still see the case)"),
    Setting("max_length", int, 200, "longest sentence in tokens; longer "
            "ones are cut, with a warning (their tail is tagged O)",
            minimum=1),
    # (selection by loss stops small noisy sets far under their best F1)
    monitor_setting("f1", ("f1",)),
    # (ULMFiT's recipe lost 3.4 points of F1 to the tagger's own schedule
    # on small data: docs/transfer.md)
    *transfer_settings(recipe=False),
)

#: The tagger's ``predict`` options.
PREDICT_SETTINGS = (
    Setting("input_format", str, "text", "text: a sentence per line, "
            "tokenized here; conll: a token per line (first column), "
            "blank lines between sentences", choices=("text", "conll")),
)


class TaggerPreprocessor(Preprocessor):
    """The token encoder (words, characters), the model's tags (in
    :data:`MODEL_SCHEME`) and where the words seen once begin.

    Attributes:
        encoder: the :class:`~nlpseq.text.TokenEncoder`.
        tags: the model's tags, ``"O"`` first.
        first_rare_id: word ids from here on were seen once in training.
        pretrained: the ``--embeddings`` matrix, only after :meth:`fit`
            (training starts the word embeddings from it; not saved).
        char_lms: the ``--char-lm`` models' descriptions
            (:func:`nlpseq.tasks.char_lm.describe`); their characters are
            in the character vocabulary.
    """

    def __init__(self, config, words, characters, tags, first_rare_id,
                 pretrained=None, digits_to_zero=True, char_lms=None):
        super().__init__(config)
        self.char_lms = list(char_lms or [])
        if not isinstance(tags, list) or "O" not in tags:
            raise ValueError("no tags")
        self.digits_to_zero = bool(digits_to_zero)
        self.encoder = token_encoder(words, characters, config,
                                     digits_to_zero)
        self.tags = list(tags)
        self.first_rare_id = int(first_rare_id)
        self.pretrained = pretrained

    @classmethod
    def _from_training_data(cls, data, config, digits_to_zero=True):
        """The training data's words as the encoder reads them (most
        frequent first: the words seen once are the tail), characters and
        tags, and the ``--char-lm`` models."""
        from nlpseq.text import build_vocabulary

        tokenizer = token_encoder(["", "[UNK]"], ["", "[UNK]"], config,
                                  digits_to_zero)
        normalized = [tokenizer.normalize(sentence).numpy()
                      for sentence in data.tokens]
        counts = collections.Counter(itertools.chain.from_iterable(
            normalized))
        words = build_vocabulary(normalized, max_size=config["vocab_size"],
                                 min_count=config["min_count"])
        first_rare_id = next(
            (i for i, w in enumerate(words[2:], start=2)
             if counts[w.encode()] <= 1),
            len(words))
        characters, tags = cls._characters_and_tags(data)
        models = cls._char_lms(config)
        return cls(config, words, char_lm.characters(characters, models),
                   tags, first_rare_id, digits_to_zero=digits_to_zero,
                   char_lms=models)

    @classmethod
    def fit(cls, data, config):
        preprocessor = cls._from_training_data(data, config)
        if config.get("embeddings"):
            encoder = preprocessor.encoder
            preprocessor.pretrained = read_vectors(
                config["embeddings"], encoder.words,
                lambda w: encoder.normalize(w).numpy().decode("utf-8"))
            # (saved in config.json: the model is rebuilt with it)
            config["embedding_dim"] = preprocessor.pretrained.shape[1]
        return preprocessor

    @staticmethod
    def _characters_and_tags(data):
        from nlpseq.text import build_vocabulary

        characters = build_vocabulary(
            (list(token) for sentence in data.tokens for token in sentence))
        types = entity_types(itertools.chain.from_iterable(data.tags))
        if not types:
            raise NlpseqError(f"{data.source}: no entities in the training "
                              "data")
        return characters, ["O"] + [f"{p}-{t}" for t in types for p in "BIES"]

    @staticmethod
    def _char_lms(config):
        """The ``--char-lm`` models' descriptions."""
        return [char_lm.describe(path) for path in config.get("char_lm")
                or ()]

    @classmethod
    def from_language_model(cls, source, data, config):
        """The training data's words, read as the language model
        ``source`` reads them (its casing; digits kept, not read as 0):
        the embedding starts each word the language model knows from its
        vector (:meth:`nlpseq.transfer.Source.copy_into`), and the others
        fresh. Words seen once are rare, as without ``--init-from``.
        (Taking the language model's whole vocabulary instead gives the
        words never seen in training vectors that training does not
        move, while the vectors of the words it sees do: on small data
        that lost 2 points of F1; docs/apps/ner.md.)"""
        return cls._from_training_data(data, config, digits_to_zero=False)

    @property
    def own_words(self):
        """The words by id: ``--init-from`` starts each from the language
        model's vector for it (:meth:`nlpseq.transfer.Source.copy_into`),
        the tagger's vocabulary being its own."""
        return list(self.encoder.words)

    def get_config(self):
        state = {"words": self.encoder.words[2:],
                 "characters": self.encoder.characters[2:],
                 "tags": self.tags, "first_rare_id": self.first_rare_id}
        if not self.digits_to_zero:
            state["digits_to_zero"] = False
        if self.char_lms:
            state["char_lms"] = self.char_lms
        return state

    @classmethod
    def from_config(cls, state, config):
        return cls(config,
                   ["", "[UNK]"] + cls.require(state["words"], "vocabulary"),
                   ["", "[UNK]"] + cls.require(state["characters"],
                                               "character vocabulary"),
                   state["tags"], state["first_rare_id"],
                   digits_to_zero=state.get("digits_to_zero", True),
                   char_lms=state.get("char_lms"))


def token_encoder(words, characters, config, digits_to_zero=True):
    """The :class:`~nlpseq.text.TokenEncoder` of the vocabularies."""
    from nlpseq.text import TokenEncoder

    return TokenEncoder(words, characters, lowercase=config["lowercase"],
                        digits_to_zero=digits_to_zero, name="token_encoder",
                        max_word_length=char_lm.WORD_LENGTH if config.get(
                            "char_lm") else 20)


class TaggerTask(Task):
    """Sequence tagging with entity spans: train, evaluate, predict,
    export."""

    family = "tagger"
    demo_panel = "ner"
    #: (the last layer is the CRF, which passes the emission scores through)
    onnx_output_names = ("tag_scores",)
    settings = SETTINGS
    transfer = "encoder"
    predict_settings = PREDICT_SETTINGS
    preprocessor_class = TaggerPreprocessor
    output_formats = (*FORMATS, "conll")
    data_help = ("tagged sentences: a CoNLL column file (a token per line, "
                 "the tag in the last column, a blank line between "
                 "sentences), a .jsonl file of {\"tokens\": [...], \"tags\":"
                 " [...]} objects, or tfds:NAME[:SPLIT] (e.g. "
                 "tfds:conll2003)")
    data_example = "train.conll"
    #: Sentences per length group in the graph (:meth:`tag_tokens`).
    SERVING_GROUP = 32

    def __init__(self, config, preprocessor=None):
        super().__init__(config, preprocessor)
        #: The model's CRF layer (``None`` with ``--no-crf``), once built.
        self.crf = None
        #: The ``--char-lm`` layer
        #: (:class:`~nlpseq.layers.ContextualCharacterEmbeddings`), once
        #: built, or ``None``.
        self.char_lm = None

    @classmethod
    def effective_config(cls, flags=None, config_file=None):
        """The base's, and ``--char-lm`` checked
        (:func:`nlpseq.tasks.char_lm.check`)."""
        return char_lm.check(super().effective_config(flags, config_file))

    @property
    def tags(self):
        """The model's tags, in :data:`MODEL_SCHEME`."""
        return self.preprocessor.tags

    # -- data ------------------------------------------------------------------

    def read_data(self, spec, role):
        data = read_tagged(spec, self.config.get("token_column", 0),
                           self.config.get("tag_column", -1))
        return self.check_scheme(data)

    def check_scheme(self, data):
        """``data``, after a warning (or, with ``--strict``, an error) for
        tags that break the declared scheme."""
        scheme = self.config.get("tag_scheme", "iob2")
        broken, first = 0, None
        for index, tags in enumerate(data.tags):
            errors = scheme_errors(tags, scheme)
            if errors:
                broken += len(errors)
                if first is None:
                    line = data.lines[index]
                    if line and data.token_per_line:
                        line += errors[0]
                    where = f"{data.source}:{line}" if line else \
                        f"{data.source}: sentence {index + 1}"
                    previous = tags[errors[0] - 1] if errors[0] else "start"
                    first = (f"{where}: {tags[errors[0]]} after {previous} "
                             f"breaks the {scheme} scheme")
        if broken and self.config.get("strict"):
            raise NlpseqError(f"{first} (--strict)")
        if broken:
            LOG.warning("%s; %d such tag(s) in all, read as conlleval does "
                        "(an I- tag after O starts an entity)", first,
                        broken)
        return data

    def split_data(self, data, fraction):
        cut = held_out_cut(len(data), fraction, data.source,
                                "sentences")
        return data.subset(0, cut), data.subset(cut, len(data))

    def describe_data(self, data):
        tokens = sum(len(t) for t in data.tokens)
        entities = sum(len(spans(t)) for t in data.tags)
        types = entity_types(itertools.chain.from_iterable(data.tags))
        return (f"{len(data):,} sentences, {tokens:,} tokens, {entities:,} "
                f"entities ({', '.join(types) or 'none'})")

    # -- encoding --------------------------------------------------------------

    def warn_long(self, sentences, source, consequence):
        """Warn (once per call) of sentences over ``--max-length``."""
        limit = self.config["max_length"]
        long = sum(len(s) > limit for s in sentences)
        if long:
            where = f"{source}: " if source else ""
            LOG.warning("%s%d sentence(s) longer than --max-length %d "
                        "tokens; %s", where, long, limit, consequence)

    def truncate(self, sentences, source):
        """Sentences cut to ``--max-length``, with a warning."""
        limit = self.config["max_length"]
        self.warn_long(sentences, source,
                       f"cut to {limit} (the rest is tagged O)")
        return [s[:limit] for s in sentences]

    def encode_tokens(self, sentences, chunk=2048):
        """``(word ids, char ids)`` of each sentence (1-D and 2-D arrays)."""
        import tensorflow as tf

        encoder = self.preprocessor.encoder
        out = []
        for start in range(0, len(sentences), chunk):
            block = sentences[start:start + chunk]
            width = max(len(s) for s in block)
            padded = [s + [""] * (width - len(s)) for s in block]
            words, chars = encoder(tf.constant(padded))
            words, chars = words.numpy(), chars.numpy()
            for row, sentence in enumerate(block):
                n = len(sentence)
                char_width = max(1, int((chars[row, :n] > 0).sum(1).max()))
                out.append((words[row, :n], chars[row, :n, :char_width]))
        return out

    def encode(self, data):
        tokens = self.truncate(data.tokens, data.source)
        index = {tag: i + 1 for i, tag in enumerate(self.tags)}
        targets = []
        for number, (sentence, tags) in enumerate(zip(tokens, data.tags)):
            model_tags = convert(tags[:len(sentence)], MODEL_SCHEME)
            unknown = [t for t in model_tags if t not in index]
            if unknown:
                raise NlpseqError(
                    f"{data.source}: sentence {number + 1}: tag "
                    f"{unknown[0]} is unknown to the model (its entity types:"
                    f" {', '.join(entity_types(self.tags))})")
            targets.append(np.array([index[t] for t in model_tags], "int32"))
        return self.encode_tokens(tokens), targets

    # -- model -----------------------------------------------------------------

    def build_model(self):
        """The model: ``[word ids, char ids]`` in, tag scores out (through
        the CRF, kept as :attr:`crf`, unless ``--no-crf``)."""
        import keras

        from nlpseq.layers import (
            CRF,
            CharacterFeatures,
            ContextualCharacterEmbeddings,
            JoinFeatures,
            RareWordDropout,
        )
        from nlpseq.models import Tagger
        from nlpseq.tasks.encoder import RecurrentEncoder

        c = self.config
        preprocessor = self.preprocessor
        words = keras.Input((None,), dtype="int32", name="word_ids")
        chars = keras.Input((None, None), dtype="int32", name="char_ids")
        initializer = "uniform"
        if getattr(preprocessor, "pretrained", None) is not None:
            initializer = keras.initializers.Constant(preprocessor.pretrained)
        ids = words
        if c["rare_word_dropout"]:
            ids = RareWordDropout(preprocessor.first_rare_id,
                                  c["rare_word_dropout"], seed=c["seed"],
                                  name="rare_words")(words)
        backbone = self.backbone = RecurrentEncoder(c)
        x = backbone.embed(keras.layers.Embedding(
            len(preprocessor.encoder.words), c["embedding_dim"],
            mask_zero=True, embeddings_initializer=initializer,
            name="word_embedding"), ids)
        if c["char_features"] != "none":
            x = backbone.join(CharacterFeatures(
                len(preprocessor.encoder.characters), mode=c["char_features"],
                char_dim=c["char_dim"], units=c["char_units"], cell=c["cell"],
                name="char_features"), chars, x, name="word_and_chars")
        self.char_lm = None
        if preprocessor.char_lms:
            self.char_lm = ContextualCharacterEmbeddings(
                char_lm.layer_specs(preprocessor.encoder.characters,
                                    preprocessor.char_lms),
                fine_tune=c["fine_tune_char_lm"],
                position=c["char_lm_position"], name="char_lm")
            x = JoinFeatures(name="and_char_lm")([x, self.char_lm(chars)])
        x = keras.layers.Dropout(c["dropout"], name="dropout_in")(x)
        x = backbone.stack(x, options=lambda index: {"return_sequences": True})
        x = keras.layers.Dropout(c["dropout"], name="dropout_out")(x)
        # (float32 under mixed precision too; the CRF computes in float32)
        scores = keras.layers.Dense(len(self.tags), name="tag_scores",
                                    dtype="float32")(x)
        self.crf = None
        if c["crf"]:
            self.crf = CRF(len(self.tags), name="crf")
            scores = self.crf(scores)
        return Tagger([words, chars], scores, name=self.name or self.family)

    def prepare_model(self, x, y):
        """The ``--char-lm`` models' weights copied into :attr:`char_lm`."""
        if self.char_lm is not None:
            char_lm.copy_weights(self.char_lm, self.preprocessor.char_lms)

    # -- prediction ------------------------------------------------------------

    def decode_ids(self, word_ids, char_ids):
        """Graph function: tag indices ``[batch, time]`` (into
        :attr:`tags`) of encoded sentences."""
        import tensorflow as tf

        scores = self.model([word_ids, char_ids], training=False)
        mask = word_ids > 0
        if self.crf is not None:
            tags = self.crf.decode(scores, mask)
        else:
            tags = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return tf.where(mask, tags, tf.zeros_like(tags))

    def tag_tokens(self, tokens):
        """Graph function: tag strings (in the data's scheme) of token
        strings ``[batch, time]`` (``""`` pads)."""
        import tensorflow as tf

        from nlpseq.length_groups import in_groups

        tokens = tf.convert_to_tensor(tokens, tf.string)
        # (at least one column)
        word_ids, char_ids = self.preprocessor.encoder(tokens)
        # each word's characters [batch, time]
        word_lengths = tf.reduce_sum(tf.cast(char_ids > 0, tf.int32), axis=2)

        def decode_group(word_ids, char_ids, word_lengths):
            # the characters cut to the group's longest word
            longest = tf.maximum(tf.reduce_max(word_lengths), 1)
            return self.decode_ids(word_ids, char_ids[:, :, :longest])

        # Sentences of similar length together, ordered by their characters
        # (what the character models' loops run over): less work on padding.
        ids = in_groups(
            decode_group, [word_ids, char_ids, word_lengths],
            tf.reduce_sum(tf.cast(word_ids > 0, tf.int32), axis=1),
            [tf.shape(word_ids)[1]], dtype=tf.int32, per_step=True,
            order_by=tf.reduce_sum(word_lengths, axis=1),
            group=self.SERVING_GROUP)[:, :tf.shape(tokens)[1]]
        return tf.where(tokens == "", tf.constant(""),
                        self.scheme_tags(ids))

    def _iob2_table(self):
        """Each model tag in IOB2: S- and B- begin, I- and E- continue."""
        prefix = {"B": "B", "S": "B", "I": "I", "E": "I"}
        return [t if t == "O" else f"{prefix[t[0]]}{t[1:]}"
                for t in self.tags]

    def scheme_tags(self, ids):
        """Graph function: model tag ids (BIOES) ``[batch, time]`` -> tag
        strings in the data's scheme, tensor-wise: iob2 maps each tag (S-
        and B- to B-, I- and E- to I-); iob1 writes B- only right after an
        entity of the same type; bioes keeps the model's tags."""
        import tensorflow as tf

        scheme = self.config["tag_scheme"]
        if scheme == "bioes":
            return tf.gather(tf.constant(self.tags), ids)
        if scheme == "iob2":
            return tf.gather(tf.constant(self._iob2_table()), ids)
        types = [t.partition("-")[2] for t in self.tags]
        kind = tf.gather(tf.constant(types), ids)
        prefix = tf.gather(tf.constant([t[0] for t in self.tags]), ids)
        previous_kind = tf.pad(kind[:, :-1], [[0, 0], [1, 0]])
        previous_prefix = tf.pad(prefix[:, :-1], [[0, 0], [1, 0]],
                                 constant_values="O")
        begins = tf.logical_or(tf.equal(prefix, "B"), tf.equal(prefix, "S"))
        after_same = tf.logical_and(tf.equal(previous_kind, kind),
                                    tf.not_equal(previous_prefix, "O"))
        inside = tf.strings.join(["I-", kind])
        return tf.where(tf.equal(prefix, "O"), tf.constant("O"),
                        tf.where(tf.logical_and(begins, after_same),
                                 tf.strings.join(["B-", kind]), inside))

    def graph_functions(self):
        import tensorflow as tf

        return {"tag": (self.tag_tokens,
                        [tf.TensorSpec((None, None), tf.string)])}

    def predict_tags(self, sentences, batch_size=128):
        """Tags (data scheme) of token lists, sorted by length and padded
        per batch; sentences over ``--max-length`` are tagged O beyond
        it."""
        import tensorflow as tf


        limit = self.config["max_length"]
        result = [None] * len(sentences)
        order = np.argsort([len(s) for s in sentences], kind="stable")
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            width = max([min(len(sentences[i]), limit) for i in index] + [1])
            padded = [sentences[i][:limit] + [""] * (
                width - min(len(sentences[i]), limit)) for i in index]
            tags = self.graph_function("tag")(tf.constant(padded)).numpy()
            for row, i in enumerate(index):
                n = len(sentences[i])
                result[i] = [t.decode() for t in tags[row, :min(n, limit)]] \
                    + ["O"] * max(0, n - limit)
        return result

    @staticmethod
    def tokenize(lines):
        """Token lists of raw sentences (:func:`word_tokenize`), and each
        token's character offsets."""
        tokens = [[t.decode("utf-8") for t in row]
                  for row in word_tokenize(list(lines)).to_list()]
        offsets = []
        for line, row in zip(lines, tokens):
            position, found = 0, []
            for token in row:
                start = line.find(token, position)
                start = position if start < 0 else start
                found.append((start, start + len(token)))
                position = start + len(token)
            offsets.append(found)
        return tokens, offsets

    def predict_stream(self, lines, chunk=1024, **options):
        """Records for an iterable of lines; with the ``input_format``
        option ``conll``, the lines are a token per line (first column),
        blank lines between sentences."""
        lines = inputs.text_stream("predict_stream", lines)
        with self.using_options(options):
            if self.options.get("input_format") != "conll":
                yield from super().predict_stream(lines, chunk)
            else:
                yield from self._conll_stream(lines, chunk)

    def _conll_stream(self, lines, chunk):
        """Records of CoNLL lines (a token per line), ``chunk`` sentences
        at a time."""
        sentence, batch = [], []
        source = itertools.chain(lines, [""])
        while True:
            try:
                line = next(source)
            except StopIteration:
                break
            except Exception:
                # (a bad line: the sentences before it are tagged first)
                if batch:
                    yield from self.records(batch, None)
                raise
            fields = line.split()
            if fields and fields[0] != "-DOCSTART-":
                sentence.append(fields[0])
                continue
            if sentence:
                batch.append(sentence)
                sentence = []
            if len(batch) >= chunk:
                yield from self.records(batch, None)
                batch = []
        if batch:
            yield from self.records(batch, None)

    def predict_lines(self, lines):
        tokens, offsets = self.tokenize(lines)
        yield from self.records(tokens, offsets, lines)

    def empty_record(self, text):
        return {"text": text, "tokens": [], "tags": [], "entities": []}

    def records(self, sentences, offsets, texts=None):
        """Records of token lists: the text, tokens, tags and entities
        (with character offsets into the text: ``offsets`` per token, or,
        when ``None``, the tokens joined by spaces)."""
        self.warn_long(sentences, None, "tagged O beyond it")
        all_tags = self.predict_tags(sentences)
        for index, (tokens, tags) in enumerate(zip(sentences, all_tags)):
            text = texts[index] if texts is not None else " ".join(tokens)
            where = offsets[index] if offsets is not None else list(
                _joined_offsets(tokens))
            entities = [{
                "type": kind, "text": text[where[start][0]:where[end - 1][1]],
                "start": where[start][0], "end": where[end - 1][1],
                "token_start": start, "token_end": end,
            } for kind, start, end in spans(tags)]
            yield {"text": text, "tokens": tokens, "tags": tags,
                   "entities": entities}

    def format_record(self, record, output_format="text"):
        if output_format == "conll":
            return "".join(f"{token}\t{tag}\n" for token, tag in
                           zip(record["tokens"], record["tags"]))
        starts = {e["token_start"]: e for e in record["entities"]}
        parts, index = [], 0
        tokens = record["tokens"]
        while index < len(tokens):
            entity = starts.get(index)
            if entity:
                inner = " ".join(tokens[index:entity["token_end"]])
                parts.append(f"[{entity['type']} {inner}]")
                index = entity["token_end"]
            else:
                parts.append(tokens[index])
                index += 1
        return " ".join(parts)

    # -- evaluation ------------------------------------------------------------

    def evaluate_data(self, data):
        known = set(entity_types(self.tags))
        for number, tags in enumerate(data.tags):
            unknown = set(entity_types(tags)) - known
            if unknown:
                line = data.lines[number] if data.lines else 0
                where = f"{data.source}:{line}" if line else data.source
                raise NlpseqError(
                    f"{where}: entity type {sorted(unknown)[0]} is unknown to "
                    f"the model (its types: {', '.join(sorted(known))})")
        self.truncate(data.tokens, data.source)
        predicted = self.predict_tags(data.tokens)
        gold = [convert(tags, self.config["tag_scheme"]) for tags in data.tags]
        return entity_scores(gold, predicted)

    def format_metrics(self, metrics):
        return format_scores(metrics)

    def headline(self, metrics):
        return (f"validation F1 {metrics['f1']:.2f} (precision "
                f"{metrics['precision']:.2f}, recall {metrics['recall']:.2f})")

    # -- serving ---------------------------------------------------------------

    def serving_layers(self):
        return [self.preprocessor.encoder]

    def report_sections(self, data, described, metrics, history):
        from nlpseq.report import tagger_sections

        return tagger_sections(self, data, described, metrics, history)

    def serving_functions(self):
        """``serving_default``: raw sentences (``text``) -> ``tokens`` and
        ``tags``, and the entities as ``predict`` gives them
        (:func:`graph_entities`); ``tokens``: token strings (``""`` pads)
        -> ``tags``."""
        import tensorflow as tf

        from nlpseq.text import blank

        limit = self.config["max_length"]

        def from_text(text):
            # (an empty or whitespace-only text has no tokens, as in
            # predict, Unicode spaces included)
            words = tf.where(blank(text), "", text)
            tokens = word_tokenize(words)[:, :limit].to_tensor("")
            tags = self.tag_tokens(tokens)
            return {"tokens": tokens, "tags": tags,
                    **graph_entities(text, tokens, tags)}

        def from_tokens(tokens):
            return {"tags": self.tag_tokens(tokens)}

        return {
            "serving_default": (from_text, [
                tf.TensorSpec((None,), tf.string, name="text")]),
            "tokens": (from_tokens, [
                tf.TensorSpec((None, None), tf.string, name="tokens")]),
        }


def word_tokenize(texts):
    """Raw sentences to tokens (a ragged string tensor), in the graph:
    split on whitespace, and punctuation at the edges of a word becomes a
    token of its own, while punctuation inside one stays (``U.S``,
    ``1996-08-22``, ``3.5``, ``O'Neill``), and a possessive ``'s`` is split
    off, as in CoNLL data."""
    import tensorflow as tf

    texts = tf.convert_to_tensor(texts, tf.string)
    # the possessive is a token of its own, as in CoNLL: Germany 's
    texts = tf.strings.regex_replace(texts, r"(\pL)('[sS])(\s|$)",
                                     r"\1 \2\3")
    for _ in range(3):  # up to three marks in a row: ."), ("...
        texts = tf.strings.regex_replace(texts, r"([^\pL\pN\s])(\s|$)",
                                         r" \1\2")
        # (an apostrophe opening a word stays: 's, '90s)
        texts = tf.strings.regex_replace(texts, r"(^|\s)([^\pL\pN\s'])",
                                         r"\1\2 ")
    return tf.strings.split(texts)


#: The characters ``tf.strings.split`` (no separator) splits on, as code
#: points: :func:`word_tokenize`'s tokens are the other characters.
SPLIT_SPACES = (9, 10, 11, 12, 13, 32)


def graph_entities(text, tokens, tags):
    """Graph function: the entities of tagged sentences, as
    :meth:`TaggerTask.records` gives them (:func:`~nlpseq.tagging.spans`'
    rules, character offsets into the text).

    Args:
        text: the sentences, string ``[batch]``.
        tokens: their :func:`word_tokenize` tokens (possibly cut at the
            end), string ``[batch, time]``, ``""`` pads.
        tags: the tokens' tags in any scheme, ``[batch, time]``, ``""``
            pads.

    Returns:
        ``entity_types``, ``entity_texts`` (string ``[batch, entities]``,
        ``""`` pads), ``entity_starts``, ``entity_ends`` (int32 code point
        offsets into the text, end exclusive, -1 pads) and ``entity_count``
        (int32 ``[batch]``).

    The tokenizer only inserts spaces and splits on :data:`SPLIT_SPACES`,
    so token k starts at the text's n-th character outside them, n being
    the length of the tokens before it.
    """
    import tensorflow as tf

    text = tf.convert_to_tensor(text, tf.string)
    tokens = tf.convert_to_tensor(tokens, tf.string)
    tags = tf.convert_to_tensor(tags, tf.string)
    # the positions of the characters the tokens are made of
    chars = tf.strings.unicode_decode(text, "UTF-8")
    spaces = tf.reduce_any(tf.equal(chars.flat_values[:, None],
                                    tf.constant(SPLIT_SPACES)), axis=1)
    positions = tf.ragged.boolean_mask(
        tf.ragged.range(chars.row_lengths()), chars.with_flat_values(~spaces))
    # (a trailing -1: padding tokens look up something)
    visible = tf.concat([positions.flat_values, [-1]], axis=0)
    row_first = positions.row_splits[:-1, None]

    def position(index):
        index = tf.clip_by_value(row_first + tf.cast(index, tf.int64), 0,
                                 tf.size(visible, tf.int64) - 1)
        return tf.cast(tf.gather(visible, index), tf.int32)

    lengths = tf.strings.length(tokens, unit="UTF8_CHAR")
    before = tf.cumsum(lengths, axis=1, exclusive=True)
    token_starts = position(before)
    token_ends = position(before + lengths - 1) + 1

    # conlleval's chunk rules (nlpseq.tagging.spans), on the tags and an "O"
    # after the last one: an entity ends before index i, and one starts at i
    outside = tf.logical_or(tf.equal(tags, "O"), tf.equal(tags, ""))
    proper = tf.strings.regex_full_match(tags, "[BIES]-.+")
    prefix = tf.where(outside, "O", tf.where(
        proper, tf.strings.substr(tags, 0, 1), "I"))
    kind = tf.where(outside, "", tf.where(
        proper, tf.strings.regex_replace(tags, "^[BIES]-", ""), tags))
    prefix = tf.pad(prefix, [[0, 0], [0, 1]], constant_values="O")
    kind = tf.pad(kind, [[0, 0], [0, 1]])
    previous = tf.pad(prefix[:, :-1], [[0, 0], [1, 0]], constant_values="O")
    previous_kind = tf.pad(kind[:, :-1], [[0, 0], [1, 0]])

    def among(tensor, values):
        return tf.reduce_any(tf.equal(tensor[..., None], values), axis=-1)

    other_kind = tf.not_equal(previous_kind, kind)
    ends = tf.logical_and(tf.not_equal(previous, "O"), (
        among(previous, ["E", "S"])
        | (among(previous, ["B", "I"]) & among(prefix, ["B", "S", "O"]))
        | other_kind))
    starts = (among(prefix, ["B", "S"])
              | (among(previous, ["E", "S", "O"]) & among(prefix, ["E", "I"]))
              | (tf.not_equal(prefix, "O") & other_kind))
    index = tf.broadcast_to(tf.range(tf.shape(prefix)[1]), tf.shape(prefix))
    first = tf.ragged.boolean_mask(index, starts)
    last = tf.ragged.boolean_mask(index, ends).flat_values - 1
    where = tf.stack([first.value_rowids(), tf.cast(first.flat_values,
                                                   tf.int64)], axis=1)
    start = tf.gather_nd(token_starts, where)
    end = tf.gather_nd(token_ends, tf.stack(
        [first.value_rowids(), tf.cast(last, tf.int64)], axis=1))
    # each entity's text: its code points, encoded again
    offset = tf.gather(chars.row_splits, first.value_rowids())
    span = tf.ragged.range(offset + tf.cast(start, tf.int64),
                           offset + tf.cast(end, tf.int64))
    texts = tf.strings.unicode_encode(
        span.with_flat_values(tf.gather(chars.flat_values, span.flat_values)),
        "UTF-8")

    def padded(values, pad):
        return first.with_flat_values(values).to_tensor(pad)

    return {
        "entity_types": padded(tf.gather_nd(kind, where), ""),
        "entity_texts": padded(texts, ""),
        "entity_starts": padded(start, -1),
        "entity_ends": padded(end, -1),
        "entity_count": tf.cast(first.row_lengths(), tf.int32),
    }


def _joined_offsets(tokens):
    position = 0
    for token in tokens:
        yield position, position + len(token)
        position += len(token) + 1


def read_vectors(path, words, normalize=None):
    """A ``[len(words), dim]`` matrix: the vectors of a GloVe or word2vec
    text file for the words it has, small random values for the others.
    ``normalize`` maps the file's words to the vocabulary's form (the first
    vector of a form wins: the files list frequent words first); a word may
    contain spaces (the last ``dim`` fields are the vector).

    Raises:
        NlpseqError: missing file, or ``FILE:LINE`` with the wrong number of
            values or a value that is not a number.
    """
    from nlpseq.data._files import iter_lines

    if not Path(path).is_file():
        raise NlpseqError(f"--embeddings: file not found: {path}")
    index = {w: i for i, w in enumerate(words)}
    matrix, dim, found = None, None, set()
    for number, line in enumerate(iter_lines(path, str(path)), start=1):
        fields = line.rstrip().split(" ")
        if number == 1 and len(fields) == 2 and all(
                f.isdigit() for f in fields):
            continue  # word2vec header: count and dimension
        if len(fields) < 2:
            continue
        if dim is None:
            dim = len(fields) - 1
            rng = np.random.default_rng(0)
            matrix = rng.uniform(-0.05, 0.05, (len(words), dim)).astype(
                "float32")
            matrix[0] = 0.0
        if len(fields) - 1 < dim:
            raise NlpseqError(f"{path}:{number}: {len(fields) - 1} values, "
                              f"expected {dim} (as on the first vector)")
        word = " ".join(fields[:-dim])
        word = normalize(word) if normalize else word
        row = index.get(word)
        if row is not None and row not in found:
            try:
                matrix[row] = [float(v) for v in fields[-dim:]]
            except ValueError:
                raise NlpseqError(f"{path}:{number}: not a vector of "
                                  "numbers") from None
            found.add(row)
    if matrix is None:
        raise NlpseqError(f"{path}: no vectors")
    LOG.info("Pretrained vectors: %s of %s words found in %s (%d "
             "dimensions)", f"{len(found):,}", f"{len(words) - 2:,}", path,
             dim, extra={"stderr": True})
    return matrix


__all__ = ["MODEL_SCHEME", "SETTINGS", "SPLIT_SPACES", "TaggerPreprocessor",
           "TaggerTask", "graph_entities", "read_vectors", "word_tokenize"]
