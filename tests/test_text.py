"""Tests of nlpseq.text: the TextEncoder layer and build_vocabulary."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpseq.text import TextEncoder, build_vocabulary

VOCABULARY = ["", "[UNK]", "the", "film", "was", "good", "bad", "!", ".",
              "don't", "été"]
ID = {token: index for index, token in enumerate(VOCABULARY)}


def encode(encoder, texts):
    """The ids of ``texts`` (the layer is called with a string tensor)."""
    ids = encoder(tf.constant(texts)).numpy()
    assert ids.dtype == np.int32
    return ids


def tokens(encoder, texts):
    return [[t.decode("utf-8") for t in row]
            for row in encoder.tokenize(texts).to_list()]


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder(VOCABULARY)


# -- tokenization -------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("A good<br />film", ["a", "good", "film"]),
    ("one<br/>two<br>three< br / >four", ["one", "two", "three", "four"]),
    ("Great, fun film!", ["great", ",", "fun", "film", "!"]),
    ("wait...what?!", ["wait", ".", ".", ".", "what", "?", "!"]),
    ("(8/10)", ["(", "8", "/", "10", ")"]),
    ("I don't know, it's fine",
     ["i", "don't", "know", ",", "it's", "fine"]),
    ("'quoted' words", ["'", "quoted", "'", "words"]),
    ("the dogs' bone", ["the", "dogs", "'", "bone"]),
    ("said 'rock'n'roll' loudly",
     ["said", "'", "rock'n'roll", "'", "loudly"]),
    ('"Quoted"', ['"', "quoted", '"']),
    ("ÉTÉ Ça ÖL", ["été", "ça", "öl"]),
    ("  spaced\tout \n text ", ["spaced", "out", "text"]),
    ("", []),
])
def test_tokenize(encoder, text, expected):
    assert tokens(encoder, [text]) == [expected]


def test_standardization_steps_can_be_switched_off():
    plain = TextEncoder(VOCABULARY, lowercase=False, strip_html=False,
                        split_punctuation=False)
    assert tokens(plain, ["Good<br />film, ÉTÉ!"]) == [
        ["Good<br", "/>film,", "ÉTÉ!"]]
    no_html = TextEncoder(VOCABULARY, strip_html=False)
    assert tokens(no_html, ["a<br />b"]) == [["a", "<", "br", "/", ">", "b"]]


def test_ids_oov_and_padding(encoder):
    ids = encode(encoder, ["The film was GOOD!", "bad", "unheard-of été"])
    expected = np.array([
        [ID["the"], ID["film"], ID["was"], ID["good"], ID["!"]],
        [ID["bad"], 0, 0, 0, 0],
        [1, 1, 1, ID["été"], 0],  # "unheard", "-", "of" are unknown
    ])
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, expected)


def test_padding_to_longest_text_of_batch(encoder):
    ids = encode(encoder, ["film", "the film"])
    assert ids.shape == (2, 2)
    ids = encode(encoder, ["film", "", "the film was"])
    np.testing.assert_array_equal(
        ids, [[ID["film"], 0, 0], [0, 0, 0],
              [ID["the"], ID["film"], ID["was"]]])


def test_batch_of_empty_strings_is_one_padding_step(encoder):
    ids = encode(encoder, ["", "", "   "])
    assert ids.shape == (3, 1)
    np.testing.assert_array_equal(ids, np.zeros((3, 1)))


def test_vocabulary_of_no_words_maps_everything_to_unknown():
    bare = TextEncoder(["", "[UNK]"])
    ids = encode(bare, ["a b c", "d"])
    np.testing.assert_array_equal(ids, [[1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(encode(bare, [""]), [[0]])


def test_max_length_post_keeps_first_tokens():
    encoder = TextEncoder(VOCABULARY, max_length=3)
    assert encoder.truncate == "post"
    assert tokens(encoder, ["a b c d e", "x y"]) == [["a", "b", "c"],
                                                     ["x", "y"]]
    ids = encode(encoder, ["the film was good !", "bad"])
    np.testing.assert_array_equal(
        ids, [[ID["the"], ID["film"], ID["was"]], [ID["bad"], 0, 0]])


def test_max_length_pre_keeps_last_tokens():
    encoder = TextEncoder(VOCABULARY, max_length=3, truncate="pre")
    assert tokens(encoder, ["a b c d e", "x y", "z"]) == [
        ["c", "d", "e"], ["x", "y"], ["z"]]
    ids = encode(encoder, ["the film was good!", "bad"])
    np.testing.assert_array_equal(
        ids, [[ID["was"], ID["good"], ID["!"]], [ID["bad"], 0, 0]])


def test_max_length_counts_punctuation_tokens():
    encoder = TextEncoder(VOCABULARY, max_length=2)
    assert tokens(encoder, ["good!!!"]) == [["good", "!"]]


# -- vocabulary ---------------------------------------------------------------


def test_vocabulary_ordering_frequency_then_alphabetical():
    texts = [["b", "a", "c"], ["c", "b", "d"], ["c", "e", "a"],
             ["d", "z"]]
    # counts: c 3; a, b, d 2; e, z 1
    assert build_vocabulary(texts) == [
        "", "[UNK]", "c", "a", "b", "d", "e", "z"]
    # The order of reading does not matter.
    assert build_vocabulary(reversed(texts)) == build_vocabulary(texts)


def test_vocabulary_max_size_counts_special_entries():
    texts = [["b", "a", "c"], ["c", "b", "d"], ["c", "e", "a"]]
    assert build_vocabulary(texts, max_size=4) == ["", "[UNK]", "c", "a"]
    assert build_vocabulary(texts, max_size=2) == ["", "[UNK]"]
    assert build_vocabulary(texts, max_size=1) == ["", "[UNK]"]
    assert len(build_vocabulary(texts, max_size=100)) == 2 + 5


def test_vocabulary_min_count():
    texts = [["b", "a", "c"], ["c", "b", "d"], ["c", "e", "a"]]
    assert build_vocabulary(texts, min_count=2) == ["", "[UNK]", "c", "a",
                                                    "b"]
    assert build_vocabulary(texts, min_count=3) == ["", "[UNK]", "c"]
    assert build_vocabulary(texts, min_count=4) == ["", "[UNK]"]


def test_vocabulary_from_bytes_and_special_tokens_dropped():
    texts = [[b"\xc3\xa9t\xc3\xa9", b"a"], ["été", "", "[UNK]", "[UNK]"]]
    assert build_vocabulary(texts) == ["", "[UNK]", "été", "a"]


def test_vocabulary_from_encoder_tokens_round_trip():
    texts = ["A good film.", "A bad film!", "good good"]
    bare = TextEncoder(["", "[UNK]"])
    vocabulary = build_vocabulary(bare.tokenize(texts).to_list())
    assert vocabulary == ["", "[UNK]", "good", "a", "film", "!", ".", "bad"]
    ids = encode(TextEncoder(vocabulary), texts)
    np.testing.assert_array_equal(
        ids, [[3, 2, 4, 6], [3, 7, 4, 5], [2, 2, 0, 0]])


# -- configuration ------------------------------------------------------------


def test_config_round_trip_gives_identical_ids():
    encoder = TextEncoder(VOCABULARY, max_length=4, truncate="pre",
                          split_punctuation=False, name="enc")
    config = encoder.get_config()
    assert config["vocabulary"] == VOCABULARY
    assert config["max_length"] == 4 and config["truncate"] == "pre"
    assert config["split_punctuation"] is False
    copy = TextEncoder.from_config(config)
    texts = ["The film, was GOOD! don't", "été bad", ""]
    np.testing.assert_array_equal(encode(copy, texts),
                                  encode(encoder, texts))
    assert copy.get_config() == config
    # Also through Keras' registered-name serialization.
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(encoder))
    assert isinstance(revived, TextEncoder)
    np.testing.assert_array_equal(encode(revived, texts),
                                  encode(encoder, texts))


def test_vocabulary_size_and_no_weights(encoder):
    assert encoder.vocabulary_size == len(VOCABULARY)
    assert encoder.weights == []


@pytest.mark.parametrize("vocabulary", [
    [], [""], ["[UNK]", ""], ["a", "b", "c"], ["", "a", "[UNK]"],
])
def test_bad_vocabulary(vocabulary):
    with pytest.raises(ValueError, match="vocabulary must start with"):
        TextEncoder(vocabulary)


@pytest.mark.parametrize("max_length", [0, -3, 2.5, "10"])
def test_bad_max_length(max_length):
    with pytest.raises(ValueError) as caught:
        TextEncoder(VOCABULARY, max_length=max_length)
    assert str(caught.value) == (
        f"max_length must be a positive integer or None, got {max_length!r}")


@pytest.mark.parametrize("truncate", ["start", "", None, "POST"])
def test_bad_truncate(truncate):
    with pytest.raises(ValueError) as caught:
        TextEncoder(VOCABULARY, truncate=truncate)
    assert str(caught.value) == (
        f"truncate must be 'pre' or 'post', got {truncate!r}")
