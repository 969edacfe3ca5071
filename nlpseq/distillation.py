"""Train a classifier on a trained one's probabilities: ``--teacher DIR``.

Knowledge distillation (Hinton et al., 2015, "Distilling the knowledge in
a neural network"): a smaller *student* (one direction instead of two,
fewer units, shorter texts) learns from the trained *teacher*'s class
probabilities instead of the labels alone, over the training texts and,
with ``--unlabelled SPEC``, texts nobody labelled. ``nlpseq <app> distill``
runs it; a run is a training like any other (checkpoints, ``--resume``,
the kept epoch chosen on the labelled validation data).

What the student takes from the teacher:

- its **preprocessor**: the vocabulary and tokenization and the class
  names (the student's ``--max-length`` and ``--truncate`` are its own);
- its **settings** where not given: the encoder, the head, the data
  (``--data``, ``--valid``); the vocabulary and n-gram settings are the
  teacher's, and a different value given is refused;
- its **n-gram model** (``--ngram-buckets``), copied, not refitted, so the
  student's network learns what the teacher's network adds to it;
- the **weights** of each part whose shapes match: the embedding, and each
  recurrent layer (a one-direction student's layer takes the teacher's
  forward direction). The log says which parts start fresh;
- the **targets**: the teacher's probabilities of every training text
  (its own preprocessing, whole model, cascade off), computed once and
  kept in the run's folder (``teacher_targets.npz``, published with the
  model, with a fingerprint of the texts they are of), so a resumed run
  does not need the teacher again. The loss is
  the cross-entropy against them (for two classes, the binary one against
  the teacher's probability of the second class).

Data flow: :class:`Teacher` reads the folder's ``config.json`` and checks
it (:meth:`Teacher.adopt`, before TensorFlow starts); the trainer loads the
teacher (:meth:`Teacher.load`), takes its preprocessor
(:meth:`Teacher.make_preprocessor`), copies the weights into the newly
built student (:meth:`Teacher.copy_into`), and gets the targets of the
training texts from :func:`soft_targets`.
"""

from __future__ import annotations

import os
from pathlib import Path

from nlpseq.config import flag
from nlpseq.errors import NlpseqError
from nlpseq.log import LOG

#: The settings that are the teacher's: its preprocessor and its n-gram
#: model are the student's.
SHARED = ("vocab_size", "min_count", "lowercase", "ngram_buckets",
          "ngram_c", "ngram_weight")
#: The training run's settings, which the student does not take from the
#: teacher (its own defaults, or what is given).
OWN = ("epochs", "batch_size", "learning_rate", "lr_decay", "lr_decay_after",
       "weight_average", "average_last", "clip_norm", "patience", "keep",
       "distribute", "devices", "precision", "jit_compile", "monitor",
       "init_from", "lr_schedule", "warmup", "lr_ratio", "discriminative_lr",
       "unfreeze_every", "teacher", "unlabelled")
#: The file of the teacher's probabilities in the run's (and then the
#: model's) folder; :data:`nlpseq.folder.REPLACED` names it too.
TARGETS = "teacher_targets.npz"


class Teacher:
    """The trained classifier of ``--teacher``."""

    def __init__(self, path):
        from nlpseq.folder import ModelFolder

        self.path = Path(path)
        self.shown = f"--teacher {path}"
        try:
            entries = ModelFolder(self.path).read_config()
        except NlpseqError as error:
            raise NlpseqError(f"{self.shown}: {error}") from None
        self.app = entries.get("app")
        self.config = dict(entries.get("config", {}))
        self.task = None

    def adopt(self, config, task_class):
        """``config`` with the teacher's settings where not given.

        Raises:
            NlpseqError: a teacher of another app, ``--init-from`` as
                well, or a given setting of :data:`SHARED` that differs
                from the teacher's.
        """
        if self.app != task_class.name:
            raise NlpseqError(
                f"{self.shown}: a model of the '{self.app}' app; a "
                f"{task_class.name} model learns from a {task_class.name} "
                "model")
        if config.get("init_from"):
            raise NlpseqError(
                f"{self.shown} and --init-from {config['init_from']} both "
                "give the vocabulary and the first weights; choose one")
        given = getattr(config, "given", {})
        differ = [f"{flag(name)} {config[name]} (the teacher's: "
                  f"{self.config.get(name)})" for name in SHARED
                  if name in given and name in self.config
                  and config[name] != self.config[name]]
        if differ:
            raise NlpseqError(
                f"{self.shown}: the student reads text as its teacher and "
                f"keeps its n-gram model, but {'; '.join(differ)}; leave "
                "them out")
        for name, value in self.config.items():
            if name in config and name not in given and name not in OWN:
                config[name] = value
        if "valid" not in given and "valid_split" in given:
            config["valid"] = None  # (the split asked for, not the teacher's)
        for name in ("data", "valid"):
            spec = config.get(name)
            if name not in given and spec and not spec.startswith(
                    ("tfds:", "sample:")) and not os.path.exists(spec):
                raise NlpseqError(
                    f"{self.shown}: the teacher's {flag(name)} {spec} is "
                    f"not found (the student trains on the teacher's data "
                    f"unless given); give {flag(name)}")
        if config.get("valid") is None and config.get("data") and \
                config["data"] == self.config.get("data") and any(
                    config.get(name) != self.config.get(name)
                    for name in ("seed", "valid_split")):
            LOG.warning(
                "%s: the validation texts held out of the teacher's data "
                "are not the teacher's (another --seed or --valid-split): "
                "the teacher trained on some of them, so the student's "
                "validation figures are optimistic; give --valid", self.shown)
        # (a resumed run finds it from any working folder)
        config["teacher"] = str(self.path.resolve())
        return config

    def check_folder(self, folder):
        """Refuse to train the student into the teacher's own folder."""
        if Path(folder).resolve() == self.path.resolve():
            raise NlpseqError(
                f"{self.shown}: --model-dir is the teacher's own folder; "
                "the student would replace its teacher; give another "
                "--model-dir")

    def load(self, load):
        """Load the teacher with ``load`` (:func:`nlpseq.tasks.load`; the
        trainer's, TensorFlow started)."""
        try:
            self.task = load(self.path)
        except NlpseqError as error:
            raise NlpseqError(f"{self.shown}: {error}") from None
        if getattr(self.task.preprocessor, "cascade", None):
            # (in memory only: the student learns the whole model)
            self.task.set_cascade(None)
        return self

    def make_preprocessor(self, preprocessor_class, data, config):
        """The student's preprocessor: the teacher's vocabulary,
        tokenization and class names, the student's length settings, no
        cascade (``nlpseq <app> cascade`` chooses the student's own).

        Raises:
            NlpseqError: a class of ``data`` the teacher does not know.
        """
        teacher = self.task.preprocessor
        unknown = sorted(set(data.class_names()) - set(teacher.class_names))
        if unknown:
            raise NlpseqError(
                f"{data.source}: classes the teacher does not know: "
                f"{', '.join(unknown)} (it knows "
                f"{', '.join(teacher.class_names)})")
        return preprocessor_class(config, teacher.encoder.vocabulary,
                                  teacher.class_names, teacher.tokenization)

    def copy_into(self, task):
        """Copy the teacher's n-gram model, and each part of its backbone
        whose weights have the student's shapes, into ``task``; log what
        was copied and what starts fresh.

        Returns:
            The names of the student's layers that took weights.
        """
        origin, target = self.task, task
        pairs = [(target.backbone.embedding, origin.backbone.embedding)]
        taught = origin.backbone.directions()
        for index, (layer, _) in enumerate(target.backbone.directions()):
            if index >= len(taught):
                break
            whole = target.backbone.recurrent_layers[index]
            if _fits(origin.backbone.recurrent_layers[index], whole):
                pairs.append((whole, origin.backbone.recurrent_layers[index]))
            else:
                pairs.append((layer, taught[index][0]))
        if getattr(target, "ngram_logits", None) is not None:
            pairs.append((target.ngram_logits, origin.ngram_logits))
        copied = []
        for mine, theirs in pairs:
            if _fits(theirs, mine):
                for variable, value in zip(mine.weights, theirs.weights):
                    variable.assign(value.numpy())
                copied.append(mine)
        names = {id(v) for layer in copied for v in layer.weights}
        fresh = [layer.name for layer in task.model.layers
                 if any(id(v) not in names for v in layer.weights)
                 and layer.weights]
        LOG.info("Distilling %s: copied %s", self.path,
                 ", ".join(layer.name for layer in copied) or "nothing")
        if fresh:
            LOG.info("Starting fresh: %s", ", ".join(fresh))
        return [layer.name for layer in copied]


def _fits(source, target):
    """Whether ``source``'s weights have ``target``'s shapes, in order."""
    if source is None or target is None:
        return False
    mine, theirs = target.weights, source.weights
    return len(mine) == len(theirs) > 0 and all(
        tuple(a.shape) == tuple(b.shape) for a, b in zip(mine, theirs))


def read_unlabelled(config):
    """The texts of ``--unlabelled`` (:func:`nlpseq.data.corpus.read_corpus`;
    lines without a word are skipped).

    Raises:
        NlpseqError: no ``--teacher`` to label them, or no text.
    """
    from nlpseq.data.corpus import read_corpus

    spec = config["unlabelled"]
    if not config.get("teacher"):
        raise NlpseqError(f"--unlabelled {spec}: texts without labels need "
                          "a --teacher to label them (nlpseq <app> distill)")
    try:
        lines = read_corpus(spec).lines
    except NlpseqError as error:
        raise NlpseqError(f"--unlabelled: {error}") from None
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise NlpseqError(f"--unlabelled {spec}: no texts to read")
    LOG.info("Unlabelled data: %s texts from %s", f"{len(texts):,}", spec)
    return texts


def _probabilities(task, texts, chunk=4096):
    """``task.predict_probabilities(texts)``, with a progress line a
    chunk."""
    import time

    import numpy as np

    parts, start = [], time.monotonic()
    for first in range(0, len(texts), chunk):
        parts.append(np.asarray(task.predict_probabilities(
            texts[first:first + chunk]), "float32"))
        done = min(first + chunk, len(texts))
        rate = done / max(time.monotonic() - start, 1e-9)
        LOG.info("The teacher's probabilities: %s of %s texts (%.0f a "
                 "second)", f"{done:,}", f"{len(texts):,}", rate)
    return np.concatenate(parts) if parts else np.zeros((0, 2), "float32")


def fingerprint(texts):
    """A SHA-256 of ``texts`` in order: which texts the kept targets are
    of."""
    import hashlib

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def soft_targets(teacher, texts, path, load=None):
    """The teacher's probabilities of ``texts`` (``[n]``, the second
    class's, for two classes; else ``[n, classes]``), kept in ``path``.

    A file there from an earlier start of the same run, of the same texts
    in the same order (:func:`fingerprint`), is read instead, and the
    teacher is not needed; otherwise ``teacher`` (a :class:`Teacher`, or a
    function that makes one; loaded with ``load`` if it is not yet)
    computes them, and they are written atomically.
    """
    import numpy as np

    path, digest = Path(path), fingerprint(texts)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as kept:
                targets, of = kept["targets"], str(kept["texts"])
        except (OSError, ValueError, KeyError):
            targets, of = None, None
        if of == digest and len(targets) == len(texts) and \
                np.isfinite(targets).all():
            LOG.info("The teacher's probabilities of %s texts, from %s",
                     f"{len(texts):,}", path)
            return targets
        LOG.warning("%s is not of these texts; the teacher computes "
                    "them again", path)
    if callable(teacher):
        teacher = teacher()
    if teacher.task is None:
        teacher.load(load)
    probabilities = _probabilities(teacher.task, list(texts))
    if not np.isfinite(probabilities).all():
        raise NlpseqError(f"{teacher.shown}: the teacher's probabilities "
                          "are not finite; it cannot teach")
    targets = (probabilities[:, 1] if probabilities.shape[1] == 2
               else probabilities)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez(handle, targets=targets, texts=np.asarray(digest))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return targets


__all__ = ["Teacher", "fingerprint", "read_unlabelled", "soft_targets",
           "SHARED", "TARGETS"]
