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


# -- the stratified held-out split ----------------------------------------------


def _split(labels, fraction, seed=0):
    from nlpseq.tasks.classifier import ClassifierTask

    data = LabelledTexts([f"text {i}" for i in range(len(labels))], labels,
                         "x.csv")
    task = ClassifierTask({"seed": seed})
    return task.split_data(data, fraction)


def test_split_keeps_each_class_fraction_in_validation():
    labels = ["a"] * 500 + ["b"] * 300 + ["c"] * 200
    train, valid = _split(np.random.default_rng(0).permutation(labels)
                          .tolist(), 0.1)
    counts = {name: valid.labels.count(name) for name in "abc"}
    assert counts == {"a": 50, "b": 30, "c": 20}
    assert len(train) == 900
    assert sorted(train.texts + valid.texts) == sorted(
        f"text {i}" for i in range(1000))


def test_split_of_many_small_classes_never_holds_a_whole_class_out():
    # 1000 classes x 3 examples: 300 classes give one example each
    labels = [f"c{i}" for i in range(1000) for _ in range(3)]
    train, valid = _split(labels, 0.1)
    assert len(valid) == 300
    assert set(train.labels) == set(labels)  # every class trains
    assert max(valid.labels.count(name) for name in set(valid.labels)) == 1


def test_split_keeps_a_single_example_class_in_training():
    labels = ["a"] * 9 + ["b"] * 9 + ["rare"]
    train, valid = _split(labels, 0.3)
    assert "rare" in train.labels and "rare" not in valid.labels
    assert valid.labels.count("a") == valid.labels.count("b") == 3


def test_split_is_seeded_and_deterministic():
    labels = [f"c{i % 7}" for i in range(100)]
    first = _split(labels, 0.25, seed=1)[1].texts
    assert _split(labels, 0.25, seed=1)[1].texts == first
    assert len(first) == 25


def test_split_with_only_single_example_classes_is_an_error():
    with pytest.raises(NlpseqError) as caught:
        _split(["a", "b", "c", "d"], 0.5)
    assert str(caught.value) == (
        "x.csv: every class has a single text; none can be held out for "
        "validation (--valid-split 0.5); give --valid")
