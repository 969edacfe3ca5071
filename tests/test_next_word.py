"""The next-word app: corpus, windows, the state-carrying copy of the model,
perplexity, generation (greedy, sampling, beam), the SavedModel signatures
and the errors of bad input. References are independent: NumPy on the
training model's own logits, and brute force over all continuations."""

import gzip
import itertools
import json
import math

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from nlpseq.apps.next_word import NextWord

from nlpseq.cli import cli
from nlpseq.data.corpus import Corpus, read_corpus
from nlpseq.errors import NlpseqError
from nlpseq.layers import TiedEmbedding

LINES = ["on sunday i eat pizza .", "", "on monday i eat soup .",
         "they won their match .", "he won his match ."] * 6


def make(lines=LINES, **settings):
    """A task with a vocabulary and an (untrained) model."""
    settings.setdefault("units", 6)
    settings.setdefault("embedding_dim", 6)
    settings.setdefault("dropout", 0.0)
    config = NextWord.effective_config(settings)
    corpus = Corpus(list(lines), "test")
    task = NextWord(config, NextWord.preprocessor_class.fit(corpus, config))
    import keras

    keras.utils.set_random_seed(1)
    task.model = task.build_model()
    return task, corpus


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def log_softmax(logits):
    logits = logits - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


# -- the tied embedding ----------------------------------------------------------


def test_tied_embedding_reverse_is_the_transposed_matrix(tmp_path):
    import keras

    layer = TiedEmbedding(7, 3, mask_zero=True)
    ids = np.array([[1, 0, 6]])
    vectors = layer(ids).numpy()
    matrix, bias = (w.numpy() for w in layer.weights)
    np.testing.assert_allclose(vectors[0], matrix[[1, 0, 6]])
    np.testing.assert_array_equal(layer.compute_mask(tf.constant(ids)),
                                  [[True, False, True]])
    h = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    bias_value = np.arange(7, dtype="float32")
    layer.bias.assign(bias_value)
    np.testing.assert_allclose(layer(h, reverse=True).numpy(),
                               h @ matrix.T + bias_value, rtol=1e-5)
    # saved and loaded with its bias
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, layer(layer(inputs), reverse=True))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(ids, verbose=0),
                               model.predict(ids, verbose=0))


# -- corpus and windows --------------------------------------------------------------


def test_read_corpus_plain_and_gzip(tmp_path):
    text = "first line\n\nthird line\n"
    (tmp_path / "a.txt").write_text(text)
    with gzip.open(tmp_path / "a.txt.gz", "wt") as handle:
        handle.write(text)
    for name in ("a.txt", "a.txt.gz"):
        corpus = read_corpus(tmp_path / name)
        assert corpus.lines == ["first line", "", "third line"]
        assert corpus.characters == len(text)


@pytest.mark.parametrize("content, message", [
    ("", "{path}: empty corpus (no text to learn from)"),
    ("\n  \n", "{path}: empty corpus (no text to learn from)"),
    (b"ok\n\xff\n", "{path}:2: not UTF-8 text (byte 0xff at column 1)"),
])
def test_read_corpus_errors(tmp_path, content, message):
    path = tmp_path / "c.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(NlpseqError) as error:
        read_corpus(path)
    assert str(error.value) == message.format(path=path)
    with pytest.raises(NlpseqError, match="File not found"):
        read_corpus(tmp_path / "missing.txt")
    with pytest.raises(NlpseqError, match="a folder"):
        read_corpus(tmp_path)


def test_split_keeps_the_last_tenth_of_the_characters():
    corpus = Corpus([f"line {i:03d}" for i in range(100)], "x")
    head, tail = corpus.split(0.1)
    assert head.lines + tail.lines == corpus.lines
    assert len(tail.lines) == 10


def test_stream_and_windows_shift_by_one():
    task, corpus = make()
    vocabulary = task.encoder.vocabulary
    stream = task.stream(corpus)
    words = [vocabulary[i] for i in stream]
    expected = [w for line in LINES if line.split()
                for w in line.split() + ["<eos>"]]
    assert words == expected  # blank lines skipped, <eos> at line ends
    x, y = task.encode(corpus)
    length = task.config["sequence_length"]
    assert x.shape == y.shape == ((len(stream) - 1) // length, length)
    np.testing.assert_array_equal(x.ravel(), stream[:x.size])
    np.testing.assert_array_equal(y.ravel(), stream[1:x.size + 1])


def test_character_level_keeps_case_spaces_and_line_breaks():
    task, corpus = make(["Ab c", "", "d"], level="char",
                            sequence_length=2)
    vocabulary = task.encoder.vocabulary
    text = "".join(vocabulary[i] for i in task.stream(corpus))
    assert text == "Ab c\n\nd\n"


def test_corpus_smaller_than_one_window():
    task, corpus = make(["a b c"], sequence_length=4)
    with pytest.raises(NlpseqError) as error:
        task.encode(corpus)
    assert str(error.value) == ("test: 4 tokens are fewer than one training "
                                "window (--sequence-length 4 + 1)")


def test_tied_embeddings_need_equal_sizes():
    with pytest.raises(NlpseqError, match="--tie-embeddings needs"):
        make(units=6, embedding_dim=5)
    task, _ = make(units=6, embedding_dim=5, tie_embeddings=False)
    assert task.output_layer is task.model.get_layer("logits")
    tied, _ = make()
    assert tied.output_layer is None


def test_preprocessor_round_trips_through_json(tmp_path):
    for level in ("word", "char"):
        task, corpus = make(level=level)
        preprocessor = task.preprocessor
        path = tmp_path / f"{level}.json"
        preprocessor.save(path)
        again = NextWord.preprocessor_class.load(path, task.config)
        assert again.level == level
        assert again.encoder.vocabulary == preprocessor.encoder.vocabulary
        np.testing.assert_array_equal(
            NextWord(task.config, again).stream(corpus), task.stream(corpus))
    # a vocabulary without the end-of-line token is refused
    saved = json.loads(path.read_text())
    saved["state"]["vocabulary"].remove("\n")
    path.write_text(json.dumps(saved))
    with pytest.raises(NlpseqError, match="corrupted"):
        NextWord.preprocessor_class.load(path, task.config)


def test_settings_are_one_directional_and_keep_their_defaults():
    defaults = {s.name: s.default for s in NextWord.all_settings()}
    assert "bidirectional" not in defaults
    assert {k: defaults[k] for k in (
        "cell", "layers", "units", "embedding_dim", "dropout", "vocab_size",
        "sequence_length", "tie_embeddings", "lowercase", "level")} == {
        "cell": "lstm", "layers": 2, "units": 200, "embedding_dim": 200,
        "dropout": 0.3, "vocab_size": 20000, "sequence_length": 35,
        "tie_embeddings": True, "lowercase": None, "level": "word"}


# -- the state-carrying model and perplexity -----------------------------------------


@pytest.mark.parametrize("settings", [
    {"cell": "lstm", "layers": 2},
    {"cell": "gru", "tie_embeddings": False},
    {"cell": "rnn"},
])
def test_step_model_equals_the_training_model(settings):
    task, corpus = make(**settings)
    stream = task.stream(corpus)[None, :40]
    expected = task.model(stream, training=False).numpy()
    steps = task.step_model()
    states = task.zero_states(1)
    # in three pieces, carrying the states
    pieces = []
    for start, end in ((0, 7), (7, 8), (8, 40)):
        logits, *states = steps([tf.constant(stream[:, start:end])] + states)
        pieces.append(logits.numpy())
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), expected,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("tie", [True, False])
def test_prompt_logits_are_the_training_model_s_at_each_prompt_s_end(tie):
    # (the output layer runs on each prompt's last position only)
    task, _ = make(tie_embeddings=tie, layers=2)
    prompts = ["on sunday i", "", "the"]
    logits, states = task.prompt_logits(tf.constant(prompts))
    for row, prompt in enumerate(prompts):
        ids = [task.end_of_line_id] + \
            task.encoder.token_ids([prompt]).to_list()[0]
        expected = task.model(np.array([ids]), training=False).numpy()[0]
        np.testing.assert_allclose(logits[row], expected[-1], rtol=1e-4,
                                   atol=1e-5)
        _, *alone = task.step_model()([tf.constant([ids])]
                                      + task.zero_states(1))
        for state, one in zip(states, alone):
            np.testing.assert_allclose(state[row], one[0], rtol=1e-5,
                                       atol=1e-6)


def test_padding_keeps_the_states():
    task, corpus = make()
    stream = task.stream(corpus)[:9]
    steps = task.step_model()
    padded = np.zeros((2, 12), "int32")
    padded[0, :9], padded[1, :5] = stream, stream[:5]
    _, *states = steps([tf.constant(padded)] + task.zero_states(2))
    _, *alone = steps([tf.constant(stream[None, :5])]
                      + task.zero_states(1))
    for both, one in zip(states, alone):
        np.testing.assert_allclose(both[1], one[0], rtol=1e-5, atol=1e-6)


def test_perplexity_equals_a_numpy_reference():
    task, corpus = make(layers=2)
    stream = task.stream(corpus)
    inputs = np.concatenate([[task.end_of_line_id], stream[:-1]])
    logits = task.model(inputs[None], training=False).numpy()[0]
    losses = -log_softmax(logits)[np.arange(len(stream)), stream]
    ranks = (logits > logits[np.arange(len(stream)), stream][:, None]).sum(-1)
    # window by window, the states carried across them
    metrics = task.evaluate_data(corpus, rows=1, window=7)
    assert metrics["tokens"] == len(stream)
    assert metrics["loss"] == pytest.approx(losses.mean(), rel=1e-4)
    assert metrics["perplexity"] == pytest.approx(math.exp(losses.mean()),
                                                  rel=1e-3)
    assert metrics["top1_accuracy"] == pytest.approx((ranks < 1).mean(),
                                                     abs=1e-6)
    assert metrics["top5_accuracy"] == pytest.approx((ranks < 5).mean(),
                                                     abs=1e-6)
    # rows read side by side: each row's first token lacks the text before
    # it, so only the row count changes the result, and only slightly
    many = task.evaluate_data(corpus, rows=3, window=5)
    assert many["tokens"] == len(stream)
    assert abs(many["loss"] - metrics["loss"]) < 0.1


# -- prediction and generation -------------------------------------------------------


def sequence_log_probability(task, prompt, continuation):
    """log P(continuation | prompt), from the training model, in NumPy
    (padding and unknown entries ruled out, as generation does)."""
    ids = task.encoder.token_ids([prompt]).to_list()[0]
    context = [task.end_of_line_id] + ids + list(continuation)
    logits = task.model(np.array([context[:-1]]),
                            training=False).numpy()[0]
    logits[:, :2] = -1e9
    scores = log_softmax(logits)
    start = len(ids)
    return sum(scores[start + i, token]
               for i, token in enumerate(continuation))


def test_next_tokens_rank_the_training_model_probabilities():
    task, _ = make()
    words, probabilities = task.next_tokens(
        tf.constant(["on sunday i", ""]), 3)
    for row, prompt in enumerate(["on sunday i", ""]):
        ids = task.encoder.token_ids([prompt]).to_list()[0]
        logits = task.model(np.array([[task.end_of_line_id] + ids]),
                                training=False).numpy()[0, -1]
        logits[:2] = -np.inf
        p = np.exp(logits - logits.max())
        p /= p.sum()
        best = np.argsort(-p)[:3]
        assert [w.decode() for w in words[row].numpy()] == [
            task.encoder.vocabulary[i] for i in best]
        np.testing.assert_allclose(probabilities[row], p[best], rtol=1e-4)


def test_beam_search_finds_the_most_likely_continuation():
    task, _ = make()
    vocabulary = task.encoder.vocabulary
    candidates = range(2, len(vocabulary))
    prompt = "on sunday"
    best = max(itertools.product(candidates, repeat=2),
               key=lambda c: sequence_log_probability(task, prompt, c))
    _, tokens = task.generate(prompt, length=2, strategy="beam",
                                  beam_width=len(vocabulary))
    assert tokens == [vocabulary[i] for i in best]
    # a narrow beam is at best as likely; width 1 is greedy
    greedy_text, greedy = task.generate(prompt, length=4)
    _, narrow = task.generate(prompt, length=4, strategy="beam",
                                  beam_width=1)
    assert narrow == greedy
    ids = {w: i for i, w in enumerate(vocabulary)}
    _, wide = task.generate(prompt, length=4, strategy="beam",
                                beam_width=3)
    assert sequence_log_probability(task, prompt, [ids[w] for w in wide]) \
        >= sequence_log_probability(task, prompt,
                                    [ids[w] for w in greedy]) - 1e-4


def test_greedy_takes_the_argmax_step_by_step():
    task, _ = make()
    _, tokens = task.generate("i eat", length=5)
    vocabulary = task.encoder.vocabulary
    context = [task.end_of_line_id] + task.encoder.token_ids(
        ["i eat"]).to_list()[0]
    for token in tokens:
        logits = task.model(np.array([context]),
                                training=False).numpy()[0, -1]
        logits[:2] = -np.inf
        assert vocabulary[int(np.argmax(logits))] == token
        context.append(int(np.argmax(logits)))


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    task, _ = make()
    draw = dict(length=12, strategy="sample", temperature=5.0)
    assert task.generate("on", seed=3, **draw) == \
        task.generate("on", seed=3, **draw)
    assert len({tuple(task.generate("on", seed=s, **draw)[1])
                for s in range(4)}) > 1
    assert task.generate("on", length=6, strategy="sample", top_k=1,
                             seed=5)[1] == task.generate("on",
                                                             length=6)[1]
    # special entries are never produced
    for s in range(3):
        _, tokens = task.generate("on", seed=s, **draw)
        assert "" not in tokens and "[UNK]" not in tokens


def test_character_hello():
    """The worked example: after h, e, l, l the model says e, l, l, o."""
    import keras

    config = NextWord.effective_config({
        "level": "char", "units": 16, "embedding_dim": 16, "dropout": 0.0,
        "layers": 1, "sequence_length": 4})
    corpus = Corpus(["hello"] * 40, "hello")
    task = NextWord(config, NextWord.preprocessor_class.fit(corpus, config))
    keras.utils.set_random_seed(0)
    task.model = task.build_model()
    task.model.compile(keras.optimizers.Adam(0.03),
                           **task.compile_arguments())
    x, y = task.encode(corpus)
    task.model.fit(x, y, epochs=60, batch_size=len(x), verbose=0)
    records = list(task.predict_lines(["h", "he", "hel", "hell"]))
    assert [r["next"][0]["token"] for r in records] == ["e", "l", "l", "o"]
    text, _ = task.generate("h", length=4)
    assert text == "ello"


# -- the command line ------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("next-word")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(LINES) + "\n")
    result = run("next-word", "train", "--data", corpus, "--model-dir",
                 folder / "model", "--units", "8", "--embedding-dim", "8",
                 "--layers", "1", "--epochs", "2", "--sequence-length", "8",
                 "--batch-size", "4", "--valid-split", "0.3")
    assert result.exit_code == 0, result.output
    return folder / "model"


@pytest.mark.parametrize("args, message", [
    (["--length", "0"], "--length: length must be >= 1, got 0"),
    (["--temperature", "0"], "--temperature: temperature must be >= 0.01, "
                             "got 0.0"),
    (["--temperature", "-1"], "--temperature: temperature must be >= "
                              "0.01, got -1.0"),
    # (a float32 of 0, and an overflow, in the graph)
    (["--temperature", "1e-45"], "--temperature: temperature must be >= "
                                 "0.01, got 1e-45"),
    (["--temperature", "1e39"], "--temperature: temperature must be <= "
                                "100.0, got 1e+39"),
    (["--beam-width", "257"], "--beam-width: beam_width must be <= 256, "
                              "got 257"),
    # (TensorFlow reads them as 32-bit integers)
    (["--length", "3000000000"], "--length: length must be <= 2147483647, "
                                 "got 3000000000"),
    (["--seed", "99999999999"], "--seed: seed must be <= 2147483647, got "
                                "99999999999"),
    (["--beam-width", "0"], "--beam-width: beam_width must be >= 1, got 0"),
    (["--top-k", "-2"], "--top-k: top_k must be >= 0, got -2"),
    (["--strategy", "best"], None),
])
def test_generate_refuses_bad_options(model_dir, args, message):
    result = run("next-word", "generate", "--model-dir", model_dir, *args)
    assert result.exit_code != 0
    if message:
        assert result.output == f"Error: {message}\n"
    else:
        assert "'best' is not one of 'greedy', 'sample', 'beam'" in \
            result.output


def test_generate_help_shows_the_default_model_folder():
    result = CliRunner().invoke(cli, ["next-word", "generate", "--help"],
                                terminal_width=200)
    assert result.exit_code == 0
    assert "[default: saved_models/next-word]" in result.output
    assert "--beam-width" in result.output


def test_generate_command_continues_the_prompt(model_dir):
    result = run("next-word", "generate", "--model-dir", model_dir,
                 "--prompt", "on sunday", "--length", "3", "--strategy",
                 "beam")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("on sunday ")
    sampled = [run("next-word", "generate", "--model-dir", model_dir,
                   "--prompt", "he", "--strategy", "sample", "--seed", "4",
                   "--length", "5").output for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_prompt_of_unknown_words_is_said_and_still_predicted(model_dir):
    runner = CliRunner()
    result = runner.invoke(cli, ["next-word", "predict", "--model-dir",
                                 str(model_dir), "--format", "jsonl",
                                 "zzz qqq", "on zzz"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == ("warning: every token of 'zzz qqq' is unknown to "
                        "the model; predicting after the unknown token")
    records = [json.loads(line) for line in lines[1:]]
    assert records[0]["unknown"] == ["zzz", "qqq"]
    assert records[1]["unknown"] == ["zzz"]
    assert all(len(r["next"]) == 5 for r in records)
    top = run("next-word", "predict", "--model-dir", model_dir, "--top-k",
              "2", "--format", "json", "on").output
    assert len(json.loads(top)[0]["next"]) == 2
    assert run("next-word", "predict", "--model-dir", model_dir, "--top-k",
               "0", "on").output == "Error: --top-k: top_k must be >= 1, " \
                                    "got 0\n"


def test_empty_and_tiny_corpora_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = run("next-word", "train", "--data", empty, "--model-dir",
                 tmp_path / "m")
    assert result.output == (f"Error: {empty}: empty corpus (no text to "
                             "learn from)\n")
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("a b c\nd e f\n")
    result = run("next-word", "train", "--data", tiny, "--valid", tiny,
                 "--model-dir", tmp_path / "m")
    assert result.exit_code == 1
    assert result.output.endswith(
        f"Error: {tiny}: 8 tokens are fewer than one training window "
        "(--sequence-length 35 + 1)\n")
    assert not (tmp_path / "m").exists()


def test_exported_generate_signature_matches_the_cli(model_dir, tmp_path):
    result = run("next-word", "export", "--model-dir", model_dir, "--output",
                 tmp_path)
    assert result.exit_code == 0, result.output
    assert "signatures: serving_default, generate" in result.output
    served = tf.saved_model.load(str(tmp_path / "1"))
    task = NextWord.load(model_dir)
    for strategy, seed in (("greedy", 0), ("beam", 0), ("sample", 7)):
        outputs = served.signatures["generate"](
            text=tf.constant(["on sunday", "he"]),
            length=tf.constant(4), strategy=tf.constant(strategy),
            temperature=tf.constant(1.0), top_k=tf.constant(0),
            beam_width=tf.constant(3), seed=tf.constant(seed))
        tokens = [[t.decode() for t in row]
                  for row in outputs["tokens"].numpy()]
        for row, prompt in enumerate(["on sunday", "he"]):
            if strategy == "sample":
                continue  # a batch draws other numbers than one prompt
            expected = task.generate(prompt, length=4, strategy=strategy,
                                         beam_width=3)
            assert tokens[row] == expected[1]
            assert outputs["text"].numpy()[row].decode() == expected[0]
    with pytest.raises(tf.errors.InvalidArgumentError, match="length"):
        served.signatures["generate"](
            text=tf.constant(["on"]), length=tf.constant(0),
            strategy=tf.constant("greedy"), temperature=tf.constant(1.0),
            top_k=tf.constant(0), beam_width=tf.constant(1),
            seed=tf.constant(0))


def test_mocked_tfds_corpus():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        corpus = read_corpus("tfds:tiny_shakespeare:validation")
    assert corpus.source == "tfds:tiny_shakespeare:validation"
    assert corpus.lines and all(isinstance(line, str)
                                for line in corpus.lines)
