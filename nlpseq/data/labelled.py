"""Labelled texts, their class names, and label encoding.

Every reader in :mod:`nlpseq.data` returns a :class:`LabelledTexts`: the texts,
their raw label values (strings, ints or booleans, as the file holds them), where
they came from, and how many empty texts were skipped. A label's *name* is its
string form (``"pos"``, ``"1"``, ``"True"``); names are what a model's classes
are called, so labels from files of different formats match as long as they
print the same.

Example:
    >>> data = LabelledTexts(["good", "bad", "fine"], ["pos", "neg", "pos"], "x.csv")
    >>> class_names(data.labels)
    ['neg', 'pos']
    >>> encode_labels(data.labels, ["neg", "pos"]).tolist()
    [1, 0, 1]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from nlpseq.errors import NlpseqError


@dataclass
class LabelledTexts:
    """Texts with one label each, in reading order.

    Attributes:
        texts: the texts (never empty or whitespace-only).
        labels: one raw label value per text (``str``, ``int``, ``bool``...).
        source: where they came from (a path, or ``tfds:NAME:SPLIT``), for
            messages.
        skipped_empty: how many empty or whitespace-only texts were left out.

    Example:
        >>> data = LabelledTexts(["a", "b"], [0, 1], "toy.csv", skipped_empty=3)
        >>> len(data), data.class_names()
        (2, ['0', '1'])
    """

    texts: list[str]
    labels: list
    source: str
    skipped_empty: int = 0

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def class_names(self) -> list[str]:
        """The sorted label names of these texts; see :func:`class_names`."""
        return class_names(self.labels)

    def shuffled(self, seed: int = 0) -> LabelledTexts:
        """A copy in a seeded random order (same seed, same order).

        Args:
            seed: the random seed; the order depends only on it and the length.

        Example:
            >>> LabelledTexts(["a", "b", "c"], [1, 2, 3], "x").shuffled(0).labels
            [3, 1, 2]
        """
        order = np.random.default_rng(seed).permutation(len(self.texts))
        return LabelledTexts(
            texts=[self.texts[i] for i in order],
            labels=[self.labels[i] for i in order],
            source=self.source,
            skipped_empty=self.skipped_empty,
        )


def _native(value):
    """A NumPy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def label_name(label) -> str:
    """The name of one label value: its string form.

    Args:
        label: a raw label (``str``, ``int``, ``bool``, or a NumPy scalar).

    Example:
        >>> label_name("pos"), label_name(1), label_name(True)
        ('pos', '1', 'True')
    """
    return str(_native(label))


def class_names(labels) -> list[str]:
    """The sorted, unique names of some labels.

    Numbers and booleans sort numerically (``2`` before ``10``, ``False``
    before ``True``); as soon as one label is a string, all sort as strings.
    Either way the result holds strings.

    Args:
        labels: raw label values, e.g. ``LabelledTexts.labels``.

    Example:
        >>> class_names([10, 2, 1, 2])
        ['1', '2', '10']
        >>> class_names(["pos", "neg", "pos"])
        ['neg', 'pos']
    """
    unique = {}
    for label in labels:
        value = _native(label)
        unique.setdefault(str(value), value)
    values = list(unique.values())
    if all(isinstance(v, (bool, int, float)) for v in values):
        values.sort(key=lambda v: (float(v), str(v)))
    else:
        values.sort(key=str)
    return [str(v) for v in values]


def encode_labels(labels, class_names, source: str | None = None) -> np.ndarray:
    """Labels as class indices (positions in ``class_names``).

    Args:
        labels: raw label values.
        class_names: the class names, usually ``class_names(training_labels)``.
        source: where the labels came from, to name it in the error.

    Returns:
        An ``int64`` array of the same length as ``labels``.

    Raises:
        NlpseqError: a label is not among ``class_names`` (e.g. validation data
            holding a label that the training data never had).

    Example:
        >>> encode_labels(["pos", "neg"], ["neg", "pos"]).tolist()
        [1, 0]
    """
    index = {name: i for i, name in enumerate(class_names)}
    codes = np.zeros(len(labels), dtype=np.int64)
    unknown = Counter()
    for i, label in enumerate(labels):
        name = label_name(label)
        position = index.get(name)
        if position is None:
            unknown[name] += 1
        else:
            codes[i] = position
    if unknown:
        shown = [f"{name!r} ({count} example{'s' if count > 1 else ''})"
                 for name, count in unknown.most_common(5)]
        if len(unknown) > 5:
            shown.append(f"and {len(unknown) - 5} more")
        prefix = f"{source}: " if source else ""
        raise NlpseqError(
            f"{prefix}labels not among the training classes: {', '.join(shown)}; "
            f"the classes are: {', '.join(class_names)}")
    return codes


def stratified_split(labels, count: int, seed: int = 0) -> set:
    """The positions of about ``count`` examples to hold out for validation,
    the same fraction of each class (a stratified split).

    Each class gives ``count / len(labels)`` of its examples, rounded down;
    the examples still missing come from the classes with the largest
    remainders (ties in a seeded random order). A class keeps at least one
    example in training, so a class with a single example is never held
    out. A class gives its last examples in ``labels``' order (already
    shuffled by the readers). The same labels, ``count`` and ``seed`` give
    the same positions.

    Args:
        labels: the raw labels, in the data's order.
        count: how many examples to hold out in all.
        seed: the seed of the tie-breaking order.

    Example:
        >>> sorted(stratified_split(["a", "a", "b", "b", "b", "b", "c"], 3))
        [1, 4, 5]
    """
    by_class = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label_name(label), []).append(index)
    names = class_names(labels)
    fraction = count / max(1, len(labels))
    quotas, remainders = {}, {}
    for name in names:
        size = len(by_class[name])
        share = size * fraction
        quotas[name] = min(int(share), size - 1)
        remainders[name] = share - int(share)
    missing = count - sum(quotas.values())
    order = np.random.default_rng(seed).permutation(len(names))
    ranked = sorted(range(len(names)),
                    key=lambda i: (-remainders[names[i]], order[i]))
    for position in ranked:
        if missing <= 0:
            break
        name = names[position]
        if quotas[name] < len(by_class[name]) - 1:
            quotas[name] += 1
            missing -= 1
    return {index for name in names if quotas[name]
            for index in by_class[name][-quotas[name]:]}
