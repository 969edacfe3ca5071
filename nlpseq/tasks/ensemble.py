"""Ensembles: several trained translation models decoding as one.

:func:`ensemble` makes, of K models of one sequence-to-sequence app
trained apart (other seeds, sizes or data orders) but sharing their
vocabularies, a task of the same app whose every decoding step runs the K
decoders on the same prefix and scores the next word by the mean of their
log-probabilities; greedy and beam search, ``predict`` and every exported
signature then decode with that mean, in one search (Hansen and Salamon
1990; the usual ensembling of neural translation systems). Its export is
one SavedModel holding the K models, served as any other.

Example:
    >>> both = ensemble([Task.load("a"), Task.load("b")])
    >>> both.translate_lines(["ein hund"])
    >>> both.export("saved_models/translation-ensemble/export")
"""

from __future__ import annotations

from nlpseq.errors import NlpseqError


class EnsembleDecoding:
    """The parts of a sequence-to-sequence task that an ensemble changes
    (mixed into the members' own class by :func:`ensemble`)."""

    members = ()

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

    def serving_layers(self):
        layers = []
        for member in self.members:
            layers += [member.model] + list(member.serving_layers())
        return layers


def check_members(members):
    """Refuse what cannot decode as one: no models, models of other apps or
    families, vocabularies or source readings that differ.

    Raises:
        NlpseqError: which model differs and in what.
    """
    if not members:
        raise NlpseqError("ensemble: no models given")
    first = members[0]
    if getattr(first, "family", None) != "seq2seq":
        raise NlpseqError(f"ensemble: {first.name} models cannot be "
                          "ensembled (only sequence-to-sequence apps)")
    for member in members[1:]:
        where = f"ensemble: {_where(member)} and {_where(first)}"
        if type(member) is not type(first):
            raise NlpseqError(f"{where} are models of different apps "
                              f"({member.name}, {first.name})")
        for side in ("source", "target"):
            if getattr(member, f"{side}_encoder").vocabulary != getattr(
                    first, f"{side}_encoder").vocabulary:
                raise NlpseqError(f"{where} have different {side} "
                                  "vocabularies; an ensemble needs the "
                                  "same (train them on the same data with "
                                  "the same --vocab-size and --min-count)")
        for name in ("max_length", "lowercase", "source_lang",
                     "target_lang", "reverse"):
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
    combined = type(f"{cls.__name__}Ensemble", (EnsembleDecoding, cls), {})
    task = combined(dict(first.config), first.preprocessor)
    task.members = members
    task.model = first.model
    task.options = dict(first.options)
    task.folder = None
    return task


__all__ = ["EnsembleDecoding", "check_members", "ensemble"]
