"""Tag schemes, entity spans and the CoNLL evaluation.

An entity is a span ``(type, start, end)`` of tokens (``end`` exclusive).
Tag schemes write spans as one tag per token:

- ``iob1`` (original CoNLL-2003): ``I-X`` inside an entity; ``B-X`` only to
  start an entity right after another of the same type;
- ``iob2``: ``B-X`` starts every entity, ``I-X`` continues it;
- ``bioes``: ``S-X`` a one-token entity; ``B-X``, ``I-X``..., ``E-X`` a
  longer one.

:func:`spans` reads tags with the chunk rules of the CoNLL shared task's
``conlleval`` script (extended to ``E-``/``S-``), which accept any of the
three schemes and repair what breaks them the way ``conlleval`` does (an
``I-X`` after ``O`` starts an entity). :func:`to_tags` writes spans in a
scheme; :func:`scheme_errors` finds the tags that break a declared scheme.
:func:`entity_scores` is ``conlleval``'s precision, recall and F1: an entity
counts only when its type and both boundaries match.

Example:
    >>> spans(["B-PER", "I-PER", "O", "B-LOC"])
    [('PER', 0, 2), ('LOC', 3, 4)]
    >>> to_tags([("PER", 0, 2), ("LOC", 3, 4)], 4, "bioes")
    ['B-PER', 'E-PER', 'O', 'S-LOC']
"""

from __future__ import annotations

SCHEMES = ("iob1", "iob2", "bioes")


def split_tag(tag):
    """``("B", "PER")`` of ``"B-PER"``; ``("O", "")`` of ``"O"``."""
    if tag == "O" or not tag:
        return "O", ""
    prefix, _, kind = tag.partition("-")
    if not kind or prefix not in ("B", "I", "E", "S"):
        return "I", tag  # a bare type: inside an entity of that type
    return prefix, kind


def _ends(prev, tag, prev_type, kind):
    if prev in ("E", "S"):
        return True
    if prev in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev != "O" and prev_type != kind


def _starts(prev, tag, prev_type, kind):
    if tag in ("B", "S"):
        return True
    if prev in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != kind


def spans(tags):
    """The entities of a tag sequence, by ``conlleval``'s chunk rules."""
    found, start = [], None
    prev, prev_type = "O", ""
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = split_tag(tag)
        if start is not None and _ends(prev, prefix, prev_type, kind):
            found.append((prev_type, start, index))
            start = None
        if _starts(prev, prefix, prev_type, kind):
            start = index
        prev, prev_type = prefix, kind
    return found


def to_tags(entities, length, scheme):
    """Tags of ``length`` tokens marking ``entities`` in ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    tags = ["O"] * length
    previous_end, previous_type = None, None
    for kind, start, end in sorted(entities, key=lambda e: e[1]):
        if scheme == "bioes":
            if end - start == 1:
                tags[start] = f"S-{kind}"
            else:
                tags[start] = f"B-{kind}"
                tags[start + 1:end - 1] = [f"I-{kind}"] * (end - start - 2)
                tags[end - 1] = f"E-{kind}"
        else:
            tags[start:end] = [f"I-{kind}"] * (end - start)
            if scheme == "iob2" or (previous_end == start
                                    and previous_type == kind):
                tags[start] = f"B-{kind}"
        previous_end, previous_type = end, kind
    return tags


def convert(tags, scheme):
    """The same entities written in another scheme."""
    return to_tags(spans(tags), len(tags), scheme)


def scheme_errors(tags, scheme):
    """Positions whose tag differs from the scheme's own writing of the
    sequence's entities (empty when the tags follow the scheme)."""
    canonical = convert(tags, scheme)
    return [i for i, (a, b) in enumerate(zip(tags, canonical)) if a != b]


def entity_types(tags):
    """The entity types a tag list names (``PER``, ``LOC``...), sorted."""
    return sorted({split_tag(t)[1] for t in tags} - {""})


def entity_scores(gold, predicted):
    """``conlleval``'s scores of predicted tag sequences against gold ones.

    Returns:
        ``{"precision", "recall", "f1", "accuracy", "entities",
        "predicted_entities", "tokens", "per_type": {type: {"precision",
        "recall", "f1", "support"}}}``; precision, recall and F1 in percent
        as ``conlleval`` prints them, accuracy over tokens in percent.
    """
    gold_set, predicted_set = set(), set()
    right_tokens = tokens = 0
    for number, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {number}: {len(g)} gold tags, "
                             f"{len(p)} predicted")
        gold_set.update((number,) + span for span in spans(g))
        predicted_set.update((number,) + span for span in spans(p))
        tokens += len(g)
        right_tokens += sum(a == b for a, b in zip(g, p))

    def score(gold_items, predicted_items):
        correct = len(gold_items & predicted_items)
        precision = 100.0 * correct / len(predicted_items) \
            if predicted_items else 0.0
        recall = 100.0 * correct / len(gold_items) if gold_items else 0.0
        f1 = (2 * precision * recall / (precision + recall)
              if precision + recall else 0.0)
        return {"precision": round(precision, 4), "recall": round(recall, 4),
                "f1": round(f1, 4)}

    result = score(gold_set, predicted_set)
    result.update({
        "accuracy": round(100.0 * right_tokens / tokens, 4) if tokens
        else 0.0,
        "entities": len(gold_set),
        "predicted_entities": len(predicted_set),
        "tokens": tokens,
    })
    kinds = sorted({s[1] for s in gold_set | predicted_set})
    result["per_type"] = {}
    for kind in kinds:
        g = {s for s in gold_set if s[1] == kind}
        p = {s for s in predicted_set if s[1] == kind}
        result["per_type"][kind] = dict(score(g, p), support=len(g))
    return result


def format_scores(scores):
    """``conlleval``-style text."""
    lines = [
        f"processed {scores['tokens']} tokens with {scores['entities']} "
        f"phrases; found: {scores['predicted_entities']} phrases",
        f"accuracy: {scores['accuracy']:6.2f}%; precision: "
        f"{scores['precision']:6.2f}%; recall: {scores['recall']:6.2f}%; "
        f"FB1: {scores['f1']:6.2f}",
    ]
    for kind, row in scores["per_type"].items():
        lines.append(f"{kind:>17}: precision: {row['precision']:6.2f}%; "
                     f"recall: {row['recall']:6.2f}%; FB1: {row['f1']:6.2f}"
                     f"  {row['support']}")
    return "\n".join(lines)
