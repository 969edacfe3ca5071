"""Start a model from a trained next-word model: ``--init-from MODEL_DIR``.

A word-level language model trained on in-domain text gives a classifier or
a tagger (or another language model, which continues training it) three
things:

- its **vocabulary and tokenization** (lower-casing, punctuation split,
  HTML stripping): the new model reads text exactly as the language model
  did; a classifier takes its vocabulary, a tagger keeps its own (the
  training data's words) and reads them as the language model does;
- its **embedding** (``embedding``: the new model's word embedding; a
  vocabulary of other words takes the vectors of the words the language
  model knows, and the others start fresh);
- its **recurrent layers** (``<cell>_1``, ``<cell>_2``...): the new model's
  first ``--layers`` of them. A bidirectional layer takes them as its
  forward direction; its backward direction starts fresh. A first layer that
  also reads other features (the tagger's character features) takes them
  for its inputs from the embedding; the rest of its input weights start
  fresh.

The encoder's settings (``cell``, ``units``, ``embedding_dim``, ``layers``)
not given are the language model's; given ones that differ are refused, as
are a character-level, backward or word-piece (``--subwords``) model
(except for a language model that continues it), and a model that is not
a language model.
Everything else (the classifier's head, the bigram bag, the tagger's
character features and CRF) starts fresh, and the log says which is which.

A language model started from another one takes all its weights and its
settings of the vocabulary and tokenization, its level and its direction:
it continues training (on the target task's texts, say: ULMFiT's
language-model fine-tuning, or a character model adapted to a tagger's
domain).

Data flow: :class:`Source` reads the folder's ``config.json`` and checks it
(:meth:`Source.adopt`, before TensorFlow starts), :meth:`Source.load` loads
the model, the family's preprocessor takes the vocabulary
(``from_language_model``), and :meth:`Source.copy_into` copies the weights
into the newly built model before its first step. :func:`layer_groups`
gives the fine-tuning recipe (:mod:`nlpseq.schedules`) its layer groups.
"""

from __future__ import annotations

from pathlib import Path

from nlpseq.config import flag
from nlpseq.errors import NlpseqError
from nlpseq.log import LOG

#: The encoder settings a transferred model shares with its source.
ENCODER = ("cell", "units", "embedding_dim")
#: The settings a model that continues its source (a family whose
#: ``transfer`` is ``"all"``: the language model) shares with it.
CONTINUED = ("layers", "level", "direction", "tie_embeddings", "lowercase",
             "split_punctuation", "strip_html", "subwords")


class Source:
    """The trained next-word model of ``--init-from``."""

    def __init__(self, path):
        from nlpseq.folder import ModelFolder
        from nlpseq.registry import APPS

        self.path = Path(path)
        shown = f"--init-from {path}"
        try:
            entries = ModelFolder(self.path).read_config()
        except NlpseqError as error:
            raise NlpseqError(f"{shown}: {error}") from None
        app = entries.get("app")
        if not (app in APPS and APPS.get(app).transfer_source):
            raise NlpseqError(
                f"{shown}: a model of the '{app}' app; --init-from takes a "
                "word-level next-word (language) model")
        self.app = app
        self.config = dict(entries.get("config", {}))
        self.task = None

    @property
    def backward(self):
        return self.config.get("direction", "forward") == "backward"

    @property
    def lowercase(self):
        value = self.config.get("lowercase")
        return True if value is None else bool(value)

    def adopt(self, config, task_class):
        """``config`` with the source's encoder settings where not given.

        Raises:
            NlpseqError: a given setting that differs from the source's.
        """
        given = getattr(config, "given", {})
        names = list(ENCODER)
        continues = task_class.transfer == "all"
        if self.config.get("level", "word") != "word" and not continues:
            raise NlpseqError(
                f"--init-from {self.path}: a character-level language model; "
                "--init-from takes a word-level one (its words are the new "
                "model's vocabulary)")
        if self.config.get("subwords") and not continues:
            raise NlpseqError(
                f"--init-from {self.path}: a language model of word pieces "
                f"(--subwords {self.config['subwords']}); --init-from takes "
                "one of whole words")
        if self.backward and not continues:
            raise NlpseqError(
                f"--init-from {self.path}: a backward language model "
                "(--direction backward); --init-from takes a forward one")
        if continues:
            names += CONTINUED
        source = dict(self.config, lowercase=self.lowercase,
                      direction=self.config.get("direction", "forward"),
                      subwords=self.config.get("subwords", 0))
        differ = []
        for name in names:
            if name in given and config[name] != source.get(name):
                differ.append(f"{flag(name)} {config[name]} (the language "
                              f"model's: {source.get(name)})")
            elif name in source:
                config[name] = source[name]
        if not continues:
            layers = int(source.get("layers", 1))
            if "layers" in given and config["layers"] > layers:
                differ.append(f"--layers {config['layers']} (the language "
                              f"model has {layers})")
            elif "layers" not in given:
                config["layers"] = layers
            if "lowercase" in config:
                config["lowercase"] = source["lowercase"]
        if differ:
            raise NlpseqError(
                f"--init-from {self.path}: cannot transfer into a different "
                f"encoder: {'; '.join(differ)}; give the language model's "
                "settings or leave them out")
        if config.get("embeddings"):
            raise NlpseqError(
                f"--init-from {self.path} and --embeddings "
                f"{config['embeddings']} both give the word embeddings; "
                "choose one")
        return config

    def load(self, load):
        """Load the language model with ``load`` (:func:`nlpseq.tasks.load`,
        given by the trainer; TensorFlow started)."""
        try:
            self.task = load(self.path)
        except NlpseqError as error:
            raise NlpseqError(f"--init-from {self.path}: {error}") from None
        return self

    @property
    def preprocessor(self):
        return self.task.preprocessor

    def make_preprocessor(self, preprocessor_class, data, config):
        """The new model's preprocessor, from the language model's
        (the family's ``from_language_model``)."""
        return preprocessor_class.from_language_model(
            self.task.preprocessor, data, config)

    def copy_into(self, task):
        """Copy the embedding and recurrent layers of the language model's
        backbone into ``task.backbone`` (all the weights, for a family that
        continues its source); log what was transferred and what starts
        fresh.

        Returns:
            The names of the layers that took weights.
        """
        target, origin = task.backbone, self.task.backbone
        # (a family with a vocabulary of its own: the vectors by word)
        words = getattr(task.preprocessor, "own_words", None)
        by_word = words is not None
        pairs = [] if by_word else [
            (target.embedding, target.embedding.name, origin.embedding)]
        for index, (layer, wrapped) in enumerate(
                target.directions()[:task.config["layers"]]):
            label = (f"{target.recurrent_layers[index].name} (its forward "
                     "direction; the backward one starts fresh)"
                     if wrapped else layer.name)
            pairs.append((layer, label, origin.recurrent_layers[index]))
        if task.transfer == "all" and task.output_layer is not None:
            pairs.append((task.output_layer, task.output_layer.name,
                          self.task.output_layer))
        notes, rows = [], ""
        shape = target.embedding.weights[0].shape
        if by_word:
            found = _copy_rows_by_word(
                origin.embedding, self.task.preprocessor.encoder.vocabulary,
                target.embedding, words)
            notes.append(target.embedding.name)
            rows = (f": the {found:,} words the language model knows; the "
                    f"{shape[0] - 2 - found:,} others start fresh")
        for layer, label, source in pairs:
            partial = _copy_weights(source, layer)
            notes.append(label + (" (its inputs from the embedding; the "
                                  "others start fresh)" if partial else ""))
        copied = {id(v) for layer in [target.embedding] + [
            layer for layer, _, _ in pairs] for v in layer.weights}
        fresh = [layer.name for layer in task.model.layers
                 if any(id(v) not in copied
                        for v in layer.trainable_weights)]
        LOG.info("Started from %s: %s (%s × %s%s)%s", self.path,
                 target.embedding.name, f"{shape[0]:,}", shape[1], rows,
                 "".join(", " + note for note in notes[1:]))
        if fresh:
            LOG.info("Starting fresh: %s", ", ".join(fresh))
        return [target.embedding.name] * by_word + [
            layer.name for layer, _, _ in pairs]


def _copy_rows_by_word(source, source_words, target, target_words):
    """Each of ``target_words`` (after the padding and unknown entries)
    that ``source_words`` holds takes its row of the ``source`` embedding
    in the ``target`` one; the other rows keep their initial values.
    Returns how many were copied."""
    import numpy as np

    index = {word: row for row, word in enumerate(source_words)
             if row >= 2}
    table = np.asarray(source.weights[0].numpy())
    rows = np.array(target.weights[0].numpy())
    if rows.shape[1] != table.shape[1]:
        raise NlpseqError(
            f"--init-from: weight {target.weights[0].path} has shape "
            f"{tuple(rows.shape)}, the language model's {table.shape}")
    pairs = [(row, index[word]) for row, word in enumerate(target_words)
             if row >= 2 and word in index]
    if pairs:
        mine, theirs = map(list, zip(*pairs))
        rows[mine] = table[theirs]
        target.weights[0].assign(rows)
    return len(pairs)


def _copy_weights(source, target):
    """Assign ``source``'s weights to ``target``'s (same layer type). A
    target kernel with more input rows (more input features) takes the
    source's in its first rows. Returns whether a copy was partial."""
    import numpy as np

    partial = False
    if len(source.weights) < len(target.weights):
        raise NlpseqError(f"--init-from: layer {target.name} has "
                          f"{len(target.weights)} weights, the language "
                          f"model's {source.name} {len(source.weights)}")
    for mine, theirs in zip(target.weights, source.weights):
        value = np.asarray(theirs.numpy())
        shape = tuple(mine.shape)
        if shape == value.shape:
            mine.assign(value)
        elif (len(shape) == 2 and shape[1] == value.shape[1]
              and shape[0] > value.shape[0]):
            merged = np.array(mine.numpy())
            merged[:value.shape[0]] = value
            mine.assign(merged)
            partial = True
        else:
            raise NlpseqError(
                f"--init-from: weight {mine.path} has shape {shape}, the "
                f"language model's {value.shape}")
    return partial


def layer_groups(task):
    """The model's trainable variables in layer groups, top first: the
    layers that start fresh (the head; also the backward direction of a
    bidirectional layer), then each transferred recurrent layer from the
    top down, then the embedding. (A first layer that also reads character
    features is one group: its input weights for them are in it.)"""
    backbone = task.backbone
    recurrent = [layer for layer, _ in
                 backbone.directions()[:task.config["layers"]]]
    transferred = [list(layer.trainable_variables)
                   for layer in [backbone.embedding] + recurrent]
    keys = {id(v) for group in transferred for v in group}
    head = [v for v in task.model.trainable_variables if id(v) not in keys]
    groups = [head] + transferred[:0:-1] + [transferred[0]]
    return [group for group in groups if group]
