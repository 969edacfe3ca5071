"""Sentiment classification: a text in, a label and its probability out.

The many-to-one pipeline: token ids -> ``Embedding(mask_zero=True)`` ->
nlpseq recurrent layers (the cell chosen by name, optionally bidirectional,
stacked) -> pooling over the valid steps (last state, max, mean or both) ->
dropout -> a dense head (sigmoid for two classes, softmax for more).

Example:
    $ nlpseq sentiment train                     # the built-in sample
    $ nlpseq sentiment predict "not bad at all"
    pos     0.9120  not bad at all
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlpseq.config import Setting
from nlpseq.data import LabelledTexts, encode_labels, read_labelled_texts
from nlpseq.errors import NlpseqError
from nlpseq.pipeline import Pipeline
from nlpseq.registry import CELLS

VOCABULARY = "vocabulary.txt"
POOLING = ("last", "max", "mean", "max_mean")


class SentimentPipeline(Pipeline):
    """Sentiment classification: train, evaluate, predict, export."""

    name = "sentiment"
    default_data = Path(__file__).parent / "data" / "sentiment_sample.csv"
    artifact_files = (VOCABULARY,)
    settings = (
        Setting("text_column", str, None, "column holding the texts "
                "(default: found by name: text, review, ...)"),
        Setting("label_column", str, None, "column holding the labels "
                "(default: found by name: label, sentiment, ...)"),
        Setting("cell", str, "lstm", "recurrent cell",
                choices=tuple(CELLS.names())),
        Setting("bidirectional", bool, False, "bidirectional recurrent "
                "layers"),
        Setting("layers", int, 1, "stacked recurrent layers", minimum=1),
        Setting("units", int, 64, "units per recurrent layer (and "
                "direction)", minimum=1),
        Setting("embedding_dim", int, 64, "size of the word embeddings",
                minimum=1),
        Setting("vocab_size", int, 20000, "largest vocabulary (with the "
                "padding and unknown entries)", minimum=3),
        Setting("min_count", int, 1, "leave out words seen fewer times in "
                "the training data", minimum=1),
        Setting("max_length", int, 400, "keep at most N tokens of each text",
                minimum=1),
        Setting("truncate", str, "post", "where longer texts are cut: post "
                "keeps the first tokens, pre the last ones",
                choices=("post", "pre")),
        Setting("lowercase", bool, True, "lower-case the texts"),
        Setting("pooling", str, "max", "how the recurrent outputs are "
                "pooled over time", choices=POOLING),
        Setting("bigram_buckets", int, 0, "also feed the output layer a "
                "bag of word bigrams hashed into N buckets, as fastText does "
                "(0: off)", minimum=0),
        Setting("bigram_dim", int, 16, "size of the bigram embeddings",
                minimum=1),
        Setting("word_dropout", float, 0.0, "in training, read each word as "
                "the unknown word with this probability", minimum=0.0,
                maximum=0.95),
        Setting("embedding_dropout", float, 0.0, "dropout of whole "
                "embedding channels (spatial dropout)", minimum=0.0,
                maximum=0.95),
        Setting("dropout", float, 0.3, "dropout before the output layer",
                minimum=0.0, maximum=0.95),
        Setting("recurrent_dropout", float, 0.0, "dropout on the recurrent "
                "state", minimum=0.0, maximum=0.95),
    )

    def __init__(self, config):
        super().__init__(config)
        self.encoder = None
        self.class_names = None
        self._forward = None

    # -- data ------------------------------------------------------------------

    def read_data(self, spec, role):
        data = read_labelled_texts(
            spec, text_column=self.config.get("text_column"),
            label_column=self.config.get("label_column"),
            seed=self.config.get("seed", 0))
        if not len(data):
            raise NlpseqError(f"{spec}: no texts to read")
        return data

    def split_data(self, data, fraction):
        cut = self.held_out_cut(len(data), fraction, data.source,
                                "texts")
        return (LabelledTexts(data.texts[:cut], data.labels[:cut],
                              data.source, data.skipped_empty),
                LabelledTexts(data.texts[cut:], data.labels[cut:],
                              data.source))

    def describe_data(self, data):
        counts = {}
        for label in data.labels:
            counts[str(label)] = counts.get(str(label), 0) + 1
        classes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        skipped = (f"; skipped {data.skipped_empty} empty texts"
                   if data.skipped_empty else "")
        return f"{len(data)} texts ({classes}){skipped}"

    # -- vocabulary and classes ------------------------------------------------

    def _make_encoder(self, vocabulary):
        from nlpseq.text import TextEncoder

        self.encoder = TextEncoder(
            vocabulary, max_length=self.config["max_length"],
            truncate=self.config["truncate"],
            lowercase=self.config["lowercase"], name="text_encoder")

    def prepare(self, train):
        from nlpseq.text import TextEncoder, build_vocabulary

        names = train.class_names()
        if len(names) < 2:
            raise NlpseqError(
                f"{train.source}: fewer than two classes in the training "
                f"data (only {', '.join(names) or 'none'})")
        self.class_names = names
        tokenizer = TextEncoder(["", "[UNK]"], max_length=None,
                                lowercase=self.config["lowercase"])
        token_lists = (row for start in range(0, len(train), 4096)
                       for row in tokenizer.tokenize(
                           train.texts[start:start + 4096]).to_list())
        self._make_encoder(build_vocabulary(
            token_lists, max_size=self.config["vocab_size"],
            min_count=self.config["min_count"]))

    def folder_entries(self):
        return {"class_names": self.class_names,
                "vocabulary_size": self.encoder.vocabulary_size}

    def save_artifacts(self, path):
        from nlpseq.folder import write_text_atomic

        write_text_atomic(Path(path) / VOCABULARY,
                          "".join(t + "\n" for t in self.encoder.vocabulary[2:]))

    def load_artifacts(self, path, entries):
        names = entries.get("class_names")
        if not isinstance(names, list) or len(names) < 2:
            raise NlpseqError(
                f"{Path(path) / 'config.json'}: corrupted (no class names)")
        self.class_names = names
        text = (Path(path) / VOCABULARY).read_text(encoding="utf-8")
        self._make_encoder(["", "[UNK]"] + text.split("\n")[:-1])

    # -- encoding --------------------------------------------------------------

    def encode_texts(self, texts, chunk=4096):
        """Token ids of each text, as a list of 1-D int32 arrays."""
        out = []
        for start in range(0, len(texts), chunk):
            ids = self.encoder.token_ids(texts[start:start + chunk])
            flat = ids.flat_values.numpy()
            ends = np.cumsum(ids.row_lengths().numpy())[:-1]
            out += np.split(flat, ends)
        return out

    def encode(self, data):
        y = encode_labels(data.labels, self.class_names, source=data.source)
        dtype = "float32" if len(self.class_names) == 2 else "int32"
        return self.encode_texts(data.texts), y.astype(dtype)

    # -- model -----------------------------------------------------------------

    def build_model(self, layer_class=None):
        """The model; ``layer_class`` replaces the configured cell's layer
        (the benchmark builds its reference with Keras' own layers)."""
        import keras

        from nlpseq.layers import (
            Bidirectional,
            HashedBigrams,
            RareWordDropout,
            SequencePooling,
        )

        c = self.config
        layer_class = layer_class or CELLS.get(c["cell"])
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        x = ids
        if c["word_dropout"]:
            # every word is "rare": ids from 2 (after padding and unknown)
            x = RareWordDropout(2, c["word_dropout"], seed=c["seed"],
                                name="word_dropout")(x)
        words = x
        x = keras.layers.Embedding(self.encoder.vocabulary_size,
                                   c["embedding_dim"], mask_zero=True,
                                   name="embedding")(x)
        if c["embedding_dropout"]:
            x = keras.layers.SpatialDropout1D(c["embedding_dropout"],
                                              name="embedding_dropout")(x)
        for index in range(c["layers"]):
            last = index == c["layers"] - 1
            layer = layer_class(
                c["units"], return_sequences=not (last and c["pooling"] ==
                                                  "last"),
                zero_output_for_mask=True,
                recurrent_dropout=c["recurrent_dropout"],
                name=f"{c['cell']}_{index + 1}")
            if c["bidirectional"]:
                layer = Bidirectional(layer, name=f"bidirectional_{index + 1}")
            x = layer(x)
        if c["pooling"] != "last":
            x = SequencePooling(c["pooling"], name="pooling")(x)
        if c["bigram_buckets"]:
            bigrams = HashedBigrams(
                c["bigram_buckets"], self.encoder.vocabulary_size,
                name="bigrams")(words)
            bigrams = keras.layers.Embedding(
                c["bigram_buckets"], c["bigram_dim"], mask_zero=True,
                name="bigram_embedding")(bigrams)
            bigrams = SequencePooling("mean", name="bigram_bag")(bigrams)
            x = keras.layers.Concatenate(name="features")([x, bigrams])
        x = keras.layers.Dropout(c["dropout"], name="dropout")(x)
        binary = len(self.class_names) == 2
        outputs = keras.layers.Dense(
            1 if binary else len(self.class_names),
            activation="sigmoid" if binary else "softmax", name="classes")(x)
        return keras.Model(ids, outputs, name="sentiment")

    def compile_arguments(self):
        binary = len(self.class_names) == 2
        return {
            "loss": ("binary_crossentropy" if binary
                     else "sparse_categorical_crossentropy"),
            "metrics": ["binary_accuracy" if binary else "accuracy"],
        }

    def probabilities(self, outputs):
        """Model outputs as class probabilities ``[batch, classes]``."""
        from keras import ops

        if len(self.class_names) == 2:
            return ops.concatenate([1.0 - outputs, outputs], axis=-1)
        return outputs

    # -- prediction ------------------------------------------------------------

    def predict_probabilities(self, texts, batch_size=256):
        """Class probabilities ``[len(texts), classes]`` (NumPy)."""
        import tensorflow as tf

        from nlpseq.training import pad

        if self._forward is None:
            model = self.model

            @tf.function(autograph=False, input_signature=[
                tf.TensorSpec((None, None), tf.int32)], reduce_retracing=True)
            def forward(ids):
                return self.probabilities(model(ids, training=False))

            self._forward = forward
        sequences = self.encode_texts(list(texts))
        order = np.argsort([len(s) for s in sequences], kind="stable")
        result = np.zeros((len(sequences), len(self.class_names)), "float32")
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            ids = pad([sequences[i] for i in index])
            result[index] = self._forward(ids).numpy()
        return result

    def predict_lines(self, lines):
        probabilities = self.predict_probabilities(lines)
        for text, row in zip(lines, probabilities):
            best = int(np.argmax(row))
            yield {
                "text": text,
                "label": self.class_names[best],
                "probability": round(float(row[best]), 6),
                "probabilities": {n: round(float(p), 6)
                                  for n, p in zip(self.class_names, row)},
            }

    def format_record(self, record, output_format="text"):
        return (f"{record['label']}\t{record['probability']:.4f}\t"
                f"{record['text']}")

    # -- evaluation --------------------------------------------------------------

    def evaluate_data(self, data):
        from nlpseq.metrics import classification_report

        y = encode_labels(data.labels, self.class_names, source=data.source)
        predicted = np.argmax(self.predict_probabilities(data.texts), axis=-1)
        return classification_report(y, predicted, self.class_names)

    def format_metrics(self, metrics):
        from nlpseq.metrics import format_report

        return format_report(metrics)

    def headline(self, metrics):
        return (f"validation accuracy {metrics['accuracy']:.4f}, macro F1 "
                f"{metrics['macro_f1']:.4f}")

    # -- serving -----------------------------------------------------------------

    def serving_layers(self):
        return [self.encoder]

    def serving_function(self):
        import tensorflow as tf

        from nlpseq.serving import by_length

        encoder, model = self.encoder, self.model
        names = tf.constant(self.class_names)

        def forward(ids):
            return self.probabilities(model(ids, training=False))

        def serve(text):
            # rows of similar length together: less work spent on padding
            probabilities = by_length(forward, encoder(text),
                                      len(self.class_names))
            best = tf.argmax(probabilities, axis=-1)
            return {
                "label": tf.gather(names, best),
                "probabilities": probabilities,
                "class_names": tf.tile(names[None, :],
                                       [tf.shape(text)[0], 1]),
            }

        return serve, [tf.TensorSpec((None,), tf.string, name="text")]
