"""Translation: an encoder-decoder with attention.

The encoder-decoder pipeline (input and output lengths differ). Sentences
are split into words and punctuation marks, case kept. The source words go
through an embedding and stacked nlpseq recurrent layers (bidirectional by
default: each direction has half of ``--units``, and the two directions'
final states, side by side, start the decoder's layer of the same depth).
The decoder is a stack of nlpseq recurrent layers over the target words
read so far (teacher forcing in training); at each step its state ``h_t``
queries the encoder's outputs (:class:`~nlpseq.layers.Attention`, Luong's
multiplicative or Bahdanau's additive score), and the attentional state
``tanh(W_c [c_t; h_t])`` gives the next word's logits (Luong et al.'s global
attention). The loss is the cross-entropy of the target words, with label
smoothing.

Decoding runs one step function (:meth:`TranslationPipeline.decode_step`)
in a ``tf.while_loop``: greedy (the most likely word at each step) or beam
search (``--beam-width`` hypotheses, ranked by log-probability divided by
the length penalty ``((5 + length) / 6) ** alpha``). The exported SavedModel
holds the tokenizer, the encoder, the loop and the detokenizer: raw source
strings in, translations out.

Example:
    $ nlpseq translation train                    # the built-in sample
    $ nlpseq translation predict "Ein alter Arbeiter singt ein Lied am Strand."
    An old worker is singing a song on the beach.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from nlpseq.config import Setting
from nlpseq.errors import NlpseqError
from nlpseq.pipeline import Pipeline
from nlpseq.registry import CELLS

SOURCE_VOCABULARY = "source_vocabulary.json"
TARGET_VOCABULARY = "target_vocabulary.json"
START, END = "<s>", "</s>"
#: Ids of the target vocabulary: padding, unknown, start, end.
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
ATTENTION = ("luong", "bahdanau", "none")
#: What the exported ``serving_default`` signature uses.
EXPORT_BEAM_WIDTH = 5


class TranslationPipeline(Pipeline):
    """Translation: an encoder-decoder with attention (sentence to sentence)."""

    name = "translation"
    default_data = Path(__file__).parent / "data" / "translation_sample.tsv"
    artifact_files = (SOURCE_VOCABULARY, TARGET_VOCABULARY)
    settings = (
        Setting("source_lang", str, "de", "source language: the {lang} of "
                "a FILE.{lang} pattern, the feature of a tfds: dataset"),
        Setting("target_lang", str, "en", "target language (as "
                "--source-lang)"),
        Setting("reverse", bool, False, "read TSV pairs and SOURCE,TARGET "
                "files the other way round (target first)"),
        Setting("cell", str, "lstm", "recurrent cell",
                choices=tuple(CELLS.names())),
        Setting("layers", int, 1, "recurrent layers of the encoder and of "
                "the decoder", minimum=1),
        Setting("units", int, 256, "units of each recurrent layer (a "
                "bidirectional encoder layer gives half to each direction)",
                minimum=1),
        Setting("embedding_dim", int, 256, "size of the word embeddings",
                minimum=1),
        Setting("attention", str, "luong", "attention score: luong "
                "(multiplicative), bahdanau (additive) or none",
                choices=ATTENTION),
        Setting("bidirectional_encoder", bool, True, "read the source in "
                "both directions"),
        Setting("dropout", float, 0.3, "dropout on embeddings, between "
                "layers and on the attentional state", minimum=0.0,
                maximum=0.95),
        Setting("label_smoothing", float, 0.1, "weight of the uniform "
                "distribution mixed into the training targets", minimum=0.0,
                maximum=0.9),
        Setting("vocab_size", int, 10000, "largest vocabulary of each "
                "language (with the special entries)", minimum=5),
        Setting("min_count", int, 1, "leave out words seen fewer times in "
                "the training data", minimum=1),
        Setting("max_length", int, 50, "words per sentence; longer ones are "
                "cut (with a warning)", minimum=1),
    )
    predict_settings = (
        Setting("beam_width", int, 5, "hypotheses kept by beam search (1: "
                "greedy)", minimum=1),
        Setting("length_penalty", float, 1.0, "alpha of the length penalty "
                "((5 + length) / 6) ** alpha (0: none; higher favours longer "
                "translations)", minimum=0.0),
        Setting("n_best", int, 1, "translations per sentence (at most "
                "--beam-width)", minimum=1),
        Setting("attention_plot", str, None, "draw the attention of the "
                "first sentence into this PNG file (needs matplotlib)"),
    )
    common_defaults = {"epochs": 20, "batch_size": 64, "patience": 3}
    output_formats = ("text", "json", "jsonl", "csv")

    def __init__(self, config):
        super().__init__(config)
        if config.get("bidirectional_encoder", True) and config.get(
                "units", 2) % 2:
            raise NlpseqError(
                f"--units {config['units']}: a bidirectional encoder splits "
                "the units between its two directions; give an even number")
        self.source_encoder = None
        self.target_encoder = None
        self._functions = {}
        self._parts = None
        self._characters = None

    # -- data ------------------------------------------------------------------

    def read_data(self, spec, role):
        from nlpseq.data.parallel import read_parallel

        data = read_parallel(spec, self.config["source_lang"],
                             self.config["target_lang"],
                             reverse=bool(self.config.get("reverse")))
        if data.skipped:
            click.echo(f"warning: {data.source}: skipped {data.skipped:,} "
                       "pairs with an empty side", err=True)
        return data

    def split_data(self, data, fraction):
        cut = self.held_out_cut(len(data), fraction, data.source, "pairs")
        order = np.random.default_rng(self.config["seed"]).permutation(
            len(data))
        shuffled = type(data)([data.sources[i] for i in order],
                              [data.targets[i] for i in order], data.source)
        return shuffled.split(cut)

    def describe_data(self, data):
        return f"{len(data):,} sentence pairs"

    def _make_encoders(self, source_vocabulary, target_vocabulary):
        from nlpseq.text import TextEncoder

        # (both keep every word: sentences are cut to --max-length where
        # their ids are used, after counting the long ones)
        options = dict(max_length=None, lowercase=False, strip_html=False,
                       split_punctuation=True)
        self.source_encoder = TextEncoder(
            source_vocabulary, name="source_encoder", **options)
        self.target_encoder = TextEncoder(
            target_vocabulary, name="target_encoder", **options)

    def _tokens(self, encoder, lines, chunk=4096):
        for start in range(0, len(lines), chunk):
            for row in encoder.tokenize(lines[start:start + chunk]).to_list():
                yield [t.decode("utf-8") for t in row]

    def prepare(self, train):
        from nlpseq.text import PADDING, UNKNOWN, build_vocabulary

        self._make_encoders([PADDING, UNKNOWN], [PADDING, UNKNOWN])
        size, count = self.config["vocab_size"], self.config["min_count"]
        source = build_vocabulary(self._tokens(self.source_encoder,
                                               train.sources),
                                  max_size=size, min_count=count)
        target = build_vocabulary(self._tokens(self.target_encoder,
                                               train.targets),
                                  max_size=size - 2, min_count=count)
        target = target[:2] + [START, END] + [
            w for w in target[2:] if w not in (START, END)]
        self._make_encoders(source, target)

    def folder_entries(self):
        return {"source_vocabulary_size": self.source_encoder.vocabulary_size,
                "target_vocabulary_size": self.target_encoder.vocabulary_size}

    def save_artifacts(self, path):
        from nlpseq.text import save_vocabulary

        save_vocabulary(Path(path) / SOURCE_VOCABULARY,
                        self.source_encoder.vocabulary)
        save_vocabulary(Path(path) / TARGET_VOCABULARY,
                        self.target_encoder.vocabulary)

    def load_artifacts(self, path, entries):
        from nlpseq.text import load_vocabulary

        vocabularies = [load_vocabulary(Path(path) / name)
                        for name in (SOURCE_VOCABULARY, TARGET_VOCABULARY)]
        if vocabularies[1][START_ID:END_ID + 1] != [START, END]:
            raise NlpseqError(f"{Path(path) / TARGET_VOCABULARY}: corrupted "
                              f"(does not start with {START} and {END})")
        self._make_encoders(*vocabularies)

    def _ids(self, encoder, lines, chunk=4096):
        out = []
        for start in range(0, len(lines), chunk):
            out += [np.asarray(row, "int32") for row in encoder.token_ids(
                lines[start:start + chunk]).to_list()]
        return out

    def encode(self, data):
        """Inputs ``(source ids, <s> + target ids)``, targets ``target ids +
        </s>``; sentences over ``--max-length`` words are cut."""
        limit = self.config["max_length"]
        sources = self._ids(self.source_encoder, data.sources)
        targets = self._ids(self.target_encoder, data.targets)
        long_sources = sum(len(s) > limit for s in sources)
        long_targets = sum(len(t) > limit for t in targets)
        if long_sources or long_targets:
            click.echo(
                f"warning: {data.source}: cut {long_sources:,} source and "
                f"{long_targets:,} target sentences to --max-length {limit} "
                "words", err=True)
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
        import keras
        from keras import ops

        from nlpseq.layers import Attention, Bidirectional
        from nlpseq.models import Translator

        c = self.config
        layer_class = CELLS.get(c["cell"])
        bidirectional = c["bidirectional_encoder"]
        source = keras.Input((None,), dtype="int32", name="source_ids")
        target = keras.Input((None,), dtype="int32", name="target_ids")
        x = keras.layers.Embedding(
            self.source_encoder.vocabulary_size, c["embedding_dim"],
            mask_zero=True, name="source_embedding")(source)
        x = keras.layers.Dropout(c["dropout"], name="source_dropout")(x)
        starts = []
        for index in range(c["layers"]):
            if index:
                x = keras.layers.Dropout(
                    c["dropout"], name=f"encoder_dropout_{index}")(x)
            if bidirectional:
                layer = Bidirectional(
                    layer_class(c["units"] // 2, return_sequences=True,
                                return_state=True),
                    name=f"encoder_{index + 1}")
                x, *states = layer(x)
                half = len(states) // 2
                states = [
                    keras.layers.Concatenate(
                        name=f"encoder_{index + 1}_state_{k + 1}")(
                            [states[k], states[half + k]])
                    for k in range(half)]
            else:
                x, *states = layer_class(
                    c["units"], return_sequences=True, return_state=True,
                    name=f"encoder_{index + 1}")(x)
            starts.append(states)
        memory = keras.layers.Identity(name="memory")(x)

        y = keras.layers.Embedding(
            self.target_encoder.vocabulary_size, c["embedding_dim"],
            mask_zero=True, name="target_embedding")(target)
        y = keras.layers.Dropout(c["dropout"], name="target_dropout")(y)
        for index in range(c["layers"]):
            if index:
                y = keras.layers.Dropout(
                    c["dropout"], name=f"decoder_dropout_{index}")(y)
            y = layer_class(c["units"], return_sequences=True,
                            name=f"decoder_{index + 1}")(
                                y, initial_state=starts[index])
        if c["attention"] != "none":
            context, _ = Attention(c["attention"], name="attention")(
                y, memory, memory_mask=ops.not_equal(source, 0))
            y = keras.layers.Dense(
                c["units"], activation="tanh", use_bias=False,
                name="attentional")(
                    keras.layers.Concatenate(name="context_and_state")(
                        [context, y]))
        y = keras.layers.Dropout(c["dropout"], name="output_dropout")(y)
        logits = keras.layers.Dense(self.target_encoder.vocabulary_size,
                                    name="logits")(y)
        model = Translator([source, target], logits, name="translator")
        model.label_smoothing = c["label_smoothing"]
        return model

    def compile_arguments(self):
        return {}  # (the Translator computes its own loss)

    # -- decoding (graph functions used by the CLI and the SavedModel) -------

    def parts(self):
        """The trained model's pieces that decoding runs: the encoder as a
        model (source ids -> memory and the decoder's initial states) and
        the decoder's layers, called one step at a time."""
        if self._parts is None:
            import keras

            c, model = self.config, self.model
            states = []
            for index in range(c["layers"]):
                layer = model.get_layer(f"encoder_{index + 1}")
                if c["bidirectional_encoder"]:
                    names = [f"encoder_{index + 1}_state_{k + 1}"
                             for k in range(len(layer.forward_layer
                                                .state_size))]
                    states += [model.get_layer(n).output for n in names]
                else:
                    states += list(layer.output[1:])
            encoder = keras.Model(
                model.inputs[0], [model.get_layer("memory").output] + states,
                name="encoder")
            self._parts = {
                "encoder": encoder,
                "embedding": model.get_layer("target_embedding"),
                "cells": [model.get_layer(f"decoder_{i + 1}").cell
                          for i in range(c["layers"])],
                "attention": (model.get_layer("attention")
                              if c["attention"] != "none" else None),
                "attentional": (model.get_layer("attentional")
                                if c["attention"] != "none" else None),
                "logits": model.get_layer("logits"),
            }
        return self._parts

    def encode_source(self, text):
        """``(memory, keys, mask, states)`` of raw source strings."""
        import tensorflow as tf

        parts = self.parts()
        ids = self.source_encoder(text)[:, :self.config["max_length"]]
        memory, *states = parts["encoder"](ids, training=False)
        mask = tf.not_equal(ids, 0)
        keys = (parts["attention"].keys(memory) if parts["attention"]
                else memory)
        return memory, keys, mask, states

    def decode_step(self, token, states, memory, keys, mask):
        """One decoder step: ``(log-probabilities [n, vocabulary], new
        states, attention weights [n, source])`` after ``token`` ``[n]``."""
        import tensorflow as tf

        parts = self.parts()
        x = tf.gather(parts["embedding"].embeddings, token)
        size = len(parts["cells"][0].state_size)
        new_states = []
        for index, cell in enumerate(parts["cells"]):
            x, layer_states = cell(x, states[index * size:(index + 1) * size])
            new_states += list(layer_states)
        if parts["attention"] is not None:
            context, weights = parts["attention"].attend(
                x[:, None, :], keys, memory, mask)
            context, weights = context[:, 0], weights[:, 0]
            x = parts["attentional"](tf.concat([context, x], axis=-1))
        else:
            weights = tf.zeros(tf.shape(mask), x.dtype)
        logits = parts["logits"](x)
        # never produced: padding, unknown words, the start token
        banned = tf.constant([i in (PAD_ID, UNK_ID, START_ID) for i in range(
            self.target_encoder.vocabulary_size)])
        logits = tf.where(banned, tf.constant(-1e9, logits.dtype), logits)
        return tf.nn.log_softmax(logits), new_states, weights

    @staticmethod
    def max_steps(mask):
        """The longest translation of a batch: twice its longest source, and
        ten words more."""
        import tensorflow as tf

        return 2 * tf.shape(mask)[1] + 10

    def greedy(self, text):
        """Graph function: ``(ids [batch, steps], scores [batch], attention
        [batch, steps, source])`` of the greedy translations (the most
        likely word at each step; 0 after the end)."""
        import tensorflow as tf

        memory, keys, mask, states = self.encode_source(text)
        batch = tf.shape(memory)[0]
        steps = self.max_steps(mask)

        def body(t, token, states, done, score, ids, attention):
            log_probs, states, weights = self.decode_step(
                token, states, memory, keys, mask)
            token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
            picked = tf.gather(log_probs, token, batch_dims=1)
            token = tf.where(done, PAD_ID, token)
            score = score + tf.where(done, 0.0, picked)
            ids = ids.write(t, token)
            attention = attention.write(t, weights)
            return (t + 1, token, states, done | tf.equal(token, END_ID),
                    score, ids, attention)

        _, _, _, _, score, ids, attention = tf.while_loop(
            lambda t, token, states, done, *_: (t < steps) & ~tf.reduce_all(
                done),
            body,
            (tf.constant(0), tf.fill([batch], START_ID), states,
             tf.zeros([batch], tf.bool), tf.zeros([batch]),
             tf.TensorArray(tf.int32, size=0, dynamic_size=True,
                            element_shape=tf.TensorShape([None])),
             tf.TensorArray(memory.dtype, size=0, dynamic_size=True,
                            element_shape=tf.TensorShape([None, None]))))
        return (tf.transpose(ids.stack()), score,
                tf.transpose(attention.stack(), (1, 0, 2)))

    def beam_search(self, text, beam_width, length_penalty, n_best):
        """Graph function: the ``n_best`` best of ``beam_width`` hypotheses:
        ``(ids [batch, n_best, steps], scores [batch, n_best])``; a score is
        the log-probability divided by the length penalty."""
        import tensorflow as tf

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
        memory, keys, mask, states = self.encode_source(text)
        batch = tf.shape(memory)[0]
        vocabulary = self.target_encoder.vocabulary_size
        steps = self.max_steps(mask)

        def tile(x):
            return tf.repeat(x, width, axis=0)

        memory, keys, mask = tile(memory), tile(keys), tile(mask)
        states = [tile(s) for s in states]
        # one live hypothesis at first: the others start at -inf
        scores = tf.where(tf.range(width)[None, :] > 0, -1e9,
                          tf.zeros([batch, width]))
        only_padding = tf.one_hot(PAD_ID, vocabulary, on_value=0.0,
                                  off_value=-1e9)

        def penalty(length):
            return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0,
                          length_penalty)

        def body(t, history, scores, lengths, done, states):
            token = tf.reshape(history[:, :, -1], [-1])
            log_probs, states, _ = self.decode_step(
                token, states, memory, keys, mask)
            log_probs = tf.reshape(log_probs, [batch, width, vocabulary])
            # a finished hypothesis continues with padding, at no cost
            log_probs = tf.where(done[:, :, None], only_padding, log_probs)
            total = scores[:, :, None] + log_probs
            new_lengths = lengths + tf.cast(~done, tf.int32)
            ranked = total / penalty(new_lengths)[:, :, None]
            _, flat = tf.math.top_k(tf.reshape(ranked, [batch, -1]), k=width)
            parent, token = flat // vocabulary, flat % vocabulary
            scores = tf.gather(tf.reshape(total, [batch, -1]), flat,
                               batch_dims=1)
            history = tf.concat([tf.gather(history, parent, batch_dims=1),
                                 token[:, :, None]], axis=-1)
            lengths = tf.gather(new_lengths, parent, batch_dims=1)
            done = tf.gather(done, parent, batch_dims=1) | tf.equal(
                token, END_ID)
            rows = tf.reshape(parent + tf.range(batch)[:, None] * width, [-1])
            states = [tf.gather(s, rows) for s in states]
            return t + 1, history, scores, lengths, done, states

        history = tf.fill([batch, width, 1], START_ID)
        _, history, scores, lengths, done, _ = tf.while_loop(
            lambda t, history, scores, lengths, done, states: (
                t < steps) & ~tf.reduce_all(done),
            body,
            (tf.constant(0), history, scores, tf.zeros([batch, width],
                                                       tf.int32),
             tf.zeros([batch, width], tf.bool), states),
            shape_invariants=(tf.TensorShape([]),
                              tf.TensorShape([None, None, None]),
                              scores.shape, tf.TensorShape([None, None]),
                              tf.TensorShape([None, None]),
                              [tf.TensorShape([None, s.shape[-1]])
                               for s in states]))
        final = scores / penalty(lengths)
        best, order = tf.math.top_k(final, k=n_best)
        ids = tf.gather(history[:, :, 1:], order, batch_dims=1)
        return ids, best

    def detokenize(self, ids):
        """Graph function: target ids ``[..., steps]`` as text ``[...]``: the
        words before the end token, joined, with no space before closing
        punctuation or after opening brackets."""
        import tensorflow as tf

        vocabulary = tf.constant(self.target_encoder.vocabulary)
        ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=-1)
        keep = (ended == 0) & (ids > END_ID)
        words = tf.where(keep, tf.gather(vocabulary, ids), "")
        text = tf.strings.reduce_join(words, axis=-1, separator=" ")
        text = tf.strings.regex_replace(text, " +", " ")
        text = tf.strings.regex_replace(text, r" ([.,!?;:%)\]}])", r"\1")
        text = tf.strings.regex_replace(text, r"([(\[{]) ", r"\1")
        return tf.strings.strip(text)

    def translate(self, text, beam_width, length_penalty, n_best):
        """Graph function: ``(translations [batch, n_best], scores)``."""
        import tensorflow as tf

        def by_beam():
            return self.beam_search(text, beam_width, length_penalty, n_best)

        def by_greedy():
            ids, score, _ = self.greedy(text)
            return ids[:, None, :], score[:, None]

        ids, scores = tf.cond(tf.equal(beam_width, 1), by_greedy, by_beam)
        return self.detokenize(ids), scores

    def _function(self, name):
        import tensorflow as tf

        self.parts()
        if name not in self._functions:
            text = tf.TensorSpec((None,), tf.string)
            specs = {
                "translate": (self.translate, [
                    text, tf.TensorSpec((), tf.int32),
                    tf.TensorSpec((), tf.float32),
                    tf.TensorSpec((), tf.int32)]),
                "greedy": (self.greedy, [text]),
            }
            function, signature = specs[name]
            self._functions[name] = tf.function(
                function, input_signature=signature, autograph=False)
        return self._functions[name]

    # -- prediction ------------------------------------------------------------

    def check_lines(self, lines):
        """Warnings for sentences the model will cut or cannot read:
        characters absent from the source vocabulary, sentences over
        ``--max-length`` words, sentences of unknown words only."""
        limit = self.config["max_length"]
        ids = self.source_encoder.token_ids(lines).to_list()
        if self._characters is None:
            self._characters = set("".join(self.source_encoder.vocabulary))
        for line, row_ids in zip(lines, ids):
            unseen = sorted({c for c in line if not c.isspace()}
                            - self._characters)
            if unseen:
                shown = " ".join(repr(c)[1:-1] for c in unseen[:10])
                click.echo(f"warning: {line[:40]!r}: characters never seen "
                           f"in training: {shown} (their words are read as "
                           "unknown)", err=True)
            if len(row_ids) > limit:
                click.echo(f"warning: {line[:40]!r}...: {len(row_ids)} words; "
                           f"only the first {limit} (--max-length) are "
                           "translated", err=True)
            elif row_ids and all(i == UNK_ID for i in row_ids):
                click.echo(f"warning: {line!r}: no word of it is known to "
                           "the model", err=True)

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
        texts, scores = self._function("translate")(
            tf.constant(lines), np.int32(beam_width),
            np.float32(o["length_penalty"] if length_penalty is None
                       else length_penalty),
            np.int32(n_best))
        return ([[t.decode("utf-8") for t in row] for row in texts.numpy()],
                scores.numpy().tolist())

    def predict_lines(self, lines, chunk=64):
        self.check_lines(lines)
        if self.options.get("attention_plot") and not getattr(
                self, "_plotted", False):
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

    def format_record(self, record, output_format="text"):
        if "n_best" not in record:
            return record["translation"]
        return "\n".join(f"{n['score']:.4f}\t{n['translation']}"
                         for n in record["n_best"])

    def attention_matrix(self, line):
        """``(source words, target words, weights [target, source])`` of the
        greedy translation of one sentence."""
        import tensorflow as tf

        ids, _, attention = self._function("greedy")(tf.constant([line]))
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
            figure.savefig(path, dpi=100)
        except OSError as error:
            raise NlpseqError(f"--attention-plot {path}: {error}") from None
        finally:
            plt.close(figure)
        click.echo(f"Attention of {line[:40]!r} drawn in {path}", err=True)

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
        parts = self.parts()
        return [self.source_encoder, parts["encoder"]]

    def serving_functions(self):
        import tensorflow as tf

        def default(text):
            texts, scores = self.translate(
                text, tf.constant(EXPORT_BEAM_WIDTH), tf.constant(1.0),
                tf.constant(1))
            return {"translation": texts[:, 0], "score": scores[:, 0]}

        def translate(text, beam_width, length_penalty, n_best):
            texts, scores = self.translate(text, beam_width, length_penalty,
                                           n_best)
            return {"translations": texts, "scores": scores}

        return {
            "serving_default": (default, [
                tf.TensorSpec((None,), tf.string, name="text")]),
            "translate": (translate, [
                tf.TensorSpec((None,), tf.string, name="text"),
                tf.TensorSpec((), tf.int32, name="beam_width"),
                tf.TensorSpec((), tf.float32, name="length_penalty"),
                tf.TensorSpec((), tf.int32, name="n_best")]),
        }

