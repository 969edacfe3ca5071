"""The classifier family: a text in, a label and its probabilities out.

The many-to-one model: token ids -> word dropout (training) ->
``Embedding(mask_zero=True)`` -> nlpseq recurrent layers -> pooling over the
valid steps (last state, max, mean or both) -> dropout -> a dense head
(sigmoid for two classes, softmax for more), optionally reading a bag of
hashed word bigrams too. Data: labelled texts (CSV, TSV, JSON lines,
Parquet, a folder per label, ``tfds:``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nlpseq import inputs
from nlpseq.config import Setting
from nlpseq.data import (
    LabelledTexts,
    encode_labels,
    held_out_cut,
    read_labelled_texts,
)
from nlpseq.data.labelled import stratified_split
from nlpseq.errors import NlpseqError
from nlpseq.folder import MODEL, PREPROCESSOR
from nlpseq.tasks.base import Task
from nlpseq.tasks.preprocessor import Preprocessor
from nlpseq.tasks.settings import (
    encoder_settings,
    monitor_setting,
    transfer_settings,
    vocabulary_settings,
)

POOLING = ("last", "max", "mean", "max_mean")
#: The bytes feature holding the text of each ``tf.Example`` that the
#: ``classification`` signature takes.
TEXT_FEATURE = "text"

#: The classifier family's settings (apps change defaults with
#: :func:`~nlpseq.tasks.settings.with_defaults`).
SETTINGS = (
    Setting("text_column", str, None, "column holding the texts "
            "(default: found by name: text, review, ...)"),
    monitor_setting("loss", ("accuracy", "macro_f1")),
    Setting("label_column", str, None, "column holding the labels "
            "(default: found by name: label, sentiment, ...)"),
    *encoder_settings(units=64, embedding_dim=64, dropout=0.3,
                      dropout_help="dropout before the output layer"),
    *vocabulary_settings(vocab_size=20000),
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
    Setting("ngram_buckets", int, 0, "also fit an NB-weighted logistic "
            "regression over each text's words and word bigrams hashed into "
            "N buckets before the network trains, and add its logits to the "
            "network's in evaluation and prediction (0: off)", minimum=0),
    Setting("ngram_c", float, 1.0, "the n-gram model's inverse L2 "
            "strength", minimum=1e-6),
    Setting("ngram_weight", float, 1.0, "the weight of the n-gram "
            "model's logits", minimum=0.0),
    Setting("word_dropout", float, 0.0, "in training, read each word as "
            "the unknown word with this probability", minimum=0.0,
            maximum=0.95),
    Setting("embedding_dropout", float, 0.0, "dropout of whole "
            "embedding channels (spatial dropout)", minimum=0.0,
            maximum=0.95),
    Setting("recurrent_dropout", float, 0.0, "dropout on the recurrent "
            "state", minimum=0.0, maximum=0.95),
    *transfer_settings(),
    # (nlpseq <app> distill offers them; :mod:`nlpseq.distillation`)
    Setting("teacher", str, None, "learn from the trained model in "
            "MODEL_DIR: its probabilities as targets, its vocabulary, "
            "n-gram model and settings (nlpseq <app> distill)", flag=False),
    Setting("unlabelled", str, None, "with --teacher: also learn the "
            "teacher's probabilities of these texts (a corpus SPEC: one "
            "text a line, or a table's text column)", flag=False),
)


class ClassifierPreprocessor(Preprocessor):
    """The text encoder (vocabulary, standardization) and class names.

    ``tokenization``: the encoder's ``lowercase``, ``strip_html`` and
    ``split_punctuation`` when they are a language model's (``--init-from``;
    saved), else ``None``: lower-case as ``--lowercase`` says, strip HTML
    and split punctuation.
    """

    def __init__(self, config, vocabulary, class_names, tokenization=None,
                 cascade=None):
        from nlpseq.tasks.encoder import text_encoder

        super().__init__(config)
        #: The cascade's threshold and its validation figures
        #: (:func:`nlpseq.cascade.choose_threshold`), or ``None``: the
        #: whole model runs for every text.
        self.cascade = dict(cascade) if cascade else None
        if len(class_names) < 2:
            raise NlpseqError("a classifier needs at least two classes, got "
                              f"{class_names!r}")
        self.class_names = list(class_names)
        self.tokenization = dict(tokenization) if tokenization else None
        options = self.tokenization or {"lowercase": config["lowercase"]}
        self.encoder = text_encoder(
            vocabulary, max_length=config["max_length"],
            truncate=config["truncate"], **options)

    @classmethod
    def fit(cls, data, config):
        from nlpseq.tasks.encoder import token_rows
        from nlpseq.text import TextEncoder, build_vocabulary

        names = data.class_names()
        if len(names) < 2:
            raise NlpseqError(
                f"{data.source}: fewer than two classes in the training "
                f"data (only {', '.join(names) or 'none'})")
        tokenizer = TextEncoder(["", "[UNK]"], max_length=None,
                                lowercase=config["lowercase"])
        vocabulary = build_vocabulary(
            token_rows(tokenizer, data.texts), max_size=config["vocab_size"],
            min_count=config["min_count"])
        if len(vocabulary) <= 2:
            raise NlpseqError(
                f"{data.source}: no word is seen --min-count "
                f"{config['min_count']} times in the training texts")
        return cls(config, vocabulary, names)

    @classmethod
    def from_language_model(cls, source, data, config):
        """The language model ``source``'s vocabulary and tokenization, and
        the class names of ``data``."""
        names = data.class_names()
        if len(names) < 2:
            raise NlpseqError(
                f"{data.source}: fewer than two classes in the training "
                f"data (only {', '.join(names) or 'none'})")
        encoder = source.encoder
        return cls(config, encoder.vocabulary, names, {
            "lowercase": encoder.lowercase, "strip_html": encoder.strip_html,
            "split_punctuation": encoder.split_punctuation})

    def get_config(self):
        state = {"vocabulary": self.encoder.vocabulary[2:],
                 "class_names": self.class_names}
        if self.tokenization:
            state["tokenization"] = self.tokenization
        if self.cascade:
            state["cascade"] = self.cascade
        return state

    @classmethod
    def from_config(cls, state, config):
        cascade = state.get("cascade")
        if cascade is not None and not (
                isinstance(cascade, dict)
                and isinstance(cascade.get("threshold"), (int, float))
                and np.isfinite(cascade["threshold"])):
            raise ValueError("the cascade has no finite threshold")
        if cascade is not None and not config.get("ngram_buckets"):
            raise ValueError("a cascade, but no n-gram model "
                             "(ngram_buckets is 0)")
        return cls(config, ["", "[UNK]"] + cls.require(
            state["vocabulary"], "vocabulary"), state["class_names"],
            state.get("tokenization"), cascade)

    @property
    def binary(self):
        return len(self.class_names) == 2


class ClassifierTask(Task):
    """Text classification: train, evaluate, predict, export."""

    family = "classifier"
    demo_panel = "classifier"
    settings = SETTINGS
    transfer = "encoder"
    preprocessor_class = ClassifierPreprocessor
    data_help = ("labelled texts: a .csv, .tsv, .jsonl or .parquet file "
                 "(plain or .gz) with text and label columns, a folder with "
                 "a sub-folder of .txt files per label, or tfds:NAME[:SPLIT]")
    data_example = "reviews.csv"
    #: The SignatureDef method of the signatures that are not predict ones:
    #: ``classification`` is TensorFlow Serving's Classify method (the
    #: exporter writes it into ``saved_model.pb``).
    signature_methods = {"classification": "tensorflow/serving/classify"}
    commands = ("cascade", "distill")

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
        """Hold out ``fraction`` of each class for validation (a
        stratified split; see :func:`~nlpseq.data.labelled.stratified_split`).
        """
        cut = held_out_cut(len(data), fraction, data.source, "texts")
        held = stratified_split(data.labels, len(data) - cut,
                                seed=self.config.get("seed", 0))
        if not held:
            raise NlpseqError(
                f"{data.source}: every class has a single text; none can be "
                f"held out for validation (--valid-split {fraction}); give "
                "--valid")
        kept = [i for i in range(len(data)) if i not in held]
        order = sorted(held)

        def part(indices, skipped=0):
            return LabelledTexts([data.texts[i] for i in indices],
                                 [data.labels[i] for i in indices],
                                 data.source, skipped)

        return part(kept, data.skipped_empty), part(order)

    def describe_data(self, data):
        counts = {}
        for label in data.labels:
            counts[str(label)] = counts.get(str(label), 0) + 1
        classes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        skipped = (f"; skipped {data.skipped_empty} empty texts"
                   if data.skipped_empty else "")
        return f"{len(data)} texts ({classes}){skipped}"

    @property
    def class_names(self):
        return self.preprocessor.class_names

    @classmethod
    def load(cls, model_dir):
        """The classifier saved in ``model_dir``; a model whose output does
        not fit the number of class names in ``preprocessor.json`` is
        reported as corrupted, saying so."""
        try:
            task = super().load(model_dir)
            task.loaded_mtime = _mtime(task.folder.path / MODEL)
            return task
        except NlpseqError:
            mismatch = class_count_mismatch(Path(model_dir))
            if mismatch is None:
                raise
            raise NlpseqError(f"{model_dir}: corrupted ({mismatch})") \
                from None

    def encode_texts(self, texts):
        """Token ids of each text, as a list of 1-D int32 arrays."""
        from nlpseq.tasks.encoder import encode_texts

        return encode_texts(self.preprocessor.encoder, texts)

    def encode(self, data):
        y = encode_labels(data.labels, self.class_names, source=data.source)
        if self.distilled_classes:
            # (the labels as the probabilities a teacher's targets are)
            return self.encode_texts(data.texts), np.eye(
                len(self.class_names), dtype="float32")[y]
        dtype = "float32" if self.preprocessor.binary else "int32"
        return self.encode_texts(data.texts), y.astype(dtype)

    @property
    def distilled_classes(self):
        """Whether the targets are class probabilities ``[n, classes]``:
        a student (``--teacher``) of more than two classes."""
        return bool(self.config.get("teacher")) and \
            not self.preprocessor.binary

    # -- model -----------------------------------------------------------------

    def build_model(self, layer_class=None):
        """The model; ``layer_class`` replaces the configured cell's layer
        (the benchmark builds its reference with Keras' own layers)."""
        import keras

        from nlpseq.layers import (
            HashedBigrams,
            NgramLogits,
            RareWordDropout,
            SequencePooling,
        )
        from nlpseq.tasks.encoder import RecurrentEncoder

        c = self.config
        vocabulary = self.preprocessor.encoder.vocabulary_size
        ids = keras.Input((None,), dtype="int32", name="token_ids")
        x = ids
        if c["word_dropout"]:
            # every word is "rare": ids from 2 (after padding and unknown)
            x = RareWordDropout(2, c["word_dropout"], seed=c["seed"],
                                name="word_dropout")(x)
        words = x
        backbone = self.backbone = RecurrentEncoder(c, layer_class=layer_class)
        x = backbone.embed(keras.layers.Embedding(
            vocabulary, c["embedding_dim"], mask_zero=True, name="embedding"),
            x)
        if c["embedding_dropout"]:
            x = keras.layers.SpatialDropout1D(c["embedding_dropout"],
                                              name="embedding_dropout")(x)
        x = backbone.stack(x, options=lambda index: {
            "return_sequences": not (index == c["layers"] - 1
                                     and c["pooling"] == "last"),
            "zero_output_for_mask": True,
            "recurrent_dropout": c["recurrent_dropout"]})
        if c["pooling"] != "last":
            x = SequencePooling(c["pooling"], name="pooling")(x)
        if c["bigram_buckets"]:
            bigrams = HashedBigrams(c["bigram_buckets"], vocabulary,
                                    name="bigrams")(words)
            bigrams = keras.layers.Embedding(
                c["bigram_buckets"], c["bigram_dim"], mask_zero=True,
                name="bigram_embedding")(bigrams)
            bigrams = SequencePooling("mean", name="bigram_bag")(bigrams)
            x = keras.layers.Concatenate(name="features")([x, bigrams])
        x = keras.layers.Dropout(c["dropout"], name="dropout")(x)
        binary = self.preprocessor.binary
        activation = "sigmoid" if binary else "softmax"
        outputs = keras.layers.Dense(
            1 if binary else len(self.class_names),
            activation=None if c["ngram_buckets"] else activation,
            name="classes", dtype="float32")(x)  # (under mixed precision)
        if c["ngram_buckets"]:
            #: (what ``prepare_model`` fits)
            self.ngram_logits = NgramLogits(
                vocabulary, c["ngram_buckets"], outputs.shape[-1],
                weight=c["ngram_weight"], activation=activation,
                name="ngram_logits")
            outputs = self.ngram_logits([ids, outputs])
        return keras.Model(ids, outputs, name=self.family)

    def prepare_model(self, x, y):
        """Fit the n-gram model (``--ngram-buckets``) on the training
        texts' token ids ``x`` and labels ``y`` (a student's is its
        teacher's, copied: ``--teacher``)."""
        if not self.config["ngram_buckets"] or self.config.get("teacher"):
            return
        from nlpseq.ngram_model import fit_ngram_logits

        labels = np.asarray(y).reshape(-1).astype("int64")
        targets = (labels[:, None] if self.preprocessor.binary
                   else np.eye(len(self.class_names))[labels])
        fit_ngram_logits(self.ngram_logits, x, targets,
                         c=self.config["ngram_c"])

    def compile_arguments(self):
        binary = self.preprocessor.binary
        if self.config.get("teacher"):
            # (soft targets: the cross-entropy against the teacher's
            # probabilities; the accuracy of the most probable classes)
            return {"loss": ("binary_crossentropy" if binary
                             else "categorical_crossentropy"),
                    "metrics": [agreement]}
        return {
            "loss": ("binary_crossentropy" if binary
                     else "sparse_categorical_crossentropy"),
            "metrics": ["binary_accuracy" if binary else "accuracy"],
        }

    def probabilities(self, outputs):
        """Model outputs as class probabilities ``[batch, classes]``."""
        from keras import ops

        if self.preprocessor.binary:
            return ops.concatenate([1.0 - outputs, outputs], axis=-1)
        return outputs

    # -- prediction ------------------------------------------------------------

    def predict_probabilities(self, texts, chunk=1024):
        """Class probabilities ``[len(texts), classes]`` (NumPy), computed
        by the same graph function as the exported ``serving_default``."""
        if not len(texts):
            return np.zeros((0, len(self.class_names)), "float32")
        return self.graph_outputs("serving_default", texts,
                                  ("probabilities",), chunk)["probabilities"]

    def graph_outputs(self, name, texts, keys, chunk=1024):
        """The outputs ``keys`` of the graph function ``name``
        (:meth:`graph_functions`) over ``texts`` (at least one), ``chunk``
        texts a call, each joined into one NumPy array."""
        import tensorflow as tf

        function = self.graph_function(name)
        parts = [function(tf.constant(list(texts[i:i + chunk]), tf.string))
                 for i in range(0, len(texts), chunk)]
        return {key: np.concatenate([part[key].numpy() for part in parts])
                for key in keys}

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

    def empty_record(self, text):
        return {"text": text, "label": None, "probability": None,
                "probabilities": {}}

    def format_record(self, record, output_format="text"):
        if record["label"] is None:  # an empty input
            return f"\t\t{record['text']}"
        return (f"{record['label']}\t{record['probability']:.4f}\t"
                f"{record['text']}")

    # -- evaluation ------------------------------------------------------------

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

    # -- serving ---------------------------------------------------------------

    def serving_layers(self):
        return [self.preprocessor.encoder]

    def graph_functions(self):
        import tensorflow as tf

        from nlpseq.length_groups import by_length

        def cascade_parts(text):
            # the full model's probabilities and the n-gram model's logits
            ids = self.preprocessor.encoder(text)
            return {"full": by_length(self.forward_probabilities, ids,
                                      len(self.class_names)),
                    "ngram": self.ngram_logits.ngram_logits(ids)}

        return {**self.serving_functions(), "cascade_parts": (
            cascade_parts, [tf.TensorSpec((None,), tf.string)])}

    # -- the cascade -------------------------------------------------------------

    def forward_probabilities(self, ids):
        """The whole model's class probabilities for token ids."""
        return self.probabilities(self.model(ids, training=False))

    def ngram_probabilities(self, logits):
        """The n-gram model's class probabilities from its logits, as the
        joined model's with the network's logits left out (0)."""
        weighted = self.ngram_logits.weight * logits
        return self.probabilities(
            self.ngram_logits.activation(weighted))

    def onnx_forward(self, ids):
        # (the cascade, when set, in the ONNX graph too; the model's own
        # output otherwise: for two classes, the probability of the second)
        if not self.preprocessor.cascade:
            return super().onnx_forward(ids)
        probabilities = self.cascaded_probabilities(
            ids, self.forward_probabilities)
        return probabilities[:, 1:] if self.preprocessor.binary \
            else probabilities

    def cascaded_probabilities(self, ids, network):
        """Class probabilities of token ids ``ids``: ``network(ids)`` (the
        whole model), or with the cascade (``preprocessor.cascade``), the
        n-gram model's where its margin is above the threshold and
        ``network`` for the other rows (:func:`nlpseq.cascade.cascaded`)."""
        cascade = self.preprocessor.cascade
        if not cascade:
            return network(ids)
        from nlpseq.cascade import cascaded

        return cascaded(ids, self.ngram_logits.ngram_logits, network,
                        cascade["threshold"], self.ngram_probabilities)

    def choose_cascade(self, data, tolerance=None, described=None):
        """Choose the cascade's threshold on labelled ``data`` (a SPEC or
        data read; the validation data) and set it in the preprocessor
        (:meth:`save_cascade` writes it into the model folder).

        Returns:
            The cascade entry (:func:`nlpseq.cascade.choose_threshold`'s
            figures, and ``data``: what it was chosen on).

        Raises:
            NlpseqError: a model without an n-gram model.
        """
        from nlpseq.cascade import (
            TOLERANCE,
            TOLERANCE_SETTING,
            choose_threshold,
            margins,
        )

        if not self.config.get("ngram_buckets"):
            raise NlpseqError(
                f"{self.folder or 'the model'}: no n-gram model to decide "
                "alone (trained with --ngram-buckets 0); a cascade needs "
                "one: train with --ngram-buckets N")
        tolerance = TOLERANCE if tolerance is None else \
            TOLERANCE_SETTING.check(tolerance, "cascade")
        data = inputs.data_argument("cascade", data, self.read_data)
        gold = encode_labels(data.labels, self.class_names,
                             source=data.source)
        parts = self.graph_outputs("cascade_parts", data.texts,
                                   ("full", "ngram"), chunk=512)
        full, ngram = parts["full"], parts["ngram"]
        alone = np.argmax(self.ngram_probabilities(ngram).numpy(), axis=-1)
        chosen = choose_threshold(margins(ngram), alone == gold,
                                  np.argmax(full, axis=-1) == gold,
                                  tolerance)
        chosen["data"] = described or str(data.source)
        self.set_cascade(chosen)
        return chosen

    def set_cascade(self, cascade):
        """Use the cascade ``cascade`` (a dict with its ``threshold``), or
        none: the whole model runs for every text."""
        self.preprocessor.cascade = dict(cascade) if cascade else None
        self._graph_model = None  # (the graphs change: traced again)

    def save_cascade(self):
        """Write the preprocessor (with its cascade, or without) into the
        model folder the task was loaded from, under the folder's lock;
        refused when another model was published there meanwhile."""
        if self.folder is None:
            raise NlpseqError("cascade: this model was not loaded from a "
                              "model folder; nothing to save it into")
        with self.folder.lock():
            # (the model loaded is still the folder's: the same model.keras
            # and the same vocabulary and classes)
            mine = {k: v for k, v in self.preprocessor.get_config().items()
                    if k != "cascade"}
            try:
                saved = json.loads((self.folder.path / PREPROCESSOR)
                                   .read_text("utf-8"))["state"]
                saved.pop("cascade", None)
            except (OSError, ValueError, KeyError, TypeError):
                saved = None
            loaded = getattr(self, "loaded_mtime", None)
            if loaded is None or saved != mine or _mtime(
                    self.folder.path / MODEL) != loaded:
                raise NlpseqError(
                    f"{self.folder}: another model was trained into it "
                    "since this one was loaded; run the command again")
            self.preprocessor.save(self.folder.path / PREPROCESSOR)

    def report_sections(self, data, described, metrics, history):
        from nlpseq.report import classifier_sections

        return classifier_sections(self, data, described, metrics, history)

    def serving_functions(self):
        import tensorflow as tf

        from nlpseq.length_groups import by_length
        from nlpseq.text import blank

        encoder = self.preprocessor.encoder
        names = tf.constant(self.class_names)
        classes = len(self.class_names)

        def serve(text):
            # rows of similar length together: less work spent on padding
            probabilities = self.cascaded_probabilities(
                encoder(text), lambda ids: by_length(
                    self.forward_probabilities, ids, classes))
            best = tf.argmax(probabilities, axis=-1)
            # (an empty or whitespace-only text: the empty result, as in
            # predict: no label, probabilities of 0)
            empty = blank(text)
            return {
                "label": tf.where(empty, "", tf.gather(names, best)),
                "probabilities": tf.where(
                    empty[:, None], tf.zeros_like(probabilities),
                    probabilities),
                "class_names": tf.tile(names[None, :],
                                       [tf.shape(text)[0], 1]),
            }

        def classify(inputs):
            # (TensorFlow Serving's Classify API: serialized tf.Examples,
            # each with its text in the bytes feature `text`)
            text = tf.io.parse_example(inputs, {
                TEXT_FEATURE: tf.io.FixedLenFeature([], tf.string)})[
                TEXT_FEATURE]
            outputs = serve(tf.strings.unicode_transcode(
                text, "UTF-8", "UTF-8", errors="strict"))
            return {"classes": outputs["class_names"],
                    "scores": outputs["probabilities"]}

        return {"serving_default": (serve, [
            tf.TensorSpec((None,), tf.string, name="text")]),
            "classification": (classify, [
                tf.TensorSpec((None,), tf.string, name="inputs")])}


def agreement(targets, outputs):
    """How often the outputs' most probable class is the targets' (soft
    or hard targets: probabilities, or the second class's for two)."""
    from keras import ops

    if outputs.shape[-1] == 1:
        targets = ops.reshape(targets, ops.shape(outputs))
        return ops.cast(ops.equal(targets > 0.5, outputs > 0.5), "float32")
    return ops.cast(ops.equal(ops.argmax(targets, -1),
                              ops.argmax(outputs, -1)), "float32")


def _mtime(path):
    """The modification time of ``path`` in ns, or ``None`` (gone: a new
    model is being swapped in)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def class_count_mismatch(folder):
    """Why ``preprocessor.json``'s class names do not fit the output layer
    recorded in the folder's ``model.keras``, or ``None`` (they fit, or the
    files cannot tell)."""
    import json
    import zipfile

    try:
        state = json.loads((folder / "preprocessor.json").read_text(
            "utf-8"))["state"]
        names = len(state["class_names"])
        with zipfile.ZipFile(folder / "model.keras") as archive:
            layers = json.loads(archive.read("config.json"))["config"][
                "layers"]
        units = next(layer["config"]["units"] for layer in layers
                     if layer["config"].get("name") == "classes")
    except Exception:  # noqa: BLE001 (damaged otherwise: not this check's)
        return None
    expected = 1 if names == 2 else names
    if units == expected:
        return None
    classes = 2 if units == 1 else units
    return (f"preprocessor.json has {names} class names, but the model "
            f"has {units} output{'s' if units != 1 else ''} "
            f"({classes} classes)")


__all__ = ["ClassifierPreprocessor", "ClassifierTask"]
