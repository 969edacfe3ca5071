"""The sequence-to-sequence family: a sentence in, a sentence out.

The encoder-decoder with attention (input and output lengths differ).
Sentences are split into words and punctuation marks, case kept. The source
words go through an embedding and stacked nlpseq recurrent layers of
``units`` per direction (bidirectional by default: the two directions'
final states, side by side, start the decoder's layer of the same depth, so
the decoder's layers have ``units`` times the number of directions). The
decoder is a stack of nlpseq recurrent layers over the target words read so
far (teacher forcing in training); at each step its state ``h_t`` queries
the encoder's outputs (:class:`~nlpseq.layers.Attention`, Luong's
multiplicative or Bahdanau's additive score), and the attentional state
``tanh(W_c [c_t; h_t])`` gives the next word's logits (Luong et al.'s global
attention). The loss is the cross-entropy of the target words, with label
smoothing (:class:`~nlpseq.models.Translator`).

Decoding runs one step function (:meth:`Seq2SeqTask.decode_step`) through
the shared searches of :mod:`nlpseq.decoding`: greedy (the most likely word
at each step) or beam search (``--beam-width`` hypotheses, ranked by
log-probability divided by the length penalty ``((5 + length) / 6) **
alpha``). The exported SavedModel
holds the tokenizer, the encoder, the loop and the detokenizer: raw source
strings in, translations out. Data: parallel sentences
(:mod:`nlpseq.data.parallel`).

With ``subwords`` N (``--subwords``; 0, the default, reads and writes whole
words), each side's vocabulary is N word pieces learned from its training
text, and the words are segmented into pieces and the pieces joined back
into words in the graph (:mod:`nlpseq.subwords`, core TensorFlow ops
only).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from nlpseq.config import Setting, merge
from nlpseq.data import held_out_cut
from nlpseq.errors import NlpseqError
from nlpseq.log import LOG
from nlpseq.tasks.base import Task
from nlpseq.tasks.preprocessor import Preprocessor
from nlpseq.tasks.settings import (
    AWD_SETTINGS,
    MAX_BEAM_WIDTH,
    MIN_SUBWORDS,
    check_subwords,
    encoder_settings,
    subwords_setting,
    vocabulary_settings,
    without,
)

START, END = "<s>", "</s>"
#: Ids of the target vocabulary: padding, unknown, start, end.
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
ATTENTION = ("luong", "bahdanau", "none")
#: The beam width of the exported ``serving_default`` signature, and the
#: beam width and number of translations of ``translate_beam``.
EXPORT_BEAM_WIDTH = 5
#: The length penalty of the exported ``serving_default``,
#: ``translate_greedy`` and ``translate_beam`` signatures.
EXPORT_LENGTH_PENALTY = 1.0


def _units_help(settings):
    return tuple(dataclasses.replace(
        s, help="units of each encoder layer, per direction (the decoder's "
        "layers have units x directions)") if s.name == "units" else s
        for s in settings)


#: The sequence-to-sequence family's settings.
SETTINGS = (
    Setting("source_lang", str, "de", "source language: the {lang} of "
            "a FILE.{lang} pattern, the feature of a tfds: dataset"),
    Setting("target_lang", str, "en", "target language (as "
            "--source-lang)"),
    Setting("reverse", bool, False, "read TSV pairs and SOURCE,TARGET "
            "files the other way round (target first)"),
    *_units_help(encoder_settings(
        cell="lstm", bidirectional=True, layers=1, units=128,
        embedding_dim=256, dropout=0.3,
        bidirectional_help="read the source in both directions",
        layers_help="recurrent layers of the encoder and of the decoder",
        dropout_help="dropout on embeddings, between layers and on the "
        "attentional state")),
    Setting("attention", str, "luong", "attention score: luong "
            "(multiplicative), bahdanau (additive) or none",
            choices=ATTENTION),
    Setting("label_smoothing", float, 0.1, "weight of the uniform "
            "distribution mixed into the training targets", minimum=0.0,
            maximum=0.9),
    Setting("tie_embeddings", bool, False, "use the target embedding "
            "matrix as the output layer too (Press and Wolf 2017; the "
            "attentional state is then --embedding-dim wide)"),
    # (the language model's AWD-LSTM regularizers that apply here; the
    # source and the target embeddings each drop their own words)
    *without(AWD_SETTINGS, "locked_dropout", "ar", "tar"),
    *vocabulary_settings(vocab_size=10000, minimum_size=5),
    Setting("max_length", int, 50, "words (pieces with --subwords) per "
            "sentence; longer ones are cut (with a warning)", minimum=1),
    subwords_setting("size of each side's vocabulary of word pieces "
                     "learned from the training text (0: whole words, with "
                     "--vocab-size and --min-count; else at least "
                     f"{MIN_SUBWORDS})"),
)


def decoder_units(config):
    """The units of each decoder layer: ``units`` x the encoder's
    directions (its final states, side by side, start the decoder)."""
    return config["units"] * (2 if config["bidirectional"] else 1)


def check_tied(config):
    """``config``, or an error where ``tie_embeddings`` cannot hold: with
    ``attention`` none the decoder's state is what the output layer reads,
    so it must be ``embedding_dim`` wide."""
    units = decoder_units(config)
    if config["tie_embeddings"] and config["attention"] == "none" \
            and units != config["embedding_dim"]:
        where = config.given.get("tie_embeddings", "--tie-embeddings")
        raise NlpseqError(
            f"{where}: tie_embeddings with attention none needs "
            "embedding_dim equal to the decoder's units "
            f"({units}: units x directions), got {config['embedding_dim']}")
    return config


#: The largest length penalty (beyond it the penalty of a long translation
#: overflows float32 and every score is 0).
MAX_LENGTH_PENALTY = 10.0

PREDICT_SETTINGS = (
    Setting("beam_width", int, 5, "hypotheses kept by beam search (1: "
            f"greedy; at most {MAX_BEAM_WIDTH})", minimum=1,
            maximum=MAX_BEAM_WIDTH),
    Setting("length_penalty", float, 1.0, "alpha of the length penalty "
            "((5 + length) / 6) ** alpha (0: none; higher favours longer "
            f"translations; at most {MAX_LENGTH_PENALTY:g})", minimum=0.0,
            maximum=MAX_LENGTH_PENALTY),
    Setting("n_best", int, 1, "translations per sentence (at most "
            "--beam-width)", minimum=1),
    Setting("attention_plot", str, None, "draw the attention of the "
            "first sentence into this PNG file (needs matplotlib)"),
)


#: The options of ``export`` (:attr:`~nlpseq.tasks.base.Task.export_settings`):
#: the cap on what a request to the exported ``translate`` signature may ask
#: for (``n_best`` is at most ``beam_width`` already; a translation's length
#: follows its source's, cut at ``--max-length``). ``translate_beam``'s beam
#: is its minimum.
EXPORT_SETTINGS = (
    Setting("max_beam_width", int, 16, "the widest beam a request to the "
            "exported translate signature may ask for (its beam_width; at "
            f"least translate_beam's {EXPORT_BEAM_WIDTH})",
            minimum=EXPORT_BEAM_WIDTH),
)


class Seq2SeqPreprocessor(Preprocessor):
    """The source and target text encoders (their vocabularies); the target
    vocabulary starts with padding, unknown, ``<s>`` and ``</s>``. With
    ``subwords``, the encoders are :class:`~nlpseq.subwords.SubwordEncoder`
    and the vocabularies word pieces."""

    def __init__(self, config, source_vocabulary, target_vocabulary):
        from nlpseq.tasks.encoder import text_encoder

        super().__init__(config)
        # (both keep every word: sentences are cut to --max-length where
        # their ids are used, after counting the long ones)
        options = dict(max_length=None, lowercase=False, strip_html=False,
                       split_punctuation=True)
        make = text_encoder
        if config.get("subwords"):
            from nlpseq.subwords import SubwordEncoder as make
        self.source_encoder = make(
            source_vocabulary, name="source_encoder", **options)
        self.target_encoder = make(
            target_vocabulary, name="target_encoder", **options)

    @classmethod
    def fit(cls, data, config):
        from nlpseq.tasks.encoder import token_rows
        from nlpseq.text import PADDING, UNKNOWN, TextEncoder, build_vocabulary

        tokenizer = TextEncoder([PADDING, UNKNOWN], max_length=None,
                                lowercase=False, strip_html=False,
                                split_punctuation=True)
        if config.get("subwords"):
            return cls(config, *cls.learn_pieces(tokenizer, data, config))
        size, count = config["vocab_size"], config["min_count"]
        source = build_vocabulary(token_rows(tokenizer, data.sources),
                                  max_size=size, min_count=count)
        target = build_vocabulary(token_rows(tokenizer, data.targets),
                                  max_size=size - 2, min_count=count)
        target = target[:2] + [START, END] + [
            w for w in target[2:] if w not in (START, END)]
        return cls(config, source, target)

    @staticmethod
    def learn_pieces(tokenizer, data, config):
        """The source and target vocabularies of ``config["subwords"]``
        word pieces each (:func:`nlpseq.subwords.learn_vocabulary`)."""
        from nlpseq.subwords import learn_vocabulary
        from nlpseq.tasks.encoder import token_rows

        size = config["subwords"]
        source = learn_vocabulary(token_rows(tokenizer, data.sources), size)
        target = learn_vocabulary(token_rows(tokenizer, data.targets), size,
                                  reserved=(START, END))
        LOG.info("Subword vocabularies: %s source and %s target pieces",
                 f"{len(source) - 2:,}", f"{len(target) - 4:,}")
        return source, target

    def get_config(self):
        return {"source_vocabulary": self.source_encoder.vocabulary[2:],
                "target_vocabulary": self.target_encoder.vocabulary[2:]}

    @classmethod
    def from_config(cls, state, config):
        from nlpseq.text import PADDING, UNKNOWN

        target = [PADDING, UNKNOWN] + cls.require(
            state["target_vocabulary"], "target vocabulary")
        if target[START_ID:END_ID + 1] != [START, END]:
            raise ValueError(f"the target vocabulary does not start with "
                             f"{START} and {END}")
        if len(target) <= END_ID + 1:
            raise ValueError("empty target vocabulary (only <s> and </s>)")
        return cls(config, [PADDING, UNKNOWN] + cls.require(
            state["source_vocabulary"], "source vocabulary"), target)


class Seq2SeqTask(Task):
    """Sequence to sequence: an encoder-decoder with attention.

    Attributes set by :meth:`build_model` (the parts decoding runs):
        encoder_model: source ids -> ``[memory] + decoder initial states``.
        target_embedding: the target words' embedding layer.
        decoder_cells: the cells of the decoder's layers, one step at a time.
        attention: the :class:`~nlpseq.layers.Attention` layer (or None).
        attentional: the dense ``tanh(W_c [c_t; h_t])`` layer (or None).
        logits_layer: the dense layer of the next word's logits (``None``
            with ``tie_embeddings``: :meth:`output_logits`).
    """

    family = "seq2seq"
    #: Hypotheses per length group in the graph (:meth:`translate`): a
    #: group holds this many over the beam width sentences (all of a
    #: request's, up to this many, for greedy decoding, whose steps cost
    #: little per row).
    SERVING_HYPOTHESES = 80
    commands = ("ensemble",)
    demo_panel = "translation"
    settings = SETTINGS
    predict_settings = PREDICT_SETTINGS
    evaluate_options = ("beam_width", "length_penalty")
    export_settings = EXPORT_SETTINGS
    #: The cap the ``translate`` signature enforces: the default, or that of
    #: the export being written (:func:`nlpseq.exporters.export_limits`).
    limits = merge(EXPORT_SETTINGS)
    preprocessor_class = Seq2SeqPreprocessor
    #: (tied, the model's last layer is the target embedding)
    onnx_output_names = ("logits",)
    data_help = ("sentence pairs: a .tsv file of source<TAB>target lines, "
                 "two aligned files SOURCE,TARGET, a pattern FILE.{lang} of "
                 "two aligned files, or tfds:NAME[:SPLIT]")
    data_example = "pairs.tsv"

    def __init__(self, config, preprocessor=None):
        super().__init__(config, preprocessor)
        self.encoder_model = None
        self.target_embedding = None
        self.decoder_cells = None
        self.attention = None
        self.attentional = None
        self.logits_layer = None
        self._characters = None
        self._plotted = False

    @classmethod
    def effective_config(cls, flags=None, config_file=None):
        """The base's, and ``subwords`` 0 or at least
        :data:`MIN_SUBWORDS`."""
        return check_tied(check_subwords(
            super().effective_config(flags, config_file)))

    @property
    def unit(self):
        """What the model reads and writes: ``"words"``, or ``"pieces"``
        (``subwords``)."""
        return "pieces" if self.config.get("subwords") else "words"

    @property
    def source_encoder(self):
        return self.preprocessor.source_encoder

    @property
    def target_encoder(self):
        return self.preprocessor.target_encoder

    # -- data ------------------------------------------------------------------

    def read_data(self, spec, role):
        from nlpseq.data.parallel import read_parallel

        data = read_parallel(spec, self.config["source_lang"],
                             self.config["target_lang"],
                             reverse=bool(self.config.get("reverse")))
        if data.skipped:
            LOG.warning("%s: skipped %s pairs with an empty side",
                        data.source, f"{data.skipped:,}")
        return data

    def split_data(self, data, fraction):
        cut = held_out_cut(len(data), fraction, data.source, "pairs")
        order = np.random.default_rng(self.config["seed"]).permutation(
            len(data))
        shuffled = type(data)([data.sources[i] for i in order],
                              [data.targets[i] for i in order], data.source)
        return shuffled.split(cut)

    def describe_data(self, data):
        return f"{len(data):,} sentence pairs"

    def encode(self, data):
        """Inputs ``(source ids, <s> + target ids)``, targets ``target ids +
        </s>``; sentences over ``--max-length`` words are cut."""
        from nlpseq.tasks.encoder import encode_texts

        limit = self.config["max_length"]
        sources = encode_texts(self.source_encoder, data.sources)
        targets = encode_texts(self.target_encoder, data.targets)
        long_sources = sum(len(s) > limit for s in sources)
        long_targets = sum(len(t) > limit for t in targets)
        if long_sources or long_targets:
            LOG.warning("%s: cut %s source and %s target sentences to "
                        "--max-length %d %s", data.source,
                        f"{long_sources:,}", f"{long_targets:,}", limit,
                        self.unit)
        sources = [s[:limit] for s in sources]
        targets = [t[:limit] for t in targets]
        inputs = [(s if len(s) else np.zeros(1, "int32"),
                   np.concatenate([[START_ID], t]).astype("int32"))
                  for s, t in zip(sources, targets)]
        outputs = [np.concatenate([t, [END_ID]]).astype("int32")
                   for t in targets]
        return inputs, outputs

    # -- model -----------------------------------------------------------------

    def build_model(self):
        """The :class:`~nlpseq.models.Translator`; keeps the parts decoding
        runs as attributes."""
        import keras
        from keras import ops

        from nlpseq.layers import Attention, TiedEmbedding
        from nlpseq.models import Translator
        from nlpseq.tasks.encoder import RecurrentEncoder, recurrent_layer

        c = self.config
        source_size = self.source_encoder.vocabulary_size
        target_size = self.target_encoder.vocabulary_size
        recurrent = {"weight_drop": c["weight_drop"]}
        source = keras.Input((None,), dtype="int32", name="source_ids")
        target = keras.Input((None,), dtype="int32", name="target_ids")
        backbone = self.backbone = RecurrentEncoder(
            c, names=lambda index: f"encoder_{index + 1}")
        x = backbone.embed(keras.layers.Embedding(
            source_size, c["embedding_dim"], mask_zero=True,
            name="source_embedding"), source)
        x = self.drop_words(source_size, source, x, "source_word_dropout")
        x = keras.layers.Dropout(c["dropout"], name="source_dropout")(x)
        starts = []

        def between(index, x):
            return keras.layers.Dropout(
                c["dropout"], name=f"encoder_dropout_{index}")(x) if index \
                else x

        def states_of(index, outputs):
            x, *states = outputs
            if c["bidirectional"]:
                half = len(states) // 2
                states = [
                    keras.layers.Concatenate(
                        name=f"encoder_{index + 1}_state_{k + 1}")(
                            [states[k], states[half + k]])
                    for k in range(half)]
            starts.append(states)
            return x

        x = backbone.stack(x, before=between, after=states_of,
                           options=lambda index: {"return_sequences": True,
                                                  "return_state": True,
                                                  **recurrent})
        memory = keras.layers.Identity(name="memory")(x)

        units = decoder_units(c)
        # (tied: also the output layer, with the logits' bias)
        self.target_embedding = (TiedEmbedding if c["tie_embeddings"] else
                                 keras.layers.Embedding)(
            target_size, c["embedding_dim"], mask_zero=True,
            name="target_embedding")
        y = self.target_embedding(target)
        y = self.drop_words(target_size, target, y, "target_word_dropout")
        y = keras.layers.Dropout(c["dropout"], name="target_dropout")(y)
        decoders = []
        for index in range(c["layers"]):
            if index:
                y = keras.layers.Dropout(
                    c["dropout"], name=f"decoder_dropout_{index}")(y)
            decoders.append(recurrent_layer(
                c, index, bidirectional=False, units=units,
                name=f"decoder_{index + 1}", return_sequences=True,
                **recurrent))
            y = decoders[-1](y, initial_state=starts[index])
        self.attention = self.attentional = None
        if c["attention"] != "none":
            self.attention = Attention(c["attention"], name="attention")
            context, _ = self.attention(
                y, memory, memory_mask=ops.not_equal(source, 0))
            self.attentional = keras.layers.Dense(
                c["embedding_dim"] if c["tie_embeddings"] else units,
                activation="tanh", use_bias=False, name="attentional")
            y = self.attentional(keras.layers.Concatenate(
                name="context_and_state")([context, y]))
        y = keras.layers.Dropout(c["dropout"], name="output_dropout")(y)
        # (float32 under mixed precision too)
        self.logits_layer = None if c["tie_embeddings"] else \
            keras.layers.Dense(target_size, name="logits", dtype="float32")
        logits = self.output_logits(y)
        model = Translator([source, target], logits, name="translator")
        model.label_smoothing = c["label_smoothing"]
        self.decoder_cells = [layer.cell for layer in decoders]
        self.encoder_model = keras.Model(
            source, [memory] + [s for states in starts for s in states],
            name="encoder")
        return model

    def drop_words(self, size, ids, embedded, name):
        """``embedded`` through :class:`~nlpseq.layers.EmbeddingDropout`
        (``embedding_dropout``), or as it is."""
        from nlpseq.layers import EmbeddingDropout

        rate = self.config["embedding_dropout"]
        return EmbeddingDropout(size, rate, name=name)([ids, embedded]) \
            if rate else embedded

    def output_logits(self, x):
        """The next word's logits of attentional states ``x`` (the tied
        target embedding's, or the ``logits`` layer's)."""
        if self.logits_layer is None:
            return self.target_embedding(x, reverse=True)
        return self.logits_layer(x)

    def compile_arguments(self):
        return {}  # (the Translator computes its own loss)

    # -- decoding (graph functions used by predict and the SavedModel) ---------

    def encode_source(self, text):
        """``(memory, keys, mask, states)`` of raw source strings."""
        import tensorflow as tf

        ids = self.source_encoder(text)[:, :self.config["max_length"]]
        memory, *states = self.encoder_model(ids, training=False)
        mask = tf.not_equal(ids, 0)
        keys = (self.attention.keys(memory) if self.attention is not None
                else memory)
        return memory, keys, mask, states

    def decoder_inputs(self, text):
        """``(context, mask, states)`` that decoding starts from: the
        tensors every :meth:`decode_step` takes after the states, the
        source mask ``[batch, source]`` and the decoder's initial
        states."""
        memory, keys, mask, states = self.encode_source(text)
        return (memory, keys, mask), mask, states

    def decode_step(self, token, states, memory, keys, mask):
        """One decoder step: ``(log-probabilities [n, vocabulary], new
        states, attention weights [n, source])`` after ``token`` ``[n]``."""
        import tensorflow as tf

        x = tf.gather(self.target_embedding.embeddings, token)
        size = len(self.decoder_cells[0].state_size)
        new_states = []
        for index, cell in enumerate(self.decoder_cells):
            x, layer_states = cell(x, states[index * size:(index + 1) * size])
            new_states += list(layer_states)
        if self.attention is not None:
            context, weights = self.attention.attend(
                x[:, None, :], keys, memory, mask)
            context, weights = context[:, 0], tf.cast(weights[:, 0],
                                                      tf.float32)
            x = self.attentional(tf.concat([context, x], axis=-1))
        else:
            weights = tf.zeros(tf.shape(mask), tf.float32)
        logits = self.output_logits(x)
        # never produced: padding, unknown words, the start token
        banned = tf.constant([i in (PAD_ID, UNK_ID, START_ID) for i in range(
            self.target_encoder.vocabulary_size)])
        logits = tf.where(banned, tf.constant(-1e9, logits.dtype), logits)
        return tf.nn.log_softmax(logits), new_states, weights

    @staticmethod
    def max_steps(mask):
        """Each row's longest translation ``[batch]``: twice its source, and
        ten words more (its own: a translation does not depend on the
        other sentences of its batch)."""
        import tensorflow as tf

        return 2 * tf.reduce_sum(tf.cast(mask, tf.int32), axis=1) + 10

    def greedy(self, text):
        """Graph function: ``(ids [batch, steps], scores [batch], attention
        [batch, steps, source])`` of the greedy translations (the most
        likely word at each step; 0 after the end)."""
        import tensorflow as tf

        from nlpseq.decoding import greedy_search

        context, mask, states = self.decoder_inputs(text)
        return greedy_search(
            self.decode_step, tf.fill([tf.shape(mask)[0]], START_ID),
            states, self.max_steps(mask), context=context,
            end_id=END_ID, pad_id=PAD_ID)

    def beam_search(self, text, beam_width, length_penalty, n_best):
        """Graph function: the ``n_best`` best of ``beam_width`` hypotheses:
        ``(ids [batch, n_best, steps], scores [batch, n_best])``; a score is
        the log-probability divided by the length penalty."""
        import tensorflow as tf

        from nlpseq.decoding import beam_search

        checks = [
            tf.debugging.assert_positive(beam_width, message="beam_width "
                                         "must be at least 1"),
            tf.debugging.assert_non_negative(
                length_penalty, message="length_penalty must be 0 or more"),
            tf.debugging.assert_positive(n_best, message="n_best must be at "
                                         "least 1"),
            tf.debugging.assert_less_equal(
                n_best, beam_width, message="n_best must be at most "
                "beam_width"),
        ]
        with tf.control_dependencies(checks):
            width = tf.identity(beam_width)
        context, mask, states = self.decoder_inputs(text)
        return beam_search(
            self.decode_step, tf.fill([tf.shape(mask)[0]], START_ID),
            states, width, self.max_steps(mask), context=context,
            end_id=END_ID, pad_id=PAD_ID, length_penalty=length_penalty,
            n_best=n_best)

    def detokenize(self, ids):
        """Graph function: target ids ``[..., steps]`` as text ``[...]``: the
        words before the end token, joined, with no space before closing
        punctuation or after opening brackets (with ``subwords``, each
        continuing piece joined to the one before it first)."""
        import tensorflow as tf

        vocabulary = tf.constant(self.target_encoder.vocabulary)
        ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=-1)
        keep = (ended == 0) & (ids > END_ID)
        words = tf.where(keep, tf.gather(vocabulary, ids), "")
        text = tf.strings.reduce_join(words, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, " +", " ")
        if self.config.get("subwords"):
            from nlpseq.subwords import join_pieces

            text = join_pieces(text)
        text = tf.strings.regex_replace(text, r" ([.,!?;:%)\]}])", r"\1")
        text = tf.strings.regex_replace(text, r"([(\[{]) ", r"\1")
        return tf.strings.strip(text)

    def translate(self, text, beam_width, length_penalty, n_best):
        """Graph function: ``(translations [batch, n_best], scores)``; the
        sentences decoded in groups of similar source length
        (:attr:`SERVING_HYPOTHESES` hypotheses each), each group's loop
        ending with its own longest translation
        (:func:`nlpseq.length_groups.in_groups`)."""
        import tensorflow as tf

        from nlpseq.length_groups import in_groups
        from nlpseq.text import blank

        def decode(text):
            def by_beam():
                return self.beam_search(text, beam_width, length_penalty,
                                        n_best)

            def by_greedy():
                ids, score, _ = self.greedy(text)
                return ids[:, None, :], score[:, None]

            ids, scores = tf.cond(tf.equal(beam_width, 1), by_greedy,
                                  by_beam)
            # An empty or whitespace-only input has the empty result, as
            # in predict (empty_record): no translation, a score of 0.
            empty = blank(text)[:, None]
            return (tf.where(empty, "", self.detokenize(ids)),
                    tf.where(empty, tf.zeros_like(scores), scores))

        text = tf.convert_to_tensor(text, tf.string)
        lengths = tf.cast(self.source_encoder.token_ids(text).row_lengths(),
                          tf.int32)
        width = tf.where(tf.equal(beam_width, 1), 1, n_best)
        # (a width below 1 reaches beam_search's check, which names it)
        group = tf.maximum(
            self.SERVING_HYPOTHESES // tf.maximum(beam_width, 1), 1)
        return in_groups(decode, [text], lengths, [[width], [width]],
                         dtype=[tf.string, tf.float32], group=group)

    def graph_functions(self):
        import tensorflow as tf

        text = tf.TensorSpec((None,), tf.string)
        return {
            "translate": (self.translate, [
                text, tf.TensorSpec((), tf.int32),
                tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.int32)]),
            "greedy": (self.greedy, [text]),
        }

    # -- prediction ------------------------------------------------------------

    def check_lines(self, lines):
        """Warnings for sentences the model will cut or cannot read:
        characters absent from the source vocabulary, sentences over
        ``--max-length`` words (or pieces), sentences of unknown words
        only."""
        limit = self.config["max_length"]
        ids = self.source_encoder.token_ids(lines).to_list()
        if self._characters is None:
            self._characters = getattr(
                self.source_encoder, "characters", None) or set(
                "".join(self.source_encoder.vocabulary))
        for line, row_ids in zip(lines, ids):
            unseen = sorted({c for c in line if not c.isspace()}
                            - self._characters)
            if unseen:
                shown = " ".join(repr(c)[1:-1] for c in unseen[:10])
                LOG.warning("%r: characters never seen in training: %s "
                            "(their words are read as unknown)", line[:40],
                            shown)
            if len(row_ids) > limit:
                LOG.warning("%r...: %d %s; only the first %d "
                            "(--max-length) are translated", line[:40],
                            len(row_ids), self.unit, limit)
            elif row_ids and all(i == UNK_ID for i in row_ids):
                LOG.warning("%r: no word of it is known to the model", line)

    def translate_lines(self, lines, beam_width=None, length_penalty=None,
                        n_best=None):
        """``(translations, scores)``: lists of ``n_best`` per line."""
        import tensorflow as tf

        o = self.options
        beam_width = beam_width or o["beam_width"]
        n_best = n_best or o["n_best"]
        if n_best > beam_width:
            raise NlpseqError(f"--n-best {n_best} is more than --beam-width "
                              f"{beam_width}")
        texts, scores = self.graph_function("translate")(
            tf.constant(lines), np.int32(beam_width),
            np.float32(o["length_penalty"] if length_penalty is None
                       else length_penalty),
            np.int32(n_best))
        return ([[t.decode("utf-8") for t in row] for row in texts.numpy()],
                scores.numpy().tolist())

    def predict_lines(self, lines, chunk=64):
        self.check_lines(lines)
        if self.options.get("attention_plot") and not self._plotted:
            self._plotted = True
            self.plot_attention(lines[0], self.options["attention_plot"])
        for start in range(0, len(lines), chunk):
            block = lines[start:start + chunk]
            translations, scores = self.translate_lines(block)
            for line, texts, values in zip(block, translations, scores):
                record = {"text": line, "translation": texts[0],
                          "score": round(float(values[0]), 4)}
                if len(texts) > 1:
                    record["n_best"] = [
                        {"translation": t, "score": round(float(s), 4)}
                        for t, s in zip(texts, values)]
                yield record

    def empty_record(self, text):
        record = {"text": text, "translation": "", "score": None}
        if self.options["n_best"] > 1:
            record["n_best"] = []
        return record

    def format_record(self, record, output_format="text"):
        if "n_best" not in record or not record["n_best"]:
            return record["translation"]
        return "\n".join(f"{n['score']:.4f}\t{n['translation']}"
                         for n in record["n_best"])

    def attention_matrix(self, line):
        """``(source words, target words, weights [target, source])`` of the
        greedy translation of one sentence."""
        import tensorflow as tf

        ids, _, attention = self.graph_function("greedy")(tf.constant([line]))
        ids, attention = ids.numpy()[0], attention.numpy()[0]
        vocabulary = self.target_encoder.vocabulary
        words = []
        for i in ids:
            words.append(END if i == END_ID else vocabulary[i])
            if i == END_ID or i == PAD_ID:
                break
        source = [t.decode("utf-8") for t in self.source_encoder.tokenize(
            [line]).to_list()[0][:self.config["max_length"]]] or [""]
        return source, words, attention[:len(words), :len(source)]

    def plot_attention(self, line, path):
        """Draw the attention of ``line``'s greedy translation into the PNG
        file ``path``."""
        if not str(path).lower().endswith(".png") or Path(path).is_dir():
            raise NlpseqError(f"--attention-plot {path}: expected the name "
                              "of a PNG file to write (ending in .png)")
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise NlpseqError("--attention-plot needs matplotlib: pip install "
                              "'nlpseq[plot]'") from None
        source, target, weights = self.attention_matrix(line)
        figure, axes = plt.subplots(figsize=(1 + 0.5 * len(source),
                                             1 + 0.4 * len(target)))
        axes.imshow(weights, cmap="viridis", aspect="auto")
        axes.set_xticks(range(len(source)), source, rotation=60, ha="right")
        axes.set_yticks(range(len(target)), target)
        axes.set_xlabel("source")
        axes.set_ylabel("translation")
        figure.tight_layout()
        try:
            figure.savefig(path, dpi=100, format="png")
        except OSError as error:
            raise NlpseqError(f"--attention-plot {path}: {error}") from None
        finally:
            plt.close(figure)
        # (not INFO: the command line prints INFO on standard output, where
        # the predictions go)
        LOG.info("Attention of %r drawn in %s", line[:40], path,
                 extra={"stderr": True})

    # -- evaluation ------------------------------------------------------------

    def evaluate_data(self, data, chunk=128):
        """Corpus BLEU and chrF (sacreBLEU, detokenized output against the
        raw references) of beam search (the ``predict`` defaults) and of
        greedy decoding, and the per-word loss of the references."""
        import math

        import sacrebleu

        results = {}
        for name, width in (("beam", self.options["beam_width"]),
                            ("greedy", 1)):
            hypotheses = []
            for start in range(0, len(data), chunk):
                texts, _ = self.translate_lines(
                    data.sources[start:start + chunk], beam_width=width,
                    n_best=1)
                hypotheses += [row[0] for row in texts]
            bleu = sacrebleu.metrics.BLEU()
            chrf = sacrebleu.metrics.CHRF()
            results[name] = {
                "bleu": round(bleu.corpus_score(
                    hypotheses, [data.targets]).score, 2),
                "chrf": round(chrf.corpus_score(
                    hypotheses, [data.targets]).score, 2),
                "bleu_signature": str(bleu.get_signature()),
                "chrf_signature": str(chrf.get_signature()),
            }
            if name == "beam":
                results["examples"] = [
                    {"source": s, "reference": r, "translation": h}
                    for s, r, h in list(zip(data.sources, data.targets,
                                            hypotheses))[:3]]
        loss = self.reference_loss(data)
        beam = results["beam"]
        return {
            "sentences": len(data),
            "bleu": beam["bleu"],
            "chrf": beam["chrf"],
            "beam_width": self.options["beam_width"],
            "length_penalty": self.options["length_penalty"],
            "greedy_bleu": results["greedy"]["bleu"],
            "greedy_chrf": results["greedy"]["chrf"],
            "loss": round(loss, 6),
            "perplexity": round(math.exp(loss), 4),
            "bleu_signature": beam["bleu_signature"],
            "chrf_signature": beam["chrf_signature"],
            "examples": results["examples"],
        }

    def reference_loss(self, data, batch_size=64):
        """Mean cross-entropy (nats) of the reference words and end tokens."""
        from nlpseq.models import masked_cross_entropy
        from nlpseq.training import padded_batches

        inputs, targets = self.encode(data)
        total = count = 0.0
        for x, y in padded_batches(inputs, targets, batch_size,
                                   shuffle=False, pad_targets=True):
            logits = self.model(x, training=False)
            tokens = float(np.sum(y.numpy() > 0))
            total += float(masked_cross_entropy(y, logits)) * tokens
            count += tokens
        return total / max(count, 1.0)

    def format_metrics(self, metrics):
        lines = [
            f"sentences:      {metrics['sentences']:,}",
            f"BLEU:           {metrics['bleu']:.2f}  (beam "
            f"{metrics['beam_width']}, length penalty "
            f"{metrics['length_penalty']})",
            f"chrF:           {metrics['chrf']:.2f}",
            f"greedy BLEU:    {metrics['greedy_bleu']:.2f}",
            f"greedy chrF:    {metrics['greedy_chrf']:.2f}",
            f"perplexity:     {metrics['perplexity']:.2f} (of the "
            "references)",
            f"sacreBLEU:      {metrics['bleu_signature']}",
            f"                {metrics['chrf_signature']}",
        ]
        return "\n".join(lines)

    def headline(self, metrics):
        return (f"validation BLEU {metrics['bleu']:.2f}, chrF "
                f"{metrics['chrf']:.2f}")

    # -- serving ---------------------------------------------------------------

    def serving_layers(self):
        return [self.source_encoder, self.encoder_model]

    def export(self, output=None, version=None, format="savedmodel",
               **limits):
        """The base's; a model of ``subwords`` is a SavedModel only (the
        ONNX export's tokenizers read whole words)."""
        from nlpseq.subwords import refuse_onnx

        refuse_onnx(self.config, format)
        return super().export(output, version, format, **limits)

    def report_sections(self, data, described, metrics, history):
        from nlpseq.report import seq2seq_sections

        return seq2seq_sections(self, data, described, metrics, history)

    def serving_functions(self):
        """``serving_default``: ``text`` -> the best ``translation`` of a
        beam of :data:`EXPORT_BEAM_WIDTH` and its ``score``;
        ``translate``: ``text``, ``beam_width``, ``length_penalty``,
        ``n_best`` -> ``translations`` and ``scores`` ``[batch, n_best]``;
        ``translate_greedy``: ``text`` -> the greedy ``translation`` and
        its ``score``; ``translate_beam``: ``text`` -> the
        :data:`EXPORT_BEAM_WIDTH` best ``translations`` of a beam of as
        many, and their ``scores`` (length penalty
        :data:`EXPORT_LENGTH_PENALTY` throughout). A ``translate`` request
        over the cap of :attr:`limits` is refused before any decoding."""
        import tensorflow as tf

        from nlpseq.exporters import assert_within

        def best(beam_width):
            def translate_text(text):
                texts, scores = self.translate(
                    text, tf.constant(beam_width),
                    tf.constant(EXPORT_LENGTH_PENALTY), tf.constant(1))
                return {"translation": texts[:, 0], "score": scores[:, 0]}
            return translate_text

        def beam(text):
            texts, scores = self.translate(
                text, tf.constant(EXPORT_BEAM_WIDTH),
                tf.constant(EXPORT_LENGTH_PENALTY),
                tf.constant(EXPORT_BEAM_WIDTH))
            shape = [None, EXPORT_BEAM_WIDTH]
            return {"translations": tf.ensure_shape(texts, shape),
                    "scores": tf.ensure_shape(scores, shape)}

        def translate(text, beam_width, length_penalty, n_best):
            with tf.control_dependencies([assert_within(
                    self, "max_beam_width", "beam_width", beam_width)]):
                beam_width = tf.identity(beam_width)  # (decoding waits)
            texts, scores = self.translate(text, beam_width, length_penalty,
                                           n_best)
            return {"translations": texts, "scores": scores}

        text_only = [tf.TensorSpec((None,), tf.string, name="text")]
        return {
            "serving_default": (best(EXPORT_BEAM_WIDTH), text_only),
            "translate": (translate, [
                tf.TensorSpec((None,), tf.string, name="text"),
                tf.TensorSpec((), tf.int32, name="beam_width"),
                tf.TensorSpec((), tf.float32, name="length_penalty"),
                tf.TensorSpec((), tf.int32, name="n_best")]),
            "translate_greedy": (best(1), text_only),
            "translate_beam": (beam, text_only),
        }


__all__ = ["END", "END_ID", "EXPORT_SETTINGS", "MIN_SUBWORDS", "PAD_ID",
           "START", "START_ID", "UNK_ID", "Seq2SeqPreprocessor",
           "Seq2SeqTask"]
