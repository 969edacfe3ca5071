"""The tagger's contextual character embeddings: ``--char-lm MODEL_DIR``.

Character-level next-word models (``nlpseq next-word train --level char``,
one with ``--direction forward`` and one with ``--direction backward``)
give the tagger, for each word, the forward model's state after the word's
last character and the backward model's state before its first
(:class:`~nlpseq.layers.ContextualCharacterEmbeddings`, Akbik et al. 2018),
joined to the word embedding and the character features.

The models are read in three steps:

- :func:`check` (from ``TaggerTask.effective_config``, before TensorFlow
  starts and before anything is written): each folder is a character-level,
  case-keeping next-word model, whole (``config.json``,
  ``preprocessor.json``, ``model.keras``), one per direction, and
  ``--embeddings`` is not given;
- :func:`describe` (from the tagger's preprocessor): each model's direction,
  architecture and character vocabulary, which ``preprocessor.json`` keeps,
  so the tagger rebuilds its layer without the folders;
  :func:`layer_specs` maps the tagger's character ids to each model's;
- :func:`copy_weights` (before the first training step): the models'
  weights into the tagger's layer, which the tagger's ``model.keras`` then
  holds.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from nlpseq.config import Setting
from nlpseq.errors import NlpseqError
from nlpseq.log import LOG

#: The tagger's settings of the contextual character embeddings.
SETTINGS = (
    Setting("char_lm", str, None, "character-level next-word model(s) "
            "whose states are joined to each word (Flair's contextual "
            "embeddings): MODEL_DIR; a forward and a backward one: the "
            "option twice, or F,B; a list in a config file", multiple=True),
    Setting("fine_tune_char_lm", bool, False, "train the --char-lm models' "
            "weights with the tagger (else they stay frozen)"),
    Setting("char_lm_position", str, "word", "where the --char-lm models' "
            "state is read for a word: after its last character (the "
            "backward model: its first), or after the space that follows "
            "it in the model's reading order (Flair's with_whitespace)",
            choices=("word", "space")),
)
#: Words are cut to this many characters with ``--char-lm`` (20 without):
#: the language models read the sentence as written.
WORD_LENGTH = 50
_FILES = ("preprocessor.json", "model.keras")


def check(config):
    """Refuse a ``char_lm`` the tagger cannot use (one line naming the
    folder): a missing or damaged folder, a model that is not a next-word
    model, a word-level or lower-casing one, two of one direction, or
    ``--char-lm`` with ``--embeddings``."""
    paths = config.get("char_lm")
    if not paths:
        if config.get("fine_tune_char_lm"):
            raise NlpseqError("--fine-tune-char-lm needs --char-lm")
        given = getattr(config, "given", {})
        if "char_lm_position" in given:
            raise NlpseqError(f"{given['char_lm_position']}: "
                              "char_lm_position needs --char-lm")
        return config
    if config.get("embeddings"):
        raise NlpseqError(
            f"--char-lm {','.join(paths)} and --embeddings "
            f"{config['embeddings']} cannot be combined (the contextual "
            "character embeddings take the pretrained vectors' place); "
            "choose one")
    seen = {}
    for path in paths:
        direction = describe(path)["direction"]
        if direction in seen:
            raise NlpseqError(
                f"--char-lm {path}: a second {direction} model (after "
                f"{seen[direction]}); give one forward and one backward "
                "model, or one of them")
        seen[direction] = path
    return config


def describe(path):
    """A character language model's direction, architecture and
    vocabulary (``["", "[UNK]", ...]``), read without TensorFlow.

    Raises:
        NlpseqError: see :func:`check`.
    """
    from nlpseq.folder import ModelFolder
    from nlpseq.registry import APPS

    shown = f"--char-lm {path}"
    try:
        entries, files = ModelFolder(Path(path)).read(names=_FILES)
    except NlpseqError as error:
        raise NlpseqError(f"{shown}: {error}") from None
    app = entries.get("app")
    if not (app in APPS and APPS.get(app).family == "language_model"):
        raise NlpseqError(f"{shown}: a model of the '{app}' app; --char-lm "
                          "takes a character-level next-word model")
    config = dict(entries.get("config") or {})
    if config.get("level", "word") != "char":
        raise NlpseqError(f"{shown}: a {config.get('level', 'word')}-level "
                          "language model; --char-lm takes a character-level "
                          "one (nlpseq next-word train --level char)")
    if config.get("lowercase"):
        raise NlpseqError(f"{shown}: a lower-casing language model "
                          "(--lowercase); the tagger needs one that keeps the "
                          "case (train it with --no-lowercase)")
    try:
        state = json.loads(files["preprocessor.json"])["state"]
        vocabulary = state["vocabulary"]
        ok = (isinstance(vocabulary, list) and "\n" in vocabulary
              and all(isinstance(c, str) for c in vocabulary)
              and state.get("level") == "char")
        architecture = {name: config[name] for name in (
            "cell", "units", "layers", "embedding_dim")}
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise NlpseqError(f"{shown}: corrupted (preprocessor.json is not a "
                          "character vocabulary)")

    if not zipfile.is_zipfile(io.BytesIO(files["model.keras"])):
        raise NlpseqError(f"{shown}: corrupted model (model.keras is "
                          "damaged: not a whole .keras file)")
    return dict(architecture, path=str(path),
                direction=config.get("direction", "forward"),
                vocabulary=["", "[UNK]"] + vocabulary)


def characters(tagger_characters, models):
    """The tagger's character vocabulary with every character of the
    models' vocabularies added at its end (so that the models see every
    character they know)."""
    known = set(tagger_characters)
    added = []
    for model in models:
        for char in model["vocabulary"][2:]:
            if char not in known and not char.isspace():
                known.add(char)
                added.append(char)
    return list(tagger_characters) + added


def layer_specs(tagger_characters, models):
    """The ``language_models`` argument of
    :class:`~nlpseq.layers.ContextualCharacterEmbeddings`: each model's
    architecture, and its ids of the tagger's characters, of the space and
    of the end of line."""
    specs = []
    for model in models:
        index = {c: i for i, c in enumerate(model["vocabulary"])}
        char_map = [0, 1] + [index.get(c, 1) for c in tagger_characters[2:]]
        specs.append(dict(
            direction=model["direction"],
            vocabulary_size=len(model["vocabulary"]),
            embedding_dim=model["embedding_dim"], cell=model["cell"],
            units=model["units"], layers=model["layers"],
            space_id=index.get(" ", 1), end_of_line_id=index["\n"],
            char_map=char_map))
    return specs


def copy_weights(layer, models):
    """Copy each trained model's embedding and recurrent layers into
    ``layer`` (a :class:`~nlpseq.layers.ContextualCharacterEmbeddings`);
    log what was copied."""
    from nlpseq.tasks import load

    for number, model in enumerate(models):
        try:
            source = load(model["path"])
        except NlpseqError as error:
            raise NlpseqError(f"--char-lm {model['path']}: {error}") from None
        backbone = source.backbone
        pairs = [(layer.embeddings[number].embeddings,
                  backbone.embedding.embeddings)]
        for mine, theirs in zip(layer.recurrent[number],
                                backbone.recurrent_layers):
            pairs += list(zip(mine.weights, theirs.weights))
        for mine, theirs in pairs:
            if tuple(mine.shape) != tuple(theirs.shape):
                raise NlpseqError(
                    f"--char-lm {model['path']}: weight {theirs.path} has "
                    f"shape {tuple(theirs.shape)}, expected "
                    f"{tuple(mine.shape)} (the model changed since the "
                    "tagger read it)")
            mine.assign(theirs.numpy())
        LOG.info("Contextual character embeddings: the %s model %s "
                 "(%d × %s %s, %s)", model["direction"], model["path"],
                 model["layers"], model["units"], model["cell"],
                 "fine-tuned" if layer.fine_tune else "frozen")


__all__ = ["SETTINGS", "WORD_LENGTH", "characters", "check",
           "copy_weights", "describe", "layer_specs"]
