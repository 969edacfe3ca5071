"""The NER app: tag schemes and conlleval scoring, the CoNLL and JSONL
readers, the token encoder and character features, the tagger's loss, and
the errors and warnings of bad input."""

import gzip
import json
import random

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from nlpseq.apps.ner import Ner

from nlpseq.cli import cli
from nlpseq.data.conll import read_conll, read_tagged
from nlpseq.errors import NlpseqError
from nlpseq.layers import CharacterFeatures
from nlpseq.tagging import (
    convert,
    entity_scores,
    scheme_errors,
    spans,
    to_tags,
)
from nlpseq.tasks.tagger import TaggerPreprocessor, read_vectors
from nlpseq.text import TokenEncoder


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


# -- schemes and scores ------------------------------------------------------------


def test_spans_in_each_scheme():
    entities = [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
    written = {
        "iob1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC"],
        "iob2": ["B-PER", "I-PER", "B-PER", "O", "B-LOC"],
        "bioes": ["B-PER", "E-PER", "S-PER", "O", "S-LOC"],
    }
    for scheme, tags in written.items():
        assert to_tags(entities, 5, scheme) == tags
        assert spans(tags) == entities
        assert scheme_errors(tags, scheme) == []


def test_random_spans_round_trip_through_every_scheme():
    rng = random.Random(0)
    for _ in range(200):
        length = rng.randint(0, 12)
        entities, position = [], 0
        while position < length:
            position += rng.randint(0, 2)
            end = min(length, position + rng.randint(1, 3))
            if position < end:
                entities.append((rng.choice("AB"), position, end))
            position = end
        for scheme in ("iob1", "iob2", "bioes"):
            tags = to_tags(entities, length, scheme)
            assert spans(tags) == entities
            for other in ("iob1", "iob2", "bioes"):
                assert spans(convert(tags, other)) == entities


def test_conlleval_repairs():
    # an I- after O starts an entity; a type change ends one
    assert spans(["O", "I-PER", "I-PER", "I-LOC"]) == [("PER", 1, 3),
                                                       ("LOC", 3, 4)]
    assert scheme_errors(["O", "I-PER", "I-PER"], "iob2") == [1]
    assert scheme_errors(["B-PER", "I-LOC"], "iob2") == [1]
    assert scheme_errors(["B-PER", "I-PER"], "bioes") == [1]


def test_entity_scores_count_exact_matches_only():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    scores = entity_scores(gold, predicted)
    # gold: PER(0-2) LOC ORG; predicted: PER(0-1) LOC ORG MISC -> 2 correct
    assert scores["entities"] == 3 and scores["predicted_entities"] == 4
    assert scores["precision"] == pytest.approx(50.0)
    assert scores["recall"] == pytest.approx(200 / 3, rel=1e-4)
    assert scores["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3),
                                         rel=1e-4)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 6, rel=1e-4)
    assert scores["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0,
                                         "f1": 0.0, "support": 1}
    assert scores["per_type"]["LOC"]["f1"] == 100.0
    assert scores["per_type"]["MISC"]["support"] == 0


# -- readers --------------------------------------------------------------------


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_read_conll_plain_gzip_and_columns(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text(CONLL)
    with gzip.open(tmp_path / "a.conll.gz", "wt") as handle:
        handle.write(CONLL.replace(" ", "\t"))
    for name in ("a.conll", "a.conll.gz"):
        data = read_tagged(tmp_path / name)
        assert data.tokens == [["EU", "rejects"], ["Peter", "Blackburn"]]
        assert data.tags == [["B-ORG", "O"], ["B-PER", "I-PER"]]
        assert data.lines == [3, 6]
    pos = read_conll(path, token_column=0, tag_column=1)
    assert pos.tags[0] == ["NNP", "VBZ"]


@pytest.mark.parametrize("content, message", [
    ("a X O\nb O\n", "{path}:2: expected 3 columns (as on the first line), "
                     "got 2: 'b O'"),
    ("", "{path}: no sentences (an empty file?)"),
    ("-DOCSTART- -X- O\n\n", "{path}: no sentences (an empty file?)"),
    ("word\n", "{path}:1: 1 column(s), but the tag column is number 2 "
               "(the columns are train's --token-column / --tag-column)"),
])
def test_conll_errors(tmp_path, content, message):
    path = tmp_path / "bad.conll"
    path.write_text(content)
    with pytest.raises(NlpseqError) as error:
        read_tagged(path, tag_column=1 if content == "word\n" else -1)
    assert str(error.value) == message.format(path=path)


@pytest.mark.parametrize("content, line", [
    ("Anna\nBerg\n\nOslo\n", 1),  # a token per line, no tag column
    ("-DOCSTART-\n\nAnna\n", 3),
])
def test_conll_without_a_tag_column_is_an_error(tmp_path, content, line):
    # (the default columns, first and last, would be the same one: the
    # tokens would be read as their own tags)
    path = tmp_path / "tokens.conll"
    path.write_text(content)
    with pytest.raises(NlpseqError) as error:
        read_tagged(path)
    assert str(error.value) == (
        f"{path}:{line}: 1 column(s), and the token and the tag would both "
        "be column 1; tagged data needs a token column and a tag column "
        "(train's --token-column / --tag-column)")
    # untagged input (prediction) still reads a token per line
    assert read_conll(path, tagged=False).tokens[-1] in (["Anna"], ["Oslo"])


def test_read_jsonl_and_its_errors(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"tokens": ["Oslo", "is"], "tags": ["B-LOC", "O"]}\n\n'
                    '{"tokens": [], "tags": []}\n')
    data = read_tagged(path)
    assert data.tokens == [["Oslo", "is"]] and data.lines == [1]
    for line, message in (
            ('{"tokens": ["a"], "tags": []}', "1 tokens but 0 tags"),
            ('{"tokens": "a"}', 'expected an object with "tokens" and '
                                '"tags" lists of strings'),
            ("{", "not JSON")):
        path.write_text(line + "\n")
        with pytest.raises(NlpseqError, match=f"^{path}:1: {message}"):
            read_tagged(path)


def test_mocked_tfds_conll2003():
    tfds = pytest.importorskip("tensorflow_datasets")
    sentences = [(["EU", "rejects", "Peter"], [3, 0, 1]), (["Oslo"], [5])]

    def as_dataset(self, *args, **kwargs):
        def examples():
            for index, (tokens, tags) in enumerate(sentences):
                yield {"tokens": tokens, "ner": tags,
                       "pos": [0] * len(tokens), "chunks": [0] * len(tokens)}

        return tf.data.Dataset.from_generator(
            examples, output_signature=self.info.features.get_tensor_spec())

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        data = read_tagged("tfds:conll2003:validation")
    names = tfds.builder("conll2003").info.features["ner"].feature.names
    assert data.source == "tfds:conll2003:validation"
    assert data.tokens == [s[0] for s in sentences]
    assert data.tags == [[names[i] for i in s[1]] for s in sentences]
    assert "B-PER" in names


# -- encoder, character features, tagger loss ----------------------------------------


def test_token_encoder_normalizes_words_but_not_characters():
    encoder = TokenEncoder(["", "[UNK]", "peter", "0000"],
                           ["", "[UNK]", "P", "e"], max_word_length=3)
    words, chars = encoder(tf.constant([["Peter", "1996", ""]]))
    assert words.numpy().tolist() == [[2, 3, 0]]
    assert chars.numpy().tolist() == [[[2, 3, 1], [1, 1, 1], [0, 0, 0]]]


@pytest.mark.parametrize("mode", ["lstm", "cnn"])
def test_character_features_ignore_padding(mode):
    features = CharacterFeatures(12, mode=mode, char_dim=4, units=3)
    word = np.array([[[3, 4, 5, 6]]])
    wider = np.concatenate([word, np.zeros((1, 1, 5), "int64")], axis=2)
    np.testing.assert_allclose(features(wider).numpy(),
                               features(word).numpy(), atol=1e-6)
    assert not np.any(features(np.zeros((1, 2, 3), "int64")).numpy())


def test_softmax_tagger_loss_is_masked_cross_entropy():
    import keras

    from nlpseq.models import Tagger

    inputs = keras.Input((None, 3))
    model = Tagger(inputs, keras.layers.Dense(4)(inputs))
    x = np.random.default_rng(0).normal(size=(2, 3, 3)).astype("float32")
    y = np.array([[1, 4, 0], [2, 0, 0]])
    logits = model(x).numpy()
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_p[0, 0, 0], log_p[0, 1, 3], log_p[1, 0, 1]])
    loss = model.compute_loss(x, tf.constant(y), tf.constant(logits))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_crf_tagger_loss_is_the_crf_likelihood_whatever_its_name():
    import keras

    from nlpseq.layers import CRF
    from nlpseq.models import Tagger

    inputs = keras.Input((None, 3))
    crf = CRF(4, name="not_named_crf")
    model = Tagger(inputs, crf(keras.layers.Dense(4)(inputs)))
    x = np.random.default_rng(0).normal(size=(2, 3, 3)).astype("float32")
    y = np.array([[1, 4, 0], [2, 0, 0]])
    scores = model(x)
    expected = np.mean(crf.negative_log_likelihood(
        scores, tf.constant(np.maximum(y - 1, 0), tf.int32),
        tf.constant(y > 0)).numpy())
    loss = model.compute_loss(x, tf.constant(y), scores)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


# -- the app --------------------------------------------------------------------


SAMPLE = "\n".join(
    "".join(f"{w} {t}\n" for w, t in rows) for rows in [
        [("Anna", "B-PER"), ("Berg", "I-PER"), ("visited", "O"),
         ("Oslo", "B-LOC"), (".", "O")],
        [("Tom", "B-PER"), ("met", "O"), ("Helix", "B-ORG"),
         ("Motors", "I-ORG"), (".", "O")],
    ] * 20)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ner")
    data = folder / "train.conll"
    data.write_text(SAMPLE)
    result = run("ner", "train", "--data", data, "--model-dir",
                 folder / "model", "--units", "8", "--embedding-dim", "8",
                 "--char-units", "4", "--char-dim", "4", "--epochs", "12",
                 "--learning-rate", "0.02", "--dropout", "0",
                 "--batch-size", "8")
    assert result.exit_code == 0, result.output
    return folder / "model"


def test_learns_the_sample_and_prints_inline_entities(model_dir):
    result = run("ner", "predict", "--model-dir", model_dir,
                 "Anna Berg visited Oslo.")
    assert result.output == "[PER Anna Berg] visited [LOC Oslo] .\n"
    record = json.loads(run("ner", "predict", "--model-dir", model_dir,
                            "--format", "json",
                            "Tom  met Helix Motors.").output)[0]
    assert record["tokens"] == ["Tom", "met", "Helix", "Motors", "."]
    assert record["entities"][1] == {
        "type": "ORG", "text": "Helix Motors", "start": 9, "end": 21,
        "token_start": 2, "token_end": 4}
    conll = run("ner", "predict", "--model-dir", model_dir, "--format",
                "conll", "Tom met Oslo").output
    assert conll == "Tom\tB-PER\nmet\tO\nOslo\tB-LOC\n\n"


def test_pretokenized_input_tags_the_sentences_before_a_bad_line(
        model_dir, tmp_path):
    # (line 6 is not UTF-8: the two sentences before it are written first)
    path = tmp_path / "in.conll"
    path.write_bytes(b"Anna X\nBerg X\n\nOslo X\n\nbad \xff\nTom X\n")
    result = run("ner", "predict", "--model-dir", model_dir, "--input", path,
                 "--input-format", "conll", "--format", "jsonl")
    assert result.exit_code == 1
    assert [json.loads(line)["tokens"] for line in
            result.stdout.splitlines()] == [["Anna", "Berg"], ["Oslo"]]
    assert result.stderr == (
        f"Error: {path}:6: not UTF-8 text (byte 0xff at column 5)\n")


def test_pretokenized_input_and_its_signature(model_dir, tmp_path):
    path = tmp_path / "in.conll"
    path.write_text("-DOCSTART- X\n\nAnna X\nBerg X\n\nOslo X\n")
    records = [json.loads(line) for line in run(
        "ner", "predict", "--model-dir", model_dir, "--input", path,
        "--input-format", "conll", "--format", "jsonl").output.splitlines()]
    assert [r["tokens"] for r in records] == [["Anna", "Berg"], ["Oslo"]]
    assert records[0]["tags"] == ["B-PER", "I-PER"]
    run("ner", "export", "--model-dir", model_dir, "--output", tmp_path)
    served = tf.saved_model.load(str(tmp_path / "1"))
    tags = served.signatures["tokens"](
        tokens=tf.constant([["Anna", "Berg"], ["Oslo", ""]]))["tags"]
    expected = [r["tags"] for r in records]
    assert [[t.decode() for t in row] for row in tags.numpy()] == [
        expected[0], expected[1] + [""]]


def test_predict_options_apply_to_that_call_only(model_dir):
    task = Ner.load(model_dir)
    default = dict(task.options)
    assert default["input_format"] != "conll"
    lines = ["Anna X", "Berg X", "", "Oslo X"]
    conll = task.predict(lines, input_format="conll")
    assert [r["tokens"] for r in conll] == [["Anna", "Berg"], ["Oslo"]]
    assert task.options == default
    # (the next call reads each line as a text again)
    assert [r["tokens"] for r in task.predict(["Anna X"])] == [
        ["Anna", "X"]]
    stream = task.predict_stream(lines, input_format="conll")
    next(stream)
    stream.close()
    assert task.options == default


def test_output_scheme_follows_the_data(model_dir):
    task = Ner.load(model_dir)
    model_tags = ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "B-LOC", "I-LOC",
                  "E-LOC"]
    ids = tf.constant([[task.tags.index(t) for t in model_tags]])
    for scheme in ("iob1", "iob2", "bioes"):
        task.config["tag_scheme"] = scheme
        tags = [t.decode() for t in task.scheme_tags(ids).numpy()[0]]
        assert tags == convert(model_tags, scheme)


def test_scheme_breaks_warn_or_refuse(tmp_path, caplog):
    path = tmp_path / "broken.conll"
    path.write_text(SAMPLE + "\nBerg I-PER\nvisited O\n")
    line = SAMPLE.count("\n") + 2
    result = run("ner", "train", "--data", path, "--model-dir",
                 tmp_path / "m", "--strict", "--epochs", "1")
    assert result.exit_code == 1
    assert result.output == (f"Error: {path}:{line}: I-PER after start "
                             "breaks the iob2 scheme (--strict)\n")
    task = Ner(Ner.effective_config({}))
    with caplog.at_level("WARNING", logger="nlpseq"):
        data = task.read_data(str(path), "train")
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.name == "nlpseq"
    assert warning.getMessage().startswith(
        f"{path}:{line}: I-PER after start breaks the iob2 scheme; 1 such "
        "tag(s)")
    assert spans(data.tags[-1]) == [("PER", 0, 1)]


def test_long_sentences_are_cut_with_a_warning(model_dir):
    runner = CliRunner()
    text = " ".join(["Oslo"] * 230)
    result = runner.invoke(cli, ["ner", "predict", "--model-dir",
                                 str(model_dir), "--format", "jsonl", text])
    lines = result.output.splitlines()
    assert lines[0] == ("warning: 1 sentence(s) longer than --max-length "
                        "200 tokens; tagged O beyond it")
    record = json.loads(lines[1])
    assert len(record["tags"]) == 230
    assert record["tags"][200:] == ["O"] * 30


def test_unknown_entity_types_are_refused(model_dir, tmp_path):
    path = tmp_path / "other.conll"
    path.write_text("Oslo B-LOC\nrocks B-GENRE\n")
    result = run("ner", "evaluate", "--model-dir", model_dir, "--data", path)
    assert result.exit_code == 1
    assert result.output == (f"Error: {path}:1: entity type GENRE is unknown"
                             " to the model (its types: LOC, ORG, PER)\n")


def test_pretrained_vectors(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("3 3\noslo 0.5 0.25 -1\nBerg 1 2 3\nberg 9 9 9\n"
                    "new york 4 5 6\n")
    matrix = read_vectors(path, ["", "[UNK]", "oslo", "berg", "tom",
                                 "new york"], str.lower)
    assert matrix.shape == (6, 3)
    np.testing.assert_allclose(matrix[2], [0.5, 0.25, -1])
    np.testing.assert_allclose(matrix[3], [1, 2, 3])  # the first form wins
    np.testing.assert_allclose(matrix[5], [4, 5, 6])
    assert np.abs(matrix[4]).max() <= 0.05
    path.write_text("oslo 0.5 0.25\nberg 1 x\n")
    with pytest.raises(NlpseqError, match=f"^{path}:2: not a vector"):
        read_vectors(path, ["", "[UNK]", "berg"])
    path.write_text("oslo 0.5 0.25 1\nberg 1 2\n")
    with pytest.raises(NlpseqError, match=f"^{path}:2: 2 values, expected 3"):
        read_vectors(path, ["", "[UNK]", "oslo"])


def test_training_with_vectors_and_without_crf(tmp_path):
    data = tmp_path / "train.conll"
    data.write_text(SAMPLE)
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("anna 1 0 0 0 0\noslo 0 1 0 0 0\n")
    result = run("ner", "train", "--data", data, "--model-dir",
                 tmp_path / "m", "--units", "4", "--char-features", "cnn",
                 "--char-units", "3", "--no-crf", "--epochs", "1",
                 "--embeddings", vectors)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["config"]["embedding_dim"] == 5
    assert config["config"]["crf"] is False


def test_rare_word_dropout_replaces_only_rare_words_in_training():
    from nlpseq.layers import RareWordDropout

    layer = RareWordDropout(first_rare_id=10, rate=0.5, seed=1)
    ids = np.tile(np.arange(20, dtype="int32"), (500, 1))
    np.testing.assert_array_equal(layer(ids).numpy(), ids)
    dropped = layer(ids, training=True).numpy()
    np.testing.assert_array_equal(dropped[:, :10], ids[:, :10])
    replaced = dropped[:, 10:] != ids[:, 10:]
    assert (dropped[:, 10:][replaced] == 1).all()
    assert 0.45 < replaced.mean() < 0.55


def test_unidirectional_tagger():
    from nlpseq.data.conll import TaggedSentences

    config = Ner.effective_config({"bidirectional": False, "units": 6,
                                   "layers": 2})
    data = TaggedSentences([["Anna", "visited", "Oslo"]],
                           [["B-PER", "O", "B-LOC"]], "t", [1])
    task = Ner(config, TaggerPreprocessor.fit(data, config))
    model = task.build_model()
    recurrent = [layer for layer in model.layers
                 if layer.name in ("lstm_1", "lstm_2")]
    assert [layer.output.shape[-1] for layer in recurrent] == [6, 6]
    assert not any(layer.name.startswith("bidirectional")
                   for layer in model.layers)
    assert task.crf is model.layers[-1]


def test_first_rare_id_marks_the_words_seen_once(tmp_path):
    from nlpseq.data.conll import TaggedSentences

    data = TaggedSentences([["Oslo", "Oslo", "rare", "Lyon", "Lyon", "x"]],
                           [["B-LOC", "B-LOC", "O", "B-LOC", "B-LOC", "O"]],
                           "t", [1])
    preprocessor = TaggerPreprocessor.fit(data, Ner.effective_config({}))
    words = preprocessor.encoder.words
    assert words[:preprocessor.first_rare_id] == ["", "[UNK]", "lyon", "oslo"]
    assert sorted(words[preprocessor.first_rare_id:]) == ["rare", "x"]
    # saved and read back as preprocessor.json's state
    again = TaggerPreprocessor.from_config(preprocessor.get_config(),
                                           Ner.effective_config({}))
    assert again.encoder.words == words
    assert again.first_rare_id == preprocessor.first_rare_id
    assert again.tags == preprocessor.tags


def test_word_tokenize_splits_punctuation_at_word_edges_only():
    from nlpseq.tasks.tagger import word_tokenize

    tokens = word_tokenize(["He said (in the U.S.): \"3.5% on 1996-08-22.\"",
                            "O'Neill's   team."]).to_list()
    assert [[t.decode() for t in row] for row in tokens] == [
        ["He", "said", "(", "in", "the", "U.S", ".", ")", ":", '"', "3.5",
         "%", "on", "1996-08-22", ".", '"'],
        ["O'Neill", "'s", "team", "."]]


def test_jsonl_tokens_must_be_words(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"tokens": ["New York", "x"], "tags": ["B-LOC", "O"]}\n')
    with pytest.raises(NlpseqError) as error:
        read_tagged(path)
    assert str(error.value) == (f"{path}:1: token 'New York' is empty or "
                                "holds whitespace")


def test_one_word_and_empty_sentences(model_dir, tmp_path):
    result = run("ner", "predict", "--model-dir", model_dir, "--format",
                 "jsonl", "Oslo", "", "Anna")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(r["tags"]) for r in records] == [1, 0, 1]
    assert result.stderr == (
        "warning: input 2 is empty: its record has an empty result (no "
        "prediction), as has every empty input\n")
    run("ner", "export", "--model-dir", model_dir, "--output", tmp_path)
    served = tf.saved_model.load(str(tmp_path / "1"))
    outputs = served.signatures["serving_default"](text=tf.constant(["", ""]))
    assert outputs["tags"].numpy().shape[0] == 2
    tags = served.signatures["tokens"](tokens=tf.constant([["Oslo"]]))["tags"]
    assert tags.numpy()[0, 0].decode() == records[0]["tags"][0]
