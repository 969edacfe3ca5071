"""The language-model family: the next token of a text, and generation.

The many-to-many (shifted) model over words or characters. The corpus
becomes one stream of token ids (each line's tokens, then an end-of-line
token: ``<eos>`` for words, ``"\\n"`` for characters), cut into windows of
``--sequence-length`` tokens whose targets are the same tokens shifted by
one; the windows are shuffled and each starts from zero states
(backpropagation through at most ``--sequence-length`` steps). The model:
token ids -> embedding -> dropout -> stacked nlpseq recurrent layers (each
followed by dropout) -> logits over the vocabulary, by default with the
embedding matrix reused as the output layer (``--tie-embeddings``).

Prediction, generation and evaluation run a copy of the model that takes
and returns the recurrent states (:meth:`LanguageModelTask.step_model`), so
a prompt is read once and each generated token costs one step. Every
context starts after an end-of-line token, as every line of the corpus
does. Generation is :mod:`nlpseq.decoding` (greedy, sampling, beam search)
over that copy, started from the prompt's last logits. Evaluation reads the
corpus as 32 contiguous parts side by side and carries the states across
each part (the usual way to measure perplexity): every token is predicted
from all the text before it in its part.

Data: a plain-text corpus (``.txt``, plain or ``.gz``) or ``tfds:NAME``.
"""

from __future__ import annotations

import json
import math

import numpy as np

from nlpseq.config import Setting
from nlpseq.data.corpus import read_corpus
from nlpseq.errors import NlpseqError
from nlpseq.tasks.base import LOG, Preprocessor, Task
from nlpseq.tasks.settings import encoder_settings, vocabulary_settings, without

END_OF_LINE = {"word": "<eos>", "char": "\n"}
STRATEGIES = ("greedy", "sample", "beam")
#: How many next tokens the exported ``serving_default`` signature returns.
EXPORT_TOP_K = 10
#: Ids never predicted or generated: padding, and the unknown-token entry.
SPECIAL_IDS = (0, 1)
#: Embeddings start uniform in [-x, x]. Tied to the output layer, small
#: initial embeddings make small logits and a slow start: on the Penn
#: Treebank 0.5 reached a lower validation loss after 300 batches than 0.1
#: or 1.0.
EMBEDDING_INIT = 0.5

#: The language-model family's settings (one-directional: no
#: ``bidirectional``).
SETTINGS = (
    Setting("level", str, "word", "tokens: words (split on whitespace) "
            "or characters", choices=("word", "char")),
    Setting("text_column", str, None, "the text feature of a tfds: "
            "dataset (default: the first)"),
    *without(encoder_settings(
        cell="lstm", layers=2, units=200, embedding_dim=200, dropout=0.3,
        dropout_help="dropout after the embedding and after each recurrent "
        "layer"), "bidirectional"),
    Setting("tie_embeddings", bool, True, "use the embedding matrix as "
            "the output layer too (needs --embedding-dim equal to --units)"),
    Setting("sequence_length", int, 35, "tokens per training window "
            "(steps of backpropagation through time)", minimum=1),
    *vocabulary_settings(vocab_size=20000, min_count=1),
    Setting("lowercase", bool, None, "lower-case the text (default: yes "
            "for words, no for characters)"),
    Setting("split_punctuation", bool, False, "make each punctuation "
            "mark a word of its own (for raw, untokenized text)"),
)

#: The options of :meth:`LanguageModelTask.generate` (the ``generate``
#: command's, checked by it).
GENERATE_SETTINGS = (
    Setting("prompt", str, "", "the text to continue (default: start a new "
            "line)"),
    Setting("length", int, 20, "tokens to generate", minimum=1),
    Setting("strategy", str, "greedy", "how each token is chosen: the most "
            "likely one, a random draw, or the most likely sequence",
            choices=STRATEGIES),
    Setting("temperature", float, 1.0, "divide the logits by X before "
            "sampling (below 1: safer, above 1: more varied)", minimum=0.0,
            exclusive_minimum=True),
    Setting("top_k", int, 0, "sample among the N most likely tokens only "
            "(0: all)", minimum=0),
    Setting("beam_width", int, 4, "sequences kept by beam search",
            minimum=1),
    Setting("seed", int, 0, "random seed of sampling", minimum=0),
)


class LanguageModelPreprocessor(Preprocessor):
    """The token level and the text encoder (vocabulary, standardization).

    Attributes:
        level: ``word`` or ``char``.
        encoder: the :class:`~nlpseq.text.TextEncoder` (id 0 pads, 1 is the
            unknown token; the end-of-line token is in the vocabulary).
    """

    def __init__(self, config, vocabulary, level=None):
        from nlpseq.tasks.encoder import text_encoder

        super().__init__(config)
        self.level = level or config.get("level", "word")
        words = self.level == "word"
        lowercase = config.get("lowercase")
        self.encoder = text_encoder(
            vocabulary, max_length=None,
            lowercase=words if lowercase is None else lowercase,
            strip_html=False,
            split_punctuation=words and bool(config.get("split_punctuation")),
            split="words" if words else "characters")

    @property
    def end_of_line(self):
        return END_OF_LINE[self.level]

    @property
    def end_of_line_id(self):
        return self.encoder.vocabulary.index(self.end_of_line)

    def token_rows(self, lines, chunk=4096):
        """The tokens of each line (lists of ``str``), end-of-line token
        included; the word level skips lines without words."""
        from nlpseq.tasks.encoder import token_rows

        for row in token_rows(self.encoder, lines, chunk):
            if self.level == "word" and not row:
                continue
            yield row + [self.end_of_line]

    @classmethod
    def fit(cls, data, config):
        from nlpseq.text import build_vocabulary

        tokenizer = cls(config, ["", "[UNK]"])
        vocabulary = build_vocabulary(
            tokenizer.token_rows(data.lines), max_size=config["vocab_size"],
            min_count=config["min_count"])
        end = tokenizer.end_of_line
        if end not in vocabulary:  # cut by --vocab-size
            vocabulary = vocabulary[:max(2, len(vocabulary) - 1)] + [end]
        return cls(config, vocabulary)

    def get_config(self):
        return {"level": self.level,
                "vocabulary": self.encoder.vocabulary[2:]}

    @classmethod
    def from_config(cls, state, config):
        level = state["level"]
        vocabulary = cls.require(state["vocabulary"], "vocabulary")
        if not set(vocabulary) - {END_OF_LINE[level]}:
            raise ValueError("empty vocabulary (only the end of line)")
        if END_OF_LINE[level] not in vocabulary:
            raise ValueError(f"not a vocabulary with {END_OF_LINE[level]!r}")
        return cls(config, ["", "[UNK]"] + vocabulary, level)


class LanguageModelTask(Task):
    """A word- or character-level language model: next tokens, generation,
    perplexity."""

    family = "language_model"
    settings = SETTINGS
    preprocessor_class = LanguageModelPreprocessor
    predict_settings = (
        Setting("top_k", int, 5, "how many next tokens to list", minimum=1),
    )
    #: The options of :meth:`generate` (and of the ``generate`` command).
    generate_settings = GENERATE_SETTINGS
    data_help = ("a plain-text corpus (.txt, one line per line of text) or "
                 "tfds:NAME[:SPLIT]")
    data_example = "corpus.txt"

    def __init__(self, config, preprocessor=None):
        super().__init__(config, preprocessor)
        #: The model's parts, set by :meth:`build_model`: the embedding,
        #: the recurrent layers, the output layer (``None`` when tied).
        self.embedding = None
        self.recurrent_layers = []
        self.output_layer = None
        self._step_model = None
        self._copies = []

    # -- data ------------------------------------------------------------------

    @property
    def encoder(self):
        return self.preprocessor.encoder

    @property
    def level(self):
        if self.preprocessor is not None:
            return self.preprocessor.level
        return self.config.get("level", "word")

    @property
    def end_of_line(self):
        return END_OF_LINE[self.level]

    @property
    def end_of_line_id(self):
        return self.preprocessor.end_of_line_id

    def read_data(self, spec, role):
        return read_corpus(spec, text_column=self.config.get("text_column"))

    def split_data(self, data, fraction):
        head, tail = data.split(fraction)
        if not any(line.strip() for line in head.lines) or not any(
                line.strip() for line in tail.lines):
            raise NlpseqError(
                f"{data.source}: {len(data.lines)} lines are too few to hold "
                f"out --valid-split {fraction} for validation; give --valid")
        return head, tail

    def describe_data(self, data):
        return f"{len(data.lines):,} lines, {data.characters:,} characters"

    def stream(self, corpus, chunk=4096):
        """The corpus as one array of token ids (end-of-line tokens
        included)."""
        import tensorflow as tf

        parts, eol = [], self.end_of_line_id
        lines = corpus.lines
        for start in range(0, len(lines), chunk):
            ids = self.encoder.token_ids(lines[start:start + chunk])
            if self.level == "word":
                ids = tf.ragged.boolean_mask(ids, ids.row_lengths() > 0)
            ends = tf.fill([ids.nrows(), 1], tf.constant(eol, tf.int32))
            ids = tf.concat([ids, tf.RaggedTensor.from_tensor(ends)], axis=1)
            parts.append(ids.flat_values.numpy())
        return np.concatenate(parts).astype("int32") if parts else \
            np.zeros((0,), "int32")

    def encode(self, data):
        """Windows of ``sequence_length`` ids and the same shifted by one."""
        length = self.config["sequence_length"]
        ids = self.stream(data)
        count = (len(ids) - 1) // length
        if count < 1:
            raise NlpseqError(
                f"{data.source}: {len(ids)} tokens are fewer than one "
                f"training window (--sequence-length {length} + 1)")
        x = ids[:count * length].reshape(count, length)
        y = ids[1:count * length + 1].reshape(count, length)
        return x, y

    # -- model -----------------------------------------------------------------

    def build_model(self, layer_class=None):
        """The training model: ids ``[batch, time]`` -> logits ``[batch, time,
        vocabulary]``. ``layer_class`` replaces the configured cell's layer
        (the benchmark's reference uses Keras' own)."""
        import keras

        from nlpseq.layers import TiedEmbedding
        from nlpseq.tasks.encoder import recurrent_layer

        c = self.config
        if c["tie_embeddings"] and c["embedding_dim"] != c["units"]:
            raise NlpseqError(
                f"--tie-embeddings needs --embedding-dim equal to --units "
                f"(got {c['embedding_dim']} and {c['units']}); or give "
                "--no-tie-embeddings")
        vocabulary = self.encoder.vocabulary_size
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        # (the output bias belongs to the tied output layer only)
        self.embedding = TiedEmbedding(
            vocabulary, c["embedding_dim"], use_bias=c["tie_embeddings"],
            embeddings_initializer=keras.initializers.RandomUniform(
                -EMBEDDING_INIT, EMBEDDING_INIT), name="embedding")
        x = self.embedding(ids)
        x = keras.layers.Dropout(c["dropout"], name="embedding_dropout")(x)
        self.recurrent_layers = []
        for index in range(c["layers"]):
            layer = recurrent_layer(c, index, bidirectional=False,
                                    layer_class=layer_class,
                                    return_sequences=True)
            self.recurrent_layers.append(layer)
            x = layer(x)
            x = keras.layers.Dropout(c["dropout"],
                                     name=f"dropout_{index + 1}")(x)
        if c["tie_embeddings"]:
            self.output_layer = None
            logits = self.embedding(x, reverse=True)
        else:
            self.output_layer = keras.layers.Dense(vocabulary, name="logits")
            logits = self.output_layer(x)
        self._step_model, self._copies = None, []
        return keras.Model(ids, logits, name="next_word")

    def compile_arguments(self):
        import keras

        return {"loss": keras.losses.SparseCategoricalCrossentropy(
            from_logits=True)}

    def step_model(self):
        """A copy of the model that carries the recurrent states: ``[ids,
        *states]`` in, ``[logits, *states]`` out (zeros for a fresh start).
        Padding (id 0) is masked: a padded step keeps the states. Called
        eagerly, it copies the model's current weights into the copy."""
        import tensorflow as tf

        if self._step_model is not None:
            if tf.executing_eagerly():
                self._copy_weights()
            return self._step_model
        import keras

        ids = keras.Input((None,), dtype="int32", name="token_ids")
        source = self.embedding
        embedding = type(source).from_config(
            dict(source.get_config(), mask_zero=True))
        x = embedding(ids)
        states_in, states_out, copies = [], [], [(source, embedding)]
        for index, source in enumerate(self.recurrent_layers):
            layer = type(source).from_config(dict(
                source.get_config(), return_sequences=True, return_state=True))
            states = [keras.Input((size,), name=f"state_{index + 1}_{k}")
                      for k, size in enumerate(source.state_size)]
            x, *new_states = layer(x, initial_state=states)
            states_in += states
            states_out += new_states
            copies.append((source, layer))
        if self.output_layer is None:
            logits = embedding(x, reverse=True)
        else:
            source = self.output_layer
            dense = type(source).from_config(source.get_config())
            logits = dense(x)
            copies.append((source, dense))
        model = keras.Model([ids] + states_in, [logits] + states_out,
                            name="next_word_steps")
        self._step_model, self._copies = model, copies
        self._copy_weights()
        return model

    def _copy_weights(self):
        for source, copy in self._copies:
            for mine, theirs in zip(copy.weights, source.weights):
                mine.assign(theirs)

    def zero_states(self, batch):
        """The step model's initial states for ``batch`` rows."""
        import tensorflow as tf

        return [tf.zeros((batch, int(s.shape[-1])))
                for s in self.step_model().inputs[1:]]

    # -- graph functions (the Python API and the SavedModel alike) ------------

    def prompt_logits(self, text):
        """Graph function: the logits of the token after each prompt, and
        the states after it. Each prompt is read after an end-of-line token,
        so an empty prompt asks for the first token of a line."""
        import tensorflow as tf

        ids = self.encoder(text)
        batch = tf.shape(ids)[0]
        start = tf.fill([batch, 1], tf.constant(self.end_of_line_id,
                                                tf.int32))
        ids = tf.concat([start, ids], axis=1)
        lengths = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
        logits, *states = self.step_model()(
            [ids] + self.zero_states(batch), training=False)
        last = tf.gather(logits, lengths - 1, batch_dims=1)
        return last, states

    def allowed(self, logits):
        """Logits with padding and unknown entries ruled out."""
        from nlpseq.decoding import ban

        return ban(logits, SPECIAL_IDS)

    def step_logits(self, tokens, states):
        """The step function of :mod:`nlpseq.decoding` that sampling uses:
        ``(logits [n, vocabulary], states, None)`` after ``tokens`` ``[n]``.
        """
        import tensorflow as tf

        logits, *states = self.step_model()(
            [tf.expand_dims(tokens, 1)] + list(states), training=False)
        return logits[:, 0], states, None

    def step_log_probs(self, tokens, states):
        """The step function beam search uses: log-probabilities with the
        special entries ruled out."""
        import tensorflow as tf

        logits, states, _ = self.step_logits(tokens, states)
        return tf.nn.log_softmax(self.allowed(logits)), states, None

    def next_tokens(self, text, k):
        """Graph function: the ``k`` most likely next tokens of each text and
        their probabilities."""
        import tensorflow as tf

        logits, _ = self.prompt_logits(text)
        probabilities = tf.nn.softmax(self.allowed(logits))
        top = tf.math.top_k(probabilities, k=tf.minimum(
            k, self.encoder.vocabulary_size - len(SPECIAL_IDS)))
        words = tf.gather(tf.constant(self.encoder.vocabulary), top.indices)
        return words, top.values

    def generate_ids(self, text, length, strategy, temperature, top_k,
                     beam_width, seed):
        """Graph function: ``[batch, length]`` token ids continuing each
        text. ``strategy``: ``greedy`` (the most likely token at each step),
        ``sample`` (a draw from the distribution divided by
        ``temperature``, among the ``top_k`` most likely if ``top_k`` > 0;
        reproducible with ``seed``) or ``beam`` (the most likely
        continuation among ``beam_width`` kept at each step)."""
        import tensorflow as tf

        from nlpseq import decoding

        checks = [
            tf.debugging.assert_positive(length, message="length must be "
                                         "at least 1"),
            tf.debugging.assert_positive(temperature, message="temperature "
                                         "must be above 0"),
            tf.debugging.assert_positive(beam_width, message="beam_width "
                                         "must be at least 1"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be "
                                             "0 or more"),
            tf.debugging.Assert(
                tf.reduce_any(tf.equal(strategy, STRATEGIES)),
                ["strategy must be one of greedy, sample, beam, got",
                 strategy]),
        ]
        with tf.control_dependencies(checks):
            logits, states = self.prompt_logits(text)
            length = tf.identity(length)  # (the loops wait for the checks)

        def by_beam():
            width = tf.minimum(beam_width, self.encoder.vocabulary_size
                               - len(SPECIAL_IDS))
            first = (tf.nn.log_softmax(self.allowed(logits)), None)
            ids, _ = decoding.beam_search(self.step_log_probs, None, states,
                                          width, length, first=first)
            return ids[:, 0]  # the best

        def by_sampling():
            return decoding.sample(
                self.step_logits, None, states, length, temperature, top_k,
                seed, greedy=tf.equal(strategy, "greedy"),
                banned_ids=SPECIAL_IDS, first=(logits, None))

        return tf.cond(tf.equal(strategy, "beam"), by_beam, by_sampling)

    def join_tokens(self, tokens):
        """Graph function: token strings ``[batch, n]`` as text ``[batch]``
        (end-of-line tokens become line breaks)."""
        import tensorflow as tf

        if self.level == "char":
            return tf.strings.reduce_join(tokens, axis=-1)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, r" ?<eos> ?", "\n")

    def graph_functions(self):
        import tensorflow as tf

        scalar = tf.TensorSpec
        return {
            "next": (self.next_tokens, [tf.TensorSpec((None,), tf.string),
                                        scalar((), tf.int32)]),
            "generate": (self.generate_ids, [
                tf.TensorSpec((None,), tf.string),
                scalar((), tf.int32), scalar((), tf.string),
                scalar((), tf.float32), scalar((), tf.int32),
                scalar((), tf.int32), scalar((), tf.int32)]),
        }

    def graph_function(self, name):
        self.step_model()  # (built eagerly: it copies weights)
        return super().graph_function(name)

    # -- prediction and generation -------------------------------------------

    def unknown_tokens(self, lines):
        """For each line, its tokens and those the vocabulary lacks."""
        tokens = self.encoder.tokenize(lines).to_list()
        ids = self.encoder.token_ids(lines).to_list()
        return [(row, [t.decode("utf-8") for t, i in zip(row, row_ids)
                       if i == 1]) for row, row_ids in zip(tokens, ids)]

    def predict_lines(self, lines):
        k = self.options["top_k"]
        words, probabilities = self.graph_function("next")(
            np.array(lines, dtype=object), np.int32(k))
        for line, row, values, (tokens, unknown) in zip(
                lines, words.numpy(), probabilities.numpy(),
                self.unknown_tokens(lines)):
            if unknown and len(unknown) == len(tokens):
                LOG.warning("every token of %r is unknown to the model; "
                            "predicting after the unknown token", line)
            yield {
                "text": line,
                "next": [{"token": w.decode("utf-8"),
                          "probability": round(float(p), 6)}
                         for w, p in zip(row, values)],
                "unknown": unknown,
            }

    def format_record(self, record, output_format="text"):
        shown = "  ".join(f"{json.dumps(n['token'])[1:-1]} "
                          f"{n['probability']:.4f}" for n in record["next"])
        return f"{record['text']}\t{shown}"

    def generate(self, prompt="", length=20, strategy="greedy",
                 temperature=1.0, top_k=0, beam_width=4, seed=0):
        """The continuation of ``prompt`` (text), and its tokens (see
        :data:`GENERATE_SETTINGS` and :meth:`generate_ids`)."""
        import tensorflow as tf

        ids = self.graph_function("generate")(
            tf.constant([prompt]), np.int32(length), tf.constant(strategy),
            np.float32(temperature), np.int32(top_k), np.int32(beam_width),
            np.int32(seed))
        tokens = tf.gather(tf.constant(self.encoder.vocabulary), ids)
        text = self.join_tokens(tokens).numpy()[0].decode("utf-8")
        return text, [t.decode("utf-8") for t in tokens.numpy()[0]]

    # -- evaluation ------------------------------------------------------------

    def evaluate_data(self, data, rows=32, window=64):
        """Loss (nats per token), perplexity and next-token accuracy, with
        the states carried across the whole corpus: ``rows`` contiguous
        parts of it are read side by side, ``window`` tokens at a time."""
        import tensorflow as tf

        ids = self.stream(data)
        targets = ids
        inputs = np.concatenate([[self.end_of_line_id], ids[:-1]])
        rows = max(1, min(rows, len(ids) // window))
        width = math.ceil(len(ids) / rows)
        padded = np.zeros((2, rows * width), "int32")
        padded[0, :len(ids)], padded[1, :len(ids)] = inputs, targets
        x, y = (padded[0].reshape(rows, width), padded[1].reshape(rows, width))

        model = self.step_model()

        @tf.function(autograph=False, reduce_retracing=True)
        def window_sums(x, y, states):
            logits, *states = model([x] + list(states), training=False)
            weights = tf.cast(y > 0, tf.float32)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            flat_logits = tf.reshape(logits, [-1, tf.shape(logits)[-1]])
            flat_y = tf.reshape(y, [-1])
            flat_w = tf.reshape(weights, [-1])
            top1 = tf.cast(tf.math.in_top_k(flat_y, flat_logits, 1),
                           tf.float32)
            top5 = tf.cast(tf.math.in_top_k(flat_y, flat_logits, 5),
                           tf.float32)
            return (tf.reduce_sum(loss * weights),
                    tf.reduce_sum(top1 * flat_w),
                    tf.reduce_sum(top5 * flat_w), states)

        states = self.zero_states(rows)
        loss = top1 = top5 = 0.0
        for start in range(0, width, window):
            sums = window_sums(x[:, start:start + window],
                               y[:, start:start + window], states)
            loss += float(sums[0])
            top1 += float(sums[1])
            top5 += float(sums[2])
            states = sums[3]
        count = len(ids)
        mean = loss / count
        metrics = {
            "tokens": int(count),
            "unknown_tokens": int(np.sum(ids == 1)),
            "loss": round(mean, 6),
            "perplexity": round(math.exp(mean), 4),
            "top1_accuracy": round(top1 / count, 6),
            "top5_accuracy": round(top5 / count, 6),
        }
        if self.level == "char":
            metrics["bits_per_character"] = round(mean / math.log(2), 6)
        return metrics

    def format_metrics(self, metrics):
        unit = "character" if self.level == "char" else "token"
        lines = [
            f"tokens:           {metrics['tokens']:,} "
            f"({metrics['unknown_tokens']:,} unknown)",
            f"loss:             {metrics['loss']:.4f} nats per {unit}",
            f"perplexity:       {metrics['perplexity']:.2f}",
        ]
        if "bits_per_character" in metrics:
            lines.append(f"bits per char:    "
                         f"{metrics['bits_per_character']:.4f}")
        lines += [f"top-1 accuracy:   {metrics['top1_accuracy']:.4f}",
                  f"top-5 accuracy:   {metrics['top5_accuracy']:.4f}"]
        return "\n".join(lines)

    def headline(self, metrics):
        if self.level == "char":
            return (f"validation loss {metrics['loss']:.4f} nats per "
                    f"character, {metrics['bits_per_character']:.3f} bits")
        return f"validation perplexity {metrics['perplexity']:.2f}"

    # -- serving ---------------------------------------------------------------

    def serving_layers(self):
        return [self.encoder, self.step_model()]

    def serving_functions(self):
        import tensorflow as tf

        def next_tokens(text):
            words, probabilities = self.next_tokens(text, EXPORT_TOP_K)
            return {"tokens": words, "probabilities": probabilities}

        def generate(text, length, strategy, temperature, top_k, beam_width,
                     seed):
            ids = self.generate_ids(text, length, strategy, temperature,
                                    top_k, beam_width, seed)
            tokens = tf.gather(tf.constant(self.encoder.vocabulary), ids)
            return {"text": self.join_tokens(tokens), "tokens": tokens}

        scalar = tf.TensorSpec
        return {
            "serving_default": (next_tokens, [
                tf.TensorSpec((None,), tf.string, name="text")]),
            "generate": (generate, [
                tf.TensorSpec((None,), tf.string, name="text"),
                scalar((), tf.int32, name="length"),
                scalar((), tf.string, name="strategy"),
                scalar((), tf.float32, name="temperature"),
                scalar((), tf.int32, name="top_k"),
                scalar((), tf.int32, name="beam_width"),
                scalar((), tf.int32, name="seed")]),
        }

    # -- command line ----------------------------------------------------------

    @classmethod
    def add_commands(cls, group):
        """``nlpseq <app> generate`` (:mod:`nlpseq.cli.generate`)."""
        from nlpseq.cli.generate import generate_command

        group.add_command(generate_command(cls))


__all__ = ["GENERATE_SETTINGS", "LanguageModelPreprocessor",
           "LanguageModelTask", "SETTINGS"]
