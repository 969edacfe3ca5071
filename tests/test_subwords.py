"""Subword units for the translator: the learned vocabulary, segmentation
and joining in the graph against plain Python, a subword translator's
served output against the Python API's, and its SavedModel made of core
TensorFlow ops only."""

import json
import random
import subprocess
import sys
from collections import Counter

import pytest
import tensorflow as tf
from click.testing import CliRunner
from nlpseq.apps.translation import Translation

from nlpseq.cli import cli
from nlpseq.data.parallel import ParallelTexts
from nlpseq.errors import NlpseqError
from nlpseq.subwords import (
    CONTINUATION,
    MAX_WORD_CHARS,
    SubwordEncoder,
    join_pieces,
    learn_pieces,
    learn_vocabulary,
    segment_word,
)
from nlpseq.tasks.seq2seq import END_ID, Seq2SeqPreprocessor
from nlpseq.text import PADDING, UNKNOWN, TextEncoder

SAMPLE = Translation.default_data
KNOWN = "abcdeäöüßéèñ"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args],
                              catch_exceptions=False)


def random_words(rng, n, letters=KNOWN, longest=12):
    return ["".join(rng.choice(letters) for _ in range(rng.randint(1, longest)))
            for _ in range(n)]


@pytest.fixture(scope="module")
def encoder():
    """A vocabulary learned from random words of :data:`KNOWN` letters
    (accents, two-byte UTF-8 characters) and punctuation marks."""
    rng = random.Random(3)
    counts = Counter(random_words(rng, 600, longest=8) * 2 +
                     random_words(rng, 60, letters="abcde", longest=4) * 20
                     + list(".,()!") * 5)
    pieces = learn_pieces(counts, 80)
    return SubwordEncoder([PADDING, UNKNOWN] + pieces, lowercase=False,
                          strip_html=False)


# -- segmentation in the graph against plain Python -------------------------------


def test_graph_segmentation_equals_greedy_longest_match(encoder):
    rng = random.Random(7)
    words = (random_words(rng, 300)
             # characters never learned: the whole word is unknown
             + random_words(rng, 40, letters=KNOWN + "xyz犬😀")
             + ["", "a", "ñ", "犬", "a" * MAX_WORD_CHARS,
                "a" * (MAX_WORD_CHARS + 1)])
    vocabulary = encoder.vocabulary
    # words that are pieces (one lookup), and pieces' continuations
    words += [p for p in vocabulary[2:] if not p.startswith(CONTINUATION)]
    words += [p.removeprefix(CONTINUATION) * 2 for p in vocabulary[2:]]
    rng.shuffle(words)
    pieces = set(vocabulary[2:])
    expected = [[vocabulary.index(p) if p != UNKNOWN else 1
                 for p in segment_word(w, pieces)] for w in words]
    segment = tf.function(encoder.segment, autograph=False, input_signature=[
        tf.TensorSpec((None,), tf.string)])
    assert segment(tf.constant(words)).to_list() == expected
    assert encoder.segment(tf.constant(words)).to_list() == expected
    # (the long words' limit, and pieces made of several characters)
    assert segment_word("a" * (MAX_WORD_CHARS + 1), pieces) == [UNKNOWN]
    assert UNKNOWN not in segment_word("a" * MAX_WORD_CHARS, pieces)
    assert any(len(p.removeprefix(CONTINUATION)) > 1 for p in pieces)
    assert segment(tf.constant([], tf.string)).to_list() == []


def test_texts_are_split_into_words_then_pieces(encoder):
    texts = ["abc dé, ñaxb!", "", "   ", "ßßß. 犬 cab"]
    pieces = set(encoder.vocabulary[2:])
    words = [[w.decode() for w in row]
             for row in encoder.words(texts).to_list()]
    expected = [[p for w in row for p in segment_word(w, pieces)]
                for row in words]
    tokens = [[t.decode() for t in row]
              for row in encoder.tokenize(texts).to_list()]
    assert tokens == expected
    assert [row for row in expected if not row] == [[], []]
    ids = encoder(tf.constant(texts)).numpy()
    assert ids.shape == (4, max(map(len, expected)))
    assert [[encoder.vocabulary[i] for i in row if i]
            for row in ids.tolist()] == expected


def test_joined_pieces_are_the_word_level_text(encoder):
    rng = random.Random(11)
    texts = [" ".join(random_words(rng, rng.randint(0, 8))) + "."
             for _ in range(50)] + ["", "a,b (cd)"]
    words = TextEncoder([PADDING, UNKNOWN], lowercase=False,
                        strip_html=False).tokenize(texts)
    pieces = encoder.tokenize(texts)
    assert UNKNOWN.encode() not in pieces.flat_values.numpy().tolist()
    joined = join_pieces(tf.strings.reduce_join(pieces, axis=-1,
                                                separator=" "))
    assert joined.numpy().tolist() == tf.strings.reduce_join(
        words, axis=-1, separator=" ").numpy().tolist()


def test_translator_detokenizes_pieces_as_it_does_words():
    texts = ["A man ( tall ) , sits !", "Two dogs run on the beach ."]
    data = ParallelTexts(["a", "b"], texts, "t")
    by_words = Translation(*_task_args(data, {}))
    by_pieces = Translation(*_task_args(data, {"subwords": 100}))
    assert type(by_words.target_encoder) is TextEncoder
    assert isinstance(by_pieces.target_encoder, SubwordEncoder)
    results = []
    for task in (by_words, by_pieces):
        ids = task.target_encoder(tf.constant(texts))
        ends = tf.fill([len(texts), 1], END_ID)
        results.append(task.detokenize(tf.concat([ids, ends], 1)).numpy())
    assert results[0].tolist() == results[1].tolist() == [
        b"A man (tall), sits!", b"Two dogs run on the beach."]
    # the pieces are shorter than the words
    assert by_pieces.target_encoder.token_ids(texts).flat_values.shape[0] > \
        by_words.target_encoder.token_ids(texts).flat_values.shape[0]


def _task_args(data, flags):
    config = Translation.effective_config(flags)
    return config, Seq2SeqPreprocessor.fit(data, config)


# -- the learner ---------------------------------------------------------------


def sample_sides():
    pairs = [line.split("\t") for line in
             SAMPLE.read_text(encoding="utf-8").splitlines()]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_vocabulary_has_the_size_asked_for_and_is_deterministic():
    sources, targets = sample_sides()
    tokenizer = TextEncoder([PADDING, UNKNOWN], lowercase=False,
                            strip_html=False)
    rows = [[t.decode() for t in row]
            for row in tokenizer.tokenize(sources).to_list()]
    first = learn_vocabulary(rows, 200)
    assert len(first) == 200 and first[:2] == [PADDING, UNKNOWN]
    assert len(set(first)) == 200
    # the same whatever the order of the text
    assert learn_vocabulary(list(reversed(rows)), 200) == first
    target = learn_vocabulary(rows, 200, reserved=("<s>", "</s>"))
    assert len(target) == 200 and target[2:4] == ["<s>", "</s>"]
    # every word of the text can be segmented
    pieces = set(first[2:])
    assert all(UNKNOWN not in segment_word(w, pieces)
               for row in rows for w in row)
    # the sample's small grammar runs out of pairs seen twice before 1,000
    # entries: every word seen twice is a piece then
    every = learn_vocabulary(rows, 1000)
    counts = Counter(w for row in rows for w in row)
    assert len(every) < 1000 and every[:200] == first
    assert {w for w, n in counts.items() if n > 1} <= set(every)


def test_vocabulary_is_smaller_when_the_text_runs_out():
    # once every word seen twice is a piece, nothing is left to merge
    counts = Counter({"ab": 3, "abc": 2, "x": 1})
    pieces = learn_pieces(counts, 1000)
    assert pieces == ["##b", "a", "##c", "x", "ab", "abc"]
    assert learn_pieces(counts, 5) == pieces[:5]
    # more characters than entries: the most frequent ones
    assert learn_pieces(counts, 2) == ["##b", "a"]


# -- settings --------------------------------------------------------------------


@pytest.mark.parametrize("value, message", [
    ("1", "Error: --subwords: subwords must be 0 (whole words) or >= 100 "
          "(the pieces of a vocabulary), got 1"),
    ("-3", "Error: --subwords: subwords must be >= 0, got -3"),
    ("x", "Error: Invalid value for '--subwords': 'x' is not a valid "
          "integer."),
])
def test_bad_subwords_are_refused_before_anything_is_written(
        tmp_path, value, message):
    folder = tmp_path / "model"
    result = run("translation", "train", "--model-dir", folder,
                 "--subwords", value)
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines()
              if line.startswith("Error:")]
    assert errors == [message]
    assert list(tmp_path.iterdir()) == []


def test_bad_subwords_in_a_config_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[translation]\nsubwords = 50\n", encoding="utf-8")
    with pytest.raises(NlpseqError, match=rf"^{path}: subwords must be 0 "):
        Translation.effective_config({}, path)
    assert Translation.effective_config({})["subwords"] == 0


# -- a subword translator ------------------------------------------------------------

LINES = ["Ein Hund läuft.", "Zwei Kinder spielen am Strand.", "",
         "Ein Xylophon 犬 spielt."]


@pytest.fixture(scope="module")
def subword_model(tmp_path_factory):
    """A tiny translator of 120 pieces per side, one epoch on part of the
    built-in sample (trained by the command line)."""
    root = tmp_path_factory.mktemp("subwords")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "train.tsv").write_text("".join(lines[:600]), encoding="utf-8")
    (root / "valid.tsv").write_text("".join(lines[-6:]), encoding="utf-8")
    folder = root / "model"
    result = run("translation", "train", "--model-dir", folder, "--data",
                 root / "train.tsv", "--valid", root / "valid.tsv",
                 "--subwords", "120", "--epochs", "1", "--units", "8",
                 "--embedding-dim", "8", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "Subword vocabularies: 118 source and 116 target pieces" in \
        result.output
    return folder, Translation.load(folder)


def test_subword_model_translates_in_its_graph(subword_model):
    folder, task = subword_model
    config = json.loads((folder / "config.json").read_text())
    assert config["config"]["subwords"] == 120
    assert isinstance(task.source_encoder, SubwordEncoder)
    assert task.source_encoder.vocabulary_size == 120
    texts, scores = task.translate_lines(LINES, beam_width=2)
    # the serving function the export holds, traced here
    function, signature = task.serving_functions()["serving_default"]
    traced = tf.function(function, autograph=False).get_concrete_function(
        *signature)
    served = traced(tf.constant(LINES))
    assert not_core_ops(traced.graph.as_graph_def()) == []
    best, best_scores = task.translate_lines(LINES)
    assert [t.decode() for t in served["translation"].numpy()] == \
        [row[0] for row in best]
    assert served["score"].numpy().tolist() == pytest.approx(
        [row[0] for row in best_scores], abs=1e-5)
    assert texts[2] == [""] and scores[2] == [0.0]
    source, target, weights = task.attention_matrix("Zwei Kinder spielen.")
    assert weights.shape == (len(target), len(source))
    assert any(p.startswith(CONTINUATION) for p in source)
    with pytest.raises(NlpseqError, match="a model of --subwords cannot be "
                       "exported as ONNX"):
        task.export(folder / "onnx", format="onnx")


def test_subword_model_warns_in_pieces(subword_model):
    folder, task = subword_model
    limit = task.config["max_length"]
    result = CliRunner().invoke(cli, [
        "translation", "predict", "--model-dir", str(folder),
        " ".join(["Hund"] * (limit + 5)), "Ein Hund 犬 läuft."])
    assert result.exit_code == 0, result.output
    assert "only the first 50 (--max-length) are translated" in result.stderr
    assert "pieces; only" in result.stderr
    assert "characters never seen in training: 犬" in result.stderr


CORE_OPS = """
import json
import sys
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

saved = saved_model_pb2.SavedModel.FromString(open(sys.argv[1], "rb").read())
graph = saved.meta_graphs[0].graph_def
functions = {f.signature.name for f in graph.library.function}
ops = {node.op for node in graph.node}
for function in graph.library.function:
    ops |= {node.op for node in function.node_def}
ops -= functions
unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
assert "tensorflow_text" not in sys.modules
print(json.dumps({"ops": sorted(ops), "unknown": unknown}))
"""


@pytest.mark.slow
def test_exported_subword_model_serves_the_python_output_with_core_ops(
        subword_model):
    folder, task = subword_model
    path = task.export(folder / "export", 1)
    served = tf.saved_model.load(str(path))
    outputs = served.signatures["serving_default"](text=tf.constant(LINES))
    texts, scores = task.translate_lines(LINES)
    assert [t.decode() for t in outputs["translation"].numpy()] == \
        [row[0] for row in texts]
    assert outputs["score"].numpy().tolist() == pytest.approx(
        [row[0] for row in scores], abs=1e-5)
    greedy = served.signatures["translate_greedy"](text=tf.constant(LINES))
    texts, _ = task.translate_lines(LINES, beam_width=1)
    assert [t.decode() for t in greedy["translation"].numpy()] == \
        [row[0] for row in texts]
    # every op of the graph and of its functions is one of TensorFlow's own
    # (stock TensorFlow Serving has them), checked by a fresh interpreter
    # that imports no tensorflow_text
    result = subprocess.run(
        [sys.executable, "-c", CORE_OPS, str(path / "saved_model.pb")],
        capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["unknown"] == []
    assert {"While", "UnicodeDecodeWithOffsets", "Substr",
            "LookupTableFindV2"} <= set(found["ops"])


def graph_ops(graph):
    """The op types of a ``GraphDef`` and of its functions (less the calls
    of those functions)."""
    functions = {f.signature.name for f in graph.library.function}
    ops = {node.op for node in graph.node}
    for inner in graph.library.function:
        ops |= {node.op for node in inner.node_def}
    return ops - functions


def not_core_ops(graph):
    """The op types of ``graph`` that TensorFlow itself does not register."""
    from tensorflow.python.framework import op_def_registry

    assert "tensorflow_text" not in sys.modules
    return [op for op in sorted(graph_ops(graph))
            if op_def_registry.get(op) is None]


def test_segmentation_graph_is_made_of_core_ops(encoder):
    function = tf.function(encoder.call, autograph=False).get_concrete_function(
        tf.TensorSpec((None,), tf.string))
    graph = function.graph.as_graph_def()
    assert not_core_ops(graph) == []
    assert {"While", "UnicodeDecodeWithOffsets", "Substr",
            "LookupTableFindV2"} <= graph_ops(graph)


def test_the_packaged_multi30k_subwords_config():
    from nlpseq.apps import config_path

    words = Translation.effective_config(
        {}, config_path("translation_multi30k"))
    pieces = Translation.effective_config(
        {}, config_path("translation_multi30k_subwords"))
    assert pieces["subwords"] == 6000 and words["subwords"] == 0
    differ = {k for k in words if words[k] != pieces[k]}
    assert differ == {"subwords", "max_length", "vocab_size", "min_count"}


# -- a subword language model ------------------------------------------------------

PIECE_VOCABULARY = [PADDING, UNKNOWN, "<eos>", "a", "b", "ab", "##a", "##b",
                    "##ba"]


def tiny_language_model(**settings):
    """An untrained next-word model over :data:`PIECE_VOCABULARY`."""
    import keras
    from nlpseq.apps.next_word import NextWord

    config = NextWord.effective_config(dict(
        subwords=100, units=5, embedding_dim=5, dropout=0.0, layers=1,
        **settings))
    task = NextWord(config, NextWord.preprocessor_class(
        config, PIECE_VOCABULARY))
    keras.utils.set_random_seed(2)
    task.model = task.build_model()
    return task


def brute_force_next_words(task, prompt, pieces=4):
    """{word: P(next word)} over every spelling of up to ``pieces`` pieces,
    from the training model's logits in NumPy: P(the pieces) x P(a piece
    that starts a word after them), summed over the spellings of a word;
    the end of the line is one piece alone, of probability P(<eos>)."""
    import itertools

    import numpy as np

    vocabulary = task.encoder.vocabulary
    starting = [i for i, w in enumerate(vocabulary)
                if i > 1 and not w.startswith(CONTINUATION)]
    continuing = [i for i, w in enumerate(vocabulary)
                  if w.startswith(CONTINUATION)]
    context = [task.end_of_line_id] + \
        task.encoder.token_ids([prompt]).to_list()[0]

    end = task.end_of_line_id
    spellings = [[first, *rest] for count in range(1, pieces + 1)
                 for first in starting
                 for rest in itertools.product(continuing, repeat=count - 1)
                 if first != end or not rest]
    # every spelling after the context, in one batch (the model reads
    # forwards: the padding after a row changes none of its logits)
    rows = np.zeros((len(spellings), len(context) + pieces), "int32")
    for row, spelling in enumerate(spellings):
        rows[row, :len(context) + len(spelling)] = context + spelling
    logits = task.model(rows, training=False).numpy()
    logits[..., :2] = -np.inf
    log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    words = {}
    for row, spelling in enumerate(spellings):
        at = len(context) - 1
        score = sum(log_probs[row, at + i, piece]
                    for i, piece in enumerate(spelling))
        if spelling != [end]:
            score += np.logaddexp.reduce(
                log_probs[row, at + len(spelling), starting])
        word = join_pieces(tf.constant(" ".join(
            vocabulary[i] for i in spelling))).numpy().decode()
        words[word] = words.get(word, 0.0) + float(np.exp(score))
    return words


def test_next_words_are_those_of_a_search_over_every_spelling():
    from nlpseq.tasks.language_model import WORD_PIECES

    task = tiny_language_model()
    prompts = ["a b", "", "ab ba"]
    # a beam as wide as the spellings: the search is exhaustive
    words, probabilities = task.next_words(tf.constant(prompts), 6,
                                           width=200)
    for row, prompt in enumerate(prompts):
        expected = brute_force_next_words(task, prompt, WORD_PIECES)
        best = sorted(expected, key=lambda w: -expected[w])[:6]
        assert [w.decode() for w in words[row].numpy()] == best
        assert probabilities[row].numpy() == pytest.approx(
            [expected[w] for w in best], rel=1e-4)
        # "aba" is spelled "ab ##a" and "a ##ba": both counted
        assert "aba" in expected
        assert "<eos>" in expected and "<eosa" not in expected
    # more words asked for than there are: the rest are empty, of
    # probability 0 (none of the sequences a beam search leaves at -inf)
    words, probabilities = task.next_words(tf.constant(prompts), 200,
                                           width=200)
    for row, prompt in enumerate(prompts):
        expected = brute_force_next_words(task, prompt, WORD_PIECES)
        found = [w.decode() for w in words[row].numpy()]
        count = len(expected)
        assert sorted(found[:count]) == sorted(expected)
        assert found[count:] == [""] * (200 - count)
        assert (probabilities[row].numpy()[count:] == 0).all()
    # the default beam keeps fewer spellings: each word's probability is
    # at most its total, and the list is in order
    words, probabilities = task.next_tokens(tf.constant(prompts), 4)
    for row, prompt in enumerate(prompts):
        expected = brute_force_next_words(task, prompt, WORD_PIECES)
        found = [w.decode() for w in words[row].numpy()]
        assert len(set(found)) == 4 and all(w in expected for w in found)
        values = probabilities[row].numpy()
        assert list(values) == sorted(values, reverse=True)
        assert all(p <= expected[w] * (1 + 1e-4)
                   for w, p in zip(found, values))


def test_pieces_generated_are_joined_into_words():
    task = tiny_language_model()
    text, tokens = task.generate("a b", length=12, strategy="sample", seed=3)
    assert any(t.startswith(CONTINUATION) for t in tokens)
    # the prompt's words are whole: the first piece starts a word, whatever
    # the strategy
    for strategy in ("greedy", "sample", "beam"):
        for seed in range(4):
            _, first = task.generate("a b", length=1, strategy=strategy,
                                     seed=seed, beam_width=3)
            assert not first[0].startswith(CONTINUATION)
    expected = " ".join(tokens).replace(" " + CONTINUATION, "")
    expected = expected.replace(" <eos> ", "\n").replace("<eos> ", "\n")
    expected = expected.replace(" <eos>", "\n").replace("<eos>", "\n")
    assert text == expected
    assert CONTINUATION not in text


@pytest.mark.parametrize("flags, message", [
    (["--subwords", "50"], "Error: --subwords: subwords must be 0 (whole "
     "words) or >= 100 (the pieces of a vocabulary), got 50"),
    (["--subwords", "200", "--level", "char"], "Error: --subwords: word "
     "pieces are for --level word; a character model's tokens are "
     "characters already"),
    (["--subwords", "200", "--direction", "backward"], "Error: --subwords: "
     "word pieces are for a forward model; a backward one would read each "
     "word's pieces from its end"),
])
def test_language_model_refuses_bad_subwords(tmp_path, flags, message):
    result = run("next-word", "train", "--model-dir", tmp_path / "m", *flags)
    assert result.exit_code != 0
    assert [line for line in result.output.splitlines()
            if line.startswith("Error:")] == [message]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def subword_language_model(tmp_path_factory):
    """A next-word model of 150 pieces, one epoch on the built-in sample."""
    folder = tmp_path_factory.mktemp("subword-lm") / "model"
    result = run("next-word", "train", "--model-dir", folder, "--subwords",
                 "150", "--epochs", "1", "--units", "8", "--embedding-dim",
                 "8", "--layers", "1")
    assert result.exit_code == 0, result.output
    assert "Subword vocabulary: 147 pieces" in result.output
    assert "per word (" in result.output
    from nlpseq.apps.next_word import NextWord

    return folder, NextWord.load(folder)


def test_subword_language_model_perplexity_is_per_word_too(
        subword_language_model):
    import math

    from nlpseq.apps.next_word import NextWord

    folder, task = subword_language_model
    assert isinstance(task.encoder, SubwordEncoder)
    assert task.encoder.vocabulary_size == 150
    corpus = task.read_data(str(NextWord.default_valid), "valid")
    metrics = task.evaluate_data(corpus)
    # the words as a word-level model of the same settings counts them
    # (lower-cased, split on whitespace, each line's end one more)
    words = sum(len(line.lower().split()) + 1 for line in corpus.lines
                if line.split())
    assert metrics["words"] == words > 0
    assert metrics["tokens"] > words  # (some words are several pieces)
    total = metrics["loss"] * metrics["tokens"]
    assert metrics["word_perplexity"] == pytest.approx(
        math.exp(total / words), rel=1e-4)
    assert metrics["perplexity"] == pytest.approx(
        math.exp(metrics["loss"]), rel=1e-4)


def test_subword_language_model_is_not_a_transfer_source(
        subword_language_model, tmp_path):
    folder, _ = subword_language_model
    result = run("sentiment", "train", "--model-dir", tmp_path / "s",
                 "--init-from", folder)
    assert result.exit_code != 0
    assert result.output.splitlines()[-1] == (
        f"Error: --init-from {folder}: a language model of word pieces "
        "(--subwords 150); --init-from takes one of whole words")
    result = run("next-word", "export", "--model-dir", folder, "--format",
                 "onnx", "--output", tmp_path / "onnx")
    assert result.exit_code != 0
    assert "a model of --subwords cannot be exported as ONNX" in result.output
    assert not (tmp_path / "onnx").exists()
    # a language model continues it, with its pieces
    result = run("next-word", "train", "--model-dir", tmp_path / "lm",
                 "--init-from", folder, "--epochs", "1")
    assert result.exit_code == 0, result.output
    from nlpseq.apps.next_word import NextWord

    assert NextWord.load(tmp_path / "lm").encoder.vocabulary == \
        NextWord.load(folder).encoder.vocabulary


@pytest.mark.slow
def test_exported_subword_language_model_serves_the_python_output(
        subword_language_model, tmp_path):
    folder, task = subword_language_model
    path = task.export(tmp_path / "export", 1)
    served = tf.saved_model.load(str(path))
    prompts = ["the film was", "", "an unheardofword"]
    outputs = served.signatures["serving_default"](text=tf.constant(prompts))
    words, probabilities = task.next_tokens(tf.constant(prompts), 10)
    assert outputs["tokens"].numpy().tolist() == words.numpy().tolist()
    assert outputs["probabilities"].numpy() == pytest.approx(
        probabilities.numpy(), abs=1e-6)
    greedy = served.signatures["generate_greedy"](text=tf.constant(prompts))
    for row, prompt in enumerate(prompts):
        text, tokens = task.generate(prompt)
        assert greedy["text"].numpy()[row].decode() == text
    result = subprocess.run(
        [sys.executable, "-c", CORE_OPS, str(path / "saved_model.pb")],
        capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["unknown"] == []
    assert {"UnicodeDecodeWithOffsets", "LookupTableFindV2"} <= \
        set(found["ops"])


def test_a_subword_models_unknown_words_are_the_words_no_pieces_spell():
    task = tiny_language_model()
    assert task.unknown_tokens(["a zzz ba", "", "abba"]) == [
        (["a", "zzz", "ba"], ["zzz"]), ([], []), (["abba"], [])]
