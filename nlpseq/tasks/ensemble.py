"""Ensembles: several trained models decoding as one.

:func:`ensemble` makes, of K models of one translation or language-model
app trained apart (other seeds, sizes or data orders) but sharing their
vocabularies, a task of the same app whose every decoding step runs the K
models on the same prefix and scores the next token by the mean of their
log-probabilities; greedy and beam search, sampling, ``predict`` and every
exported signature then decode with that mean, in one search (Hansen and
Salamon 1990; the usual ensembling of neural translation systems). Its
export is one SavedModel holding the K models, served as any other.

Example:
    >>> both = ensemble([Task.load("a"), Task.load("b")])
    >>> both.translate_lines(["ein hund"])
    >>> both.export("saved_models/translation-ensemble/export")
"""

from __future__ import annotations

from nlpseq.errors import NlpseqError


class EnsembleMembers:
    """What every ensemble shares: its members, whose models and serving
    layers its export tracks."""

    members = ()

    def serving_layers(self):
        layers = []
        for member in self.members:
            layers += [member.model] + list(member.serving_layers())
        return layers


class EnsembleDecoding(EnsembleMembers):
    """The parts of a sequence-to-sequence task that an ensemble changes
    (mixed into the members' own class by :func:`ensemble`)."""

    #: The settings that must be equal in every member, besides the
    #: vocabularies.
    same_settings = ("max_length", "lowercase", "source_lang",
                     "target_lang", "reverse", "subwords")

    def decoder_inputs(self, text):
        """Every member's context and states, one after the other; the
        source mask of the first (the members read the source alike)."""
        context, states, self._sizes = [], [], []
        mask = None
        for member in self.members:
            member_context, member_mask, member_states = \
                member.decoder_inputs(text)
            mask = member_mask if mask is None else mask
            context += list(member_context)
            states += list(member_states)
            self._sizes.append((len(member_context), len(member_states)))
        return tuple(context), mask, states

    def decode_step(self, token, states, *context):
        """The members' steps on ``token``: the mean of their
        log-probabilities, their new states, the first one's attention."""
        import tensorflow as tf

        log_probs, new_states, attention = [], [], None
        at_context = at_state = 0
        for member, (n_context, n_states) in zip(self.members, self._sizes):
            values, member_states, weights = member.decode_step(
                token, states[at_state:at_state + n_states],
                *context[at_context:at_context + n_context])
            at_context += n_context
            at_state += n_states
            log_probs.append(values)
            new_states += list(member_states)
            attention = weights if attention is None else attention
        return tf.add_n(log_probs) / len(log_probs), new_states, attention

class EnsembleLanguageModel(EnsembleMembers):
    """The parts of a language-model task that an ensemble changes: the
    logits after a prompt and after each step are the mean of the
    members' log-probabilities (whose softmax is their normalized
    geometric mean)."""

    same_settings = ("level", "direction", "lowercase", "split_punctuation",
                     "strip_html", "subwords")

    def step_model(self):
        """Every member's step model, built (eagerly: they copy their
        weights); the first one's."""
        models = [member.step_model() for member in self.members]
        return models[0]

    def _mean(self, logits):
        import tensorflow as tf

        return tf.add_n([tf.nn.log_softmax(x) for x in logits]) / len(logits)

    def prompt_logits(self, text):
        logits, states, self._sizes = [], [], []
        for member in self.members:
            member_logits, member_states = member.prompt_logits(text)
            logits.append(member_logits)
            states += list(member_states)
            self._sizes.append(len(member_states))
        return self._mean(logits), states

    def step_logits(self, tokens, states):
        logits, states = self._each(
            lambda member, own: member.step_logits(tokens, own)[:2], states)
        return logits, states, None

    def window_states(self, rows):
        states, self._sizes = [], []
        for member in self.members:
            member_states = member.window_states(rows)
            states += list(member_states)
            self._sizes.append(len(member_states))
        return states

    def window_logits(self, x, states):
        return self._each(
            lambda member, own: member.window_logits(x, own), states)

    def _each(self, call, states):
        """``call(member, its states) -> (logits, states)`` for every
        member, on its part of ``states``: the mean of the members'
        log-probabilities, and all their new states."""
        logits, new_states, at = [], [], 0
        for member, size in zip(self.members, self._sizes):
            member_logits, member_states = call(member,
                                                states[at:at + size])
            at += size
            logits.append(member_logits)
            new_states += list(member_states)
        return self._mean(logits), new_states


#: The mixin of each family that can be ensembled.
MIXINS = {"seq2seq": EnsembleDecoding,
          "language_model": EnsembleLanguageModel}
#: The vocabularies each family's members must share.
VOCABULARIES = {"seq2seq": ("source_encoder", "target_encoder"),
                "language_model": ("encoder",)}


def check_members(members):
    """Refuse what cannot decode as one: no models, models of other apps or
    families, vocabularies or source readings that differ.

    Raises:
        NlpseqError: which model differs and in what.
    """
    if not members:
        raise NlpseqError("ensemble: no models given")
    first = members[0]
    family = getattr(first, "family", None)
    if family not in MIXINS:
        raise NlpseqError(f"ensemble: {first.name} models cannot be "
                          "ensembled (only the translation and language-"
                          "model apps)")
    for member in members[1:]:
        where = f"ensemble: {_where(member)} and {_where(first)}"
        if type(member) is not type(first):
            raise NlpseqError(f"{where} are models of different apps "
                              f"({member.name}, {first.name})")
        for encoder in VOCABULARIES[family]:
            if getattr(member, encoder).vocabulary != getattr(
                    first, encoder).vocabulary:
                side = encoder.replace("_encoder", " ").replace(
                    "encoder", "")
                raise NlpseqError(f"{where} have different {side}"
                                  "vocabularies; an ensemble needs the "
                                  "same (train them on the same data with "
                                  "the same --vocab-size and --min-count, "
                                  "or --subwords)")
        for name in MIXINS[family].same_settings:
            if member.config.get(name) != first.config.get(name):
                raise NlpseqError(
                    f"{where} differ in --{name.replace('_', '-')} "
                    f"({member.config.get(name)!r} and "
                    f"{first.config.get(name)!r})")


def _where(task):
    folder = getattr(task, "folder", None)
    return str(folder.path) if folder is not None else "a model"


def ensemble(members):
    """A task of the members' app decoding with the mean of their
    log-probabilities (module docstring).

    Args:
        members: loaded (or trained) tasks of one sequence-to-sequence app,
            with the same vocabularies.

    Raises:
        NlpseqError: as :func:`check_members`.
    """
    members = list(members)
    check_members(members)
    first = members[0]
    cls = type(first)
    combined = type(f"{cls.__name__}Ensemble", (MIXINS[first.family], cls),
                    {})
    task = combined(dict(first.config), first.preprocessor)
    task.members = members
    task.model = first.model
    task.options = dict(first.options)
    task.folder = None
    return task


__all__ = ["EnsembleDecoding", "EnsembleLanguageModel", "EnsembleMembers",
           "check_members", "ensemble"]
