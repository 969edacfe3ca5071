"""Reading TensorFlow Datasets: tfds:NAME[:SPLIT] (nlpseq.data.tfds).

Nothing here touches the network: ``imdb_reviews`` is read through
``tfds.testing.mock_data`` (random examples built from the dataset's code), and
the real load path runs on two toy datasets defined and prepared here, offline.
"""

import numpy as np
import pytest

from nlpseq.data import read_labelled_texts, read_tfds
from nlpseq.data.tfds import parse_tfds_spec
from nlpseq.errors import NlpseqError

tfds = pytest.importorskip("tensorflow_datasets")

TOY_TRAIN = ["Great", "Awful", "  ", "Fine", "Dull", "Superb"]


class NlpseqToyReviews(tfds.core.GeneratorBasedBuilder):
    """Supervised keys (review, stars), with a decoy text feature first."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "title": tfds.features.Text(),
                "review": tfds.features.Text(),
                "stars": tfds.features.ClassLabel(names=["bad", "good"]),
                "votes": np.int32,
            }),
            supervised_keys=("review", "stars"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(TOY_TRAIN),
                "test": self._generate_examples(["Meh"])}

    def _generate_examples(self, texts):
        for i, text in enumerate(texts):
            yield i, {"title": f"title {i}", "review": text,
                      "stars": i % 2, "votes": 10 * i}


class NlpseqToyTopics(tfds.core.GeneratorBasedBuilder):
    """No supervised keys: the first text and first ClassLabel are used."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "id": np.int64,
                "body": tfds.features.Text(),
                "topic": tfds.features.ClassLabel(names=["art", "law", "war"]),
            }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, topic in enumerate(["war", "art", "law", "art"]):
            yield i, {"id": i, "body": f"about {topic}", "topic": topic}


class NlpseqToyOffline(tfds.core.GeneratorBasedBuilder):
    """A dataset whose download fails, as without network."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(),
                "label": tfds.features.ClassLabel(names=["a", "b"])}))

    def _split_generators(self, dl_manager):
        raise ConnectionError("Network is unreachable\nretrying did not help")

    def _generate_examples(self):  # pragma: no cover - never reached
        yield 0, {"text": "x", "label": "a"}


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    """A TFDS data folder with the toy datasets prepared (offline)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for builder in (NlpseqToyReviews, NlpseqToyTopics):
        builder(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


@pytest.mark.parametrize("spec, expected", [
    ("tfds:imdb_reviews", ("imdb_reviews", "train")),
    ("tfds:imdb_reviews:test", ("imdb_reviews", "test")),
    ("tfds:glue/sst2:validation", ("glue/sst2", "validation")),
    ("tfds:imdb_reviews:train[:80%]", ("imdb_reviews", "train[:80%]")),
    ("tfds:imdb_reviews:1.0.0", ("imdb_reviews:1.0.0", "train")),
    ("tfds:imdb_reviews:1.*.*:test[10:20]", ("imdb_reviews:1.*.*", "test[10:20]")),
])
def test_parse_spec(spec, expected):
    assert parse_tfds_spec(spec) == expected


@pytest.mark.parametrize("spec", ["tfds:", "tfds:imdb_reviews:", "tfds::test"])
def test_parse_bad_spec(spec):
    with pytest.raises(NlpseqError) as caught:
        parse_tfds_spec(spec)
    assert str(caught.value) == (
        f"{spec}: expected tfds:NAME[:SPLIT], e.g. tfds:imdb_reviews:test")


def test_mocked_imdb_reviews_through_the_dispatcher():
    with tfds.testing.mock_data(num_examples=12,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        data = read_labelled_texts("tfds:imdb_reviews:test", shuffle=False)
        again = read_labelled_texts("tfds:imdb_reviews:test", seed=1)
    assert data.source == "tfds:imdb_reviews:test"
    assert len(data) + data.skipped_empty == 12
    assert len(data) > 0
    assert set(data.labels) <= {"neg", "pos"}
    assert all(isinstance(text, str) and text.strip() for text in data.texts)
    assert sorted(again.texts) == sorted(data.texts)


def test_supervised_keys_choose_the_features(toy_dir):
    data = read_tfds("nlpseq_toy_reviews", data_dir=toy_dir)
    # TFDS stores examples in its own order; compare as pairs.
    expected = {(text, ["bad", "good"][i % 2])
                for i, text in enumerate(TOY_TRAIN) if text.strip()}
    assert set(zip(data.texts, data.labels)) == expected
    assert data.skipped_empty == 1
    assert data.source == "tfds:nlpseq_toy_reviews:train"


def test_first_text_and_class_label_without_supervised_keys(toy_dir):
    data = read_tfds("nlpseq_toy_topics", data_dir=toy_dir)
    assert sorted(zip(data.texts, data.labels)) == [
        ("about art", "art"), ("about art", "art"), ("about law", "law"),
        ("about war", "war")]


def test_explicit_features_and_a_sliced_split(toy_dir):
    data = read_tfds("nlpseq_toy_reviews", "test", text_column="title",
                     label_column="votes", data_dir=toy_dir)
    assert (data.texts, data.labels) == (["title 0"], [0])
    data = read_tfds("nlpseq_toy_reviews", "train[:2]", data_dir=toy_dir)
    assert len(data) + data.skipped_empty == 2


def test_unknown_feature_lists_the_features(toy_dir):
    with pytest.raises(NlpseqError) as caught:
        read_tfds("nlpseq_toy_reviews", text_column="body", data_dir=toy_dir)
    assert str(caught.value) == (
        "tfds:nlpseq_toy_reviews:train: no feature 'body'; features: "
        "title (Text), review (Text), stars (ClassLabel), votes (Tensor)")


def test_text_feature_must_hold_text(toy_dir):
    with pytest.raises(NlpseqError) as caught:
        read_tfds("nlpseq_toy_reviews", text_column="votes", data_dir=toy_dir)
    assert str(caught.value) == (
        "tfds:nlpseq_toy_reviews:train: feature 'votes' is not text (Tensor)")


def test_unknown_split(toy_dir):
    with pytest.raises(NlpseqError) as caught:
        read_tfds("nlpseq_toy_reviews", "valid", data_dir=toy_dir)
    assert str(caught.value) == (
        "tfds:nlpseq_toy_reviews:valid: Unknown split 'valid'. "
        "Should be one of ['train', 'test'].")


def test_not_downloaded(tmp_path):
    with pytest.raises(NlpseqError) as caught:
        read_tfds("nlpseq_toy_reviews", data_dir=str(tmp_path), download=False)
    message = str(caught.value)
    assert message.startswith(
        "tfds:nlpseq_toy_reviews:train: Dataset nlpseq_toy_reviews: could not "
        f"find data in {tmp_path}")
    assert "\n" not in message


def test_download_failure_is_one_line(tmp_path):
    # (offline: the dataset is not prepared and cannot be downloaded; the
    # message says how to prepare it)
    with pytest.raises(NlpseqError) as caught:
        read_tfds("nlpseq_toy_offline", data_dir=str(tmp_path))
    assert str(caught.value) == (
        "tfds:nlpseq_toy_offline:train: the dataset is not prepared in "
        f"{tmp_path}/nlpseq_toy_offline/1.0.0 and cannot be downloaded and "
        "prepared here (Network is unreachable); prepare it where the "
        "network is reachable (tfds build nlpseq_toy_offline --data_dir DIR)"
        f" and copy DIR to {tmp_path}, or set TFDS_DATA_DIR to a prepared "
        "copy")


def test_unknown_dataset_through_the_dispatcher():
    with pytest.raises(NlpseqError) as caught:
        read_labelled_texts("tfds:nlpseq_no_such_dataset:test")
    assert str(caught.value) == (
        "tfds:nlpseq_no_such_dataset:test: Dataset nlpseq_no_such_dataset "
        "not found.")
