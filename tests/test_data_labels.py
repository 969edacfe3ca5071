"""LabelledTexts, class names and label encoding (nlpseq.data.labelled)."""

import numpy as np
import pytest

from nlpseq.data import LabelledTexts, class_names, encode_labels, label_name
from nlpseq.errors import NlpseqError


def test_class_names_of_strings_are_sorted_and_unique():
    assert class_names(["pos", "neg", "pos", "neg"]) == ["neg", "pos"]


def test_class_names_of_multiclass_strings():
    labels = ["sports", "world", "business", "sci/tech", "world"]
    assert class_names(labels) == ["business", "sci/tech", "sports", "world"]


def test_class_names_of_ints_sort_numerically():
    assert class_names([0, 1, 1, 0]) == ["0", "1"]
    assert class_names([10, 2, 1, 2, 10]) == ["1", "2", "10"]


def test_class_names_of_booleans():
    assert class_names([True, False, True]) == ["False", "True"]


def test_class_names_of_numpy_scalars_are_plain_names():
    assert class_names(np.array([3, 1, 3])) == ["1", "3"]
    assert class_names([np.bool_(True), np.bool_(False)]) == ["False", "True"]


def test_class_names_mixing_strings_and_numbers_sort_as_strings():
    # 1 and "1" print the same, so they are one class.
    assert class_names([1, "1", "b", 10]) == ["1", "10", "b"]


def test_label_name_is_the_string_form():
    assert [label_name(v) for v in ("pos", 1, True, np.int64(2))] == [
        "pos", "1", "True", "2"]


def test_encode_labels_gives_class_positions():
    codes = encode_labels(["pos", "neg", "pos"], ["neg", "pos"])
    assert codes.dtype == np.int64
    assert codes.tolist() == [1, 0, 1]


def test_encode_labels_matches_by_name_across_types():
    # Training labels were ints (CSV), validation labels strings (JSON).
    classes = class_names([0, 1, 1])
    assert encode_labels(["1", "0"], classes).tolist() == [1, 0]
    assert encode_labels([True, False], class_names([False, True])).tolist() == [
        1, 0]


def test_encode_labels_names_unknown_labels():
    with pytest.raises(NlpseqError) as caught:
        encode_labels(["pos", "neutral", "neg", "neutral", "mixed"],
                      ["neg", "pos"], source="valid.csv")
    assert str(caught.value) == (
        "valid.csv: labels not among the training classes: 'neutral' "
        "(2 examples), 'mixed' (1 example); the classes are: neg, pos")


def test_encode_labels_lists_at_most_five_unknown_labels():
    with pytest.raises(NlpseqError, match=r"'e' \(1 example\), and 3 more;"):
        encode_labels(list("abcdefgh"), ["z"])


def test_labelled_texts_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        LabelledTexts(["a", "b"], ["x"], "toy")


def test_shuffled_is_deterministic_and_keeps_pairs():
    data = LabelledTexts([f"t{i}" for i in range(50)], list(range(50)), "toy",
                         skipped_empty=4)
    first, again, other = data.shuffled(7), data.shuffled(7), data.shuffled(8)
    assert first.texts == again.texts
    assert first.texts != other.texts
    assert first.texts != data.texts
    assert sorted(first.labels) == data.labels
    assert all(text == f"t{label}" for text, label in zip(first.texts,
                                                          first.labels))
    assert (first.source, first.skipped_empty) == ("toy", 4)
    assert data.labels == list(range(50))  # the original is unchanged
