"""Contextual character embeddings (``--char-lm``, Akbik et al. 2018): the
character language models of each direction (``next-word --direction``),
the tagger's layer that reads their states, frozen or fine-tuned, its
exports, and the refusals."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import nlpseq
from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.tasks.tagger import TaggerTask

LM = dict(level="char", layers=1, units=8, embedding_dim=8,
          sequence_length=40, batch_size=32, epochs=1, seed=1,
          valid_split=0.1, dropout=0.0)
TAGGER = dict(epochs=1, units=8, embedding_dim=8, char_dim=4, char_units=4,
              batch_size=32, seed=1)
SENTENCES = ["Tomas Blackwood met Viktor in Lisbon .",
             "the Coastal League said on Friday that Zoë won",
             "Helix"]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    """The NER sample's sentences as cased plain text, a line each."""
    from nlpseq.apps import data_spec

    from nlpseq.data.conll import read_tagged

    data = read_tagged(data_spec("sample:ner_sample"), 0, -1)
    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text("\n".join(" ".join(s) for s in data.tokens[:200])
                    + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def char_lms(text, tmp_path_factory):
    root = tmp_path_factory.mktemp("char_lms")
    for direction in ("forward", "backward"):
        nlpseq.train("next-word", data=text, model_dir=root / direction,
                     direction=direction, **LM)
    return root / "forward", root / "backward"


@pytest.fixture(scope="module")
def tagger(char_lms, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagger") / "ner"
    # (paths as the Python API takes them)
    nlpseq.train("ner", model_dir=folder, char_lm=list(char_lms), **TAGGER)
    return nlpseq.load(folder)


def lm_weights(folder):
    """The embedding matrix and the LSTM's kernel, recurrent kernel and
    bias of a one-layer character language model, and its vocabulary."""
    lm = nlpseq.load(folder)
    layer = lm.backbone.recurrent_layers[0]
    return ([lm.backbone.embedding.embeddings.numpy()]
            + [w.numpy() for w in layer.weights], lm.encoder.vocabulary)


def lstm_states(weights, ids):
    """The hidden state after each id, the SPEC's LSTM in NumPy (gate order
    i, f, C~, o)."""
    embeddings, kernel, recurrent, bias = weights
    units = recurrent.shape[0]
    h, c, states = np.zeros(units), np.zeros(units), []

    def sigmoid(a):
        return 1 / (1 + np.exp(-a))

    for i in ids:
        z = embeddings[i] @ kernel + h @ recurrent + bias
        gate_i, gate_f = sigmoid(z[:units]), sigmoid(z[units:2 * units])
        candidate = np.tanh(z[2 * units:3 * units])
        gate_o = sigmoid(z[3 * units:])
        c = gate_f * c + gate_i * candidate
        h = gate_o * np.tanh(c)
        states.append(h)
    return np.array(states)


def reference(char_lms, tokens, position="word"):
    """Each token's forward and backward vectors, read as documented: the
    forward model over "\\n" + the tokens joined by spaces, its state
    after the token's last character; the backward model over "\\n" + the
    reversed sentence, its state after the token's first character. With
    ``position="space"``, each model reads "\\n" + its sentence + " ", and
    the state one character later (after the space that follows the
    token in its reading order)."""
    sentence = " ".join(tokens)
    starts = np.cumsum([0] + [len(t) + 1 for t in tokens[:-1]])
    ends = starts + np.array([len(t) for t in tokens])  # (exclusive)
    vectors = []
    for folder, backward in zip(char_lms, (False, True)):
        weights, vocabulary = lm_weights(folder)
        index = {c: i for i, c in enumerate(vocabulary)}
        read = sentence[::-1] if backward else sentence
        if position == "space":
            read += " "
        states = lstm_states(weights, [index["\n"]] + [
            index.get(c, 1) for c in read])
        # (states[k] is the state after the k-th character; 0: "\n")
        at = (len(sentence) - starts) if backward else ends
        vectors.append(states[at + (position == "space")])
    return np.concatenate(vectors, axis=1)


def sample_char_ids(tagger):
    """SENTENCES' tokens, and their character ids as the tagger reads them
    (padded to the longest)."""
    tokens = [s.split() for s in SENTENCES]
    width = max(len(t) for t in tokens)
    padded = [t + [""] * (width - len(t)) for t in tokens]
    _, chars = tagger.preprocessor.encoder(np.array(padded, dtype=object))
    return tokens, chars


def test_embeddings_are_the_char_lms_states_where_documented(tagger,
                                                             char_lms):
    tokens, chars = sample_char_ids(tagger)
    got = tagger.char_lm(chars).numpy()
    for row, sentence in enumerate(tokens):
        np.testing.assert_allclose(got[row, :len(sentence)],
                                   reference(char_lms, sentence),
                                   rtol=1e-5, atol=1e-6)
        assert not got[row, len(sentence):].any()  # (padding words: zeros)


def test_after_the_space_the_vectors_are_one_character_later(tagger,
                                                             char_lms):
    from nlpseq.layers import ContextualCharacterEmbeddings

    config = dict(tagger.char_lm.get_config(), position="space")
    layer = ContextualCharacterEmbeddings.from_config(config)
    layer.build((None, None, None))
    layer.set_weights(tagger.char_lm.get_weights())
    tokens, chars = sample_char_ids(tagger)
    got, word = layer(chars).numpy(), tagger.char_lm(chars).numpy()
    for row, sentence in enumerate(tokens):
        np.testing.assert_allclose(got[row, :len(sentence)],
                                   reference(char_lms, sentence, "space"),
                                   rtol=1e-5, atol=1e-6)
        assert not np.allclose(got[row, :len(sentence)],
                               word[row, :len(sentence)])
        assert not got[row, len(sentence):].any()


def test_frozen_models_do_not_move_and_fine_tuned_ones_do(
        tagger, char_lms, tmp_path):
    for number, folder in enumerate(char_lms):
        weights, _ = lm_weights(folder)
        mine = [tagger.char_lm.embeddings[number].embeddings.numpy()] + [
            w.numpy() for w in tagger.char_lm.recurrent[number][0].weights]
        for a, b in zip(mine, weights):
            np.testing.assert_array_equal(a, b)
    assert not any("char_lm" in w.path
                   for w in tagger.model.trainable_weights)
    # (a few sentences are enough to move them)
    small = tmp_path / "small.conll"
    small.write_text("Tomas B-PER\nmet O\nViktor B-PER\n\nin O\n"
                     "Lisbon B-LOC\n.  O\n\n" * 8)
    tuned = nlpseq.train("ner", model_dir=tmp_path / "tuned", data=small,
                         valid=small, char_lm=[str(char_lms[0])],
                         fine_tune_char_lm=True, char_lm_position="space",
                         **TAGGER)
    assert tagger.char_lm.position == "word"  # (the default)
    assert nlpseq.load(tmp_path / "tuned").char_lm.position == "space"
    weights, _ = lm_weights(char_lms[0])
    moved = tuned.char_lm.recurrent[0][0].weights[0].numpy()
    assert moved.shape == weights[1].shape
    assert not np.allclose(moved, weights[1])


def test_the_tagger_loads_without_the_char_lm_folders(tagger, char_lms,
                                                      tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tagger.folder.path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["config"]["char_lm"] = [str(tmp_path / "gone")]
    (copy / "config.json").write_text(json.dumps(config))
    again = nlpseq.load(copy)
    assert again.predict(SENTENCES) == tagger.predict(SENTENCES)


def entities(records):
    return [[(e["type"], e["token_start"], e["token_end"])
             for e in record["entities"]] for record in records]


@pytest.fixture(scope="module")
def space_tagger(char_lms, tmp_path_factory):
    """A tagger that reads the states after the space (Flair's)."""
    folder = tmp_path_factory.mktemp("space_tagger") / "ner"
    nlpseq.train("ner", model_dir=folder, char_lm=list(char_lms),
                 char_lm_position="space", **TAGGER)
    return nlpseq.load(folder)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tagger", "space_tagger"])
def test_savedmodel_python_and_onnx_give_the_same_entities(which, request,
                                                           tmp_path):
    import tensorflow as tf

    from nlpseq.onnx_runtime import read_export, viterbi
    from nlpseq.tagging import convert, spans

    tagger = request.getfixturevalue(which)

    ort = pytest.importorskip("onnxruntime")
    records = tagger.predict(SENTENCES)
    assert any(record["entities"] for record in records)
    served = tf.saved_model.load(str(tagger.export(tmp_path / "sm")))
    out = served.signatures["serving_default"](text=tf.constant(SENTENCES))
    for row, record in enumerate(records):
        count = int(out["entity_count"][row])
        assert [t.decode() for t in out["entity_types"][row, :count]
                .numpy()] == [e["type"] for e in record["entities"]]
        assert out["entity_starts"][row, :count].numpy().tolist() == [
            e["start"] for e in record["entities"]]
    export = read_export(tagger.export(tmp_path / "onnx", format="onnx"))
    session = ort.InferenceSession(str(export.model_path))
    tokens = [record["tokens"] for record in records]
    words, chars = export.encoders["encoder"](tokens)
    scores = session.run(None, dict(zip(export.inputs, [words, chars])))[0]
    ids = viterbi(scores, words > 0, **export.crf)
    tags = [convert([export.state["tags"][i] for i in row[:len(t)]], "iob2")
            for row, t in zip(ids, tokens)]
    assert [[(k, s, e) for k, s, e in spans(t)] for t in tags] == \
        entities(records)
    # (the ONNX graph gives the model's scores, not only its decisions)
    keras_scores = tagger.model([words, chars], training=False).numpy()
    np.testing.assert_allclose(scores, keras_scores, rtol=1e-4, atol=1e-5)


def test_savedmodel_gives_the_python_apis_entities(tagger, tmp_path):
    import tensorflow as tf

    records = tagger.predict(SENTENCES)
    served = tf.saved_model.load(str(tagger.export(tmp_path / "sm")))
    out = served.signatures["serving_default"](text=tf.constant(SENTENCES))
    for row, record in enumerate(records):
        count = int(out["entity_count"][row])
        assert out["entity_ends"][row, :count].numpy().tolist() == [
            e["end"] for e in record["entities"]]
        assert [t.decode() for t in out["tags"][row].numpy()
                if t] == record["tags"]


# -- the backward language model -----------------------------------------------

def test_backward_model_reads_each_line_from_its_end(char_lms, text):
    import tensorflow as tf

    backward = nlpseq.load(char_lms[1])
    assert backward.config["direction"] == "backward"
    corpus = type("Corpus", (), {"lines": ["ab c", "de"]})()
    ids = backward.stream(corpus)
    vocabulary = backward.encoder.vocabulary
    assert "".join(vocabulary[i] for i in ids) == "c ba\ned\n"
    # the prompt is read from its end: the forward reading of the reversed
    # prompt, with the same weights
    logits, _ = backward.prompt_logits(tf.constant(["Lisbon", "met"]))
    backward.config["direction"] = "forward"
    try:
        expected, _ = backward.prompt_logits(tf.constant(["nobsiL", "tem"]))
        forward_ids = backward.generate_ids(
            tf.constant(["nobsiL"]), 6, "greedy", 1.0, 0, 1, 0)
    finally:
        backward.config["direction"] = "backward"
    np.testing.assert_allclose(logits, expected, rtol=1e-6)
    # generation writes what comes before the prompt, in reading order
    ids = backward.generate_ids(tf.constant(["Lisbon"]), 6, "greedy", 1.0,
                                0, 1, 0)
    np.testing.assert_array_equal(ids.numpy(), forward_ids.numpy()[:, ::-1])
    text, tokens = backward.generate("Lisbon", length=6)
    assert len(tokens) == 6 and text == "".join(tokens)


def test_a_config_file_list_and_a_comma_string_both_work(char_lms, tmp_path):
    forward, backward = map(str, char_lms)
    path = tmp_path / "ner.toml"
    path.write_text(f"char_lm = [{json.dumps(forward)}, "
                    f"{json.dumps(backward)}]\n")
    assert TaggerTask.effective_config({}, path)["char_lm"] == [forward,
                                                                backward]
    flags = {"char_lm": f"{forward},{backward}"}
    assert TaggerTask.effective_config(flags)["char_lm"] == [forward,
                                                             backward]
    with pytest.raises(NlpseqError, match="must be a list of strings"):
        TaggerTask.effective_config({"char_lm": [forward, 3]})


# -- refusals -------------------------------------------------------------------

def edited(source, folder, config=None, remove=None, damage=None):
    """A copy of a model folder, with ``config.json``'s settings changed,
    a file removed or a file cut short."""
    shutil.copytree(source, folder)
    if config:
        entries = json.loads((folder / "config.json").read_text())
        entries["config"].update(config)
        (folder / "config.json").write_text(json.dumps(entries))
    if remove:
        (folder / remove).unlink()
    if damage:
        data = (folder / damage).read_bytes()
        (folder / damage).write_bytes(data[:len(data) // 2])
    return folder


def refusal_cases(char_lms, tagger, tmp_path):
    forward, backward = char_lms
    both = f"{forward},{backward}"
    return {
        "word level": (["--char-lm", str(edited(
            forward, tmp_path / "w", {"level": "word"}))], "word-level"),
        "lower-casing": (["--char-lm", str(edited(
            backward, tmp_path / "l", {"lowercase": True}))],
            "lower-casing"),
        "same direction": (["--char-lm", f"{forward},{forward}"],
                           "a second forward model"),
        "same direction, the flag repeated": (
            ["--char-lm", str(forward), "--char-lm", str(forward)],
            "a second forward model"),
        "not a language model": (["--char-lm", str(tagger.folder.path)],
                                 "'ner' app"),
        "missing": (["--char-lm", str(tmp_path / "none")], "not found"),
        "damaged weights": (["--char-lm", str(edited(
            forward, tmp_path / "d", damage="model.keras"))], "damaged"),
        "damaged vocabulary": (["--char-lm", str(edited(
            forward, tmp_path / "v", damage="preprocessor.json"))],
            "corrupted"),
        "no weights": (["--char-lm", str(edited(
            forward, tmp_path / "n", remove="model.keras"))],
            "missing model.keras"),
        "with embeddings": (["--char-lm", both, "--embeddings",
                             str(tmp_path / "glove.txt")],
                            "cannot be combined"),
        "fine-tune alone": (["--fine-tune-char-lm"], "needs --char-lm"),
        "position alone": (["--char-lm-position", "space"],
                           "--char-lm-position: char_lm_position needs "
                           "--char-lm"),
    }


def test_each_refusal_is_one_error_line_and_writes_nothing(
        char_lms, tagger, tmp_path):
    (tmp_path / "glove.txt").write_text("the 0.1 0.2\n")
    for name, (options, message) in refusal_cases(
            char_lms, tagger, tmp_path).items():
        model_dir = tmp_path / "model"
        result = CliRunner().invoke(cli, [
            "ner", "train", "--model-dir", str(model_dir), "--epochs", "1",
            *options])
        lines = result.output.strip().splitlines()
        errors = [line for line in lines if line.startswith("Error:")]
        assert result.exit_code == 1, (name, result.output)
        assert len(errors) == 1 and errors == lines[-1:], (name, lines)
        assert message in errors[0], (name, errors[0])
        assert "--char-lm" in errors[0] or "--fine-tune" in errors[0]
        assert "Traceback" not in result.output
        assert not model_dir.exists(), name
        assert not list(tmp_path.glob(".model*")), name


# -- the alternative: a cased word-level language model (--init-from) ---------

def test_a_cased_word_model_gives_the_tagger_its_case(text, tmp_path):
    from nlpseq.apps import data_spec

    from nlpseq.tasks import load
    from nlpseq.transfer import Source

    folder = tmp_path / "cased"
    lm = nlpseq.train("next-word", data=text, model_dir=folder,
                      lowercase=False, layers=1, units=8, embedding_dim=8,
                      sequence_length=10, epochs=1, batch_size=64)
    assert lm.config["lowercase"] is False
    vocabulary = lm.encoder.vocabulary
    assert "Lisbon" in vocabulary and "lisbon" not in vocabulary
    config = TaggerTask.effective_config({"init_from": str(folder)})
    source = Source(folder)
    config = source.adopt(config, TaggerTask)
    assert config["lowercase"] is False  # (the tagger's default is True)
    source.load(load)
    data = TaggerTask(config).read_data(data_spec("sample:ner_sample"),
                                        "train")
    preprocessor = TaggerTask.preprocessor_class.from_language_model(
        source.preprocessor, data, config)
    words, _ = preprocessor.encoder(np.array([["Lisbon", "lisbon"]],
                                             dtype=object))
    # (the tagger's own words, looked up with the model's case)
    assert words.numpy().tolist() == [
        [preprocessor.encoder.words.index("Lisbon"), 1]]


# -- padding and length groups ---------------------------------------------------

def test_words_keep_their_mask_through_the_joined_features():
    import keras

    from nlpseq.layers import JoinFeatures

    ids = keras.ops.convert_to_tensor([[3, 4, 0, 0]])
    words = keras.layers.Embedding(5, 2, mask_zero=True)
    features = keras.ops.ones((1, 4, 3))
    x = words(ids)
    joined = JoinFeatures()([x, features])
    assert joined.shape == (1, 4, 5)
    np.testing.assert_array_equal(joined._keras_mask.numpy(),
                                  [[True, True, False, False]])
    # (Keras' own concatenation makes every step real: why the layer)
    keras_mask = keras.layers.Concatenate()([x, features])._keras_mask
    assert keras_mask.numpy().all()


def test_a_sentences_scores_do_not_depend_on_the_batchs_padding(tagger):
    """The recurrent layers skip padding: a sentence alone and the same
    sentence padded beside a longer one score alike (the joined character
    features and char-LM states used to unmask the padding)."""
    import tensorflow as tf

    tokens = [s.split() for s in SENTENCES]
    width = max(len(t) for t in tokens)
    padded = tf.constant([t + [""] * (width - len(t)) for t in tokens])
    words, chars = tagger.preprocessor.encoder(padded)
    together = tagger.model([words, chars], training=False).numpy()
    for row, sentence in enumerate(tokens):
        alone_words, alone_chars = tagger.preprocessor.encoder(
            tf.constant([sentence]))
        alone = tagger.model([alone_words, alone_chars],
                             training=False).numpy()
        np.testing.assert_allclose(together[row, :len(sentence)], alone[0],
                                   rtol=1e-5, atol=1e-5)


def test_length_groups_give_the_tags_of_one_call(tagger, monkeypatch):
    """The graph tags groups of sentences of similar length, each cut to
    its own longest sentence and word: the tags equal one call's, in the
    request's order."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    words = " ".join(SENTENCES).split()
    tokens = [list(rng.choice(words, size=n)) for n in (7, 1, 12, 3, 9, 2, 5)]
    width = max(len(t) for t in tokens)
    padded = tf.constant([t + [""] * (width - len(t)) for t in tokens])
    word_ids, char_ids = tagger.preprocessor.encoder(padded)
    one_call = tagger.decode_ids(word_ids, char_ids).numpy()
    expected = tagger.scheme_tags(one_call).numpy()
    monkeypatch.setattr(TaggerTask, "SERVING_GROUP", 2)
    grouped = tf.function(tagger.tag_tokens)(padded).numpy()
    for row, sentence in enumerate(tokens):
        assert grouped[row, :len(sentence)].tolist() == \
            expected[row, :len(sentence)].tolist()
        assert not grouped[row, len(sentence):].any()


# -- a character model adapted to other text ------------------------------------

def test_a_character_model_continues_another_in_its_direction(char_lms,
                                                              text):
    """``next-word --init-from`` a character model: the new model reads
    characters in the source's direction with its vocabulary, and starts
    from all its weights (adapting a model to a tagger's domain)."""
    from test_transfer import built

    task, source, copied = built("next-word", char_lms[1], text)
    assert task.config["level"] == "char"
    assert task.config["direction"] == "backward"
    assert task.preprocessor.encoder.vocabulary == \
        source.preprocessor.encoder.vocabulary
    assert len(copied) >= 2
    for mine, theirs in zip(task.model.weights, source.model.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    # (a classifier or a tagger still takes word-level models only)
    with pytest.raises(NlpseqError, match="a character-level language "
                       "model; --init-from takes a word-level one"):
        nlpseq.train("ner", model_dir=text.parent / "refused",
                     init_from=str(char_lms[0]), **TAGGER)
    assert not (text.parent / "refused").exists()


@pytest.mark.slow
def test_an_interrupted_run_with_char_lms_resumes_to_the_same_model(
        char_lms, tmp_path, interrupted_after_first_epoch):
    """The character models are copied in once, when the run starts: a run
    killed after its first epoch and resumed reaches the uninterrupted
    run's weights, those of the fine-tuned character models included (a
    resume that copied them in again would undo their first epoch)."""
    common = dict(TAGGER, epochs=2, char_lm=list(char_lms),
                  fine_tune_char_lm=True)
    straight = nlpseq.train("ner", model_dir=tmp_path / "straight", **common)
    folder = tmp_path / "resumed"
    with interrupted_after_first_epoch():
        with pytest.raises(NlpseqError, match="interrupted"):
            nlpseq.train("ner", model_dir=folder, **common)
    resumed = nlpseq.train("ner", model_dir=folder, resume=True)
    for a, b in zip(straight.model.weights, resumed.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=a.path)
    # (the fine-tuned forward character model did train)
    start = nlpseq.load(char_lms[0]).backbone.recurrent_layers[0]
    kernel, = [w for w in resumed.model.weights
               if w.path == "char_lm/char_lm_1_lstm_1/cell/recurrent_kernel"]
    assert not np.allclose(kernel.numpy(),
                           start.cell.recurrent_kernel.numpy(), atol=1e-4)
