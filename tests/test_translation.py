"""The translation app: parallel data, attention, decoding, BLEU, serving."""

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from nlpseq.apps.translation import Translation

from nlpseq.cli import cli
from nlpseq.data.parallel import ParallelTexts, read_parallel
from nlpseq.errors import NlpseqError
from nlpseq.layers import Attention
from nlpseq.models import Translator, masked_cross_entropy
from nlpseq.tasks.seq2seq import END_ID, START_ID, Seq2SeqPreprocessor

SAMPLE = Translation.default_data


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


# -- data ---------------------------------------------------------------------


def test_tsv_pairs_and_reverse(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Hallo.\tHello.\tCC-BY\n\t(empty source)\nJa.\tYes.\n",
                    encoding="utf-8")
    pairs = read_parallel(path)
    assert pairs.sources == ["Hallo.", "Ja."]
    assert pairs.targets == ["Hello.", "Yes."]
    assert pairs.skipped == 1
    back = read_parallel(path, reverse=True)
    assert back.sources == ["Hello.", "Yes."]


def test_aligned_files_and_language_pattern(tmp_path):
    (tmp_path / "t.de").write_text("eins\nzwei\n\n", encoding="utf-8")
    with gzip.open(tmp_path / "t.en", "wt", encoding="utf-8") as handle:
        handle.write("one\ntwo\nthree\n")
    by_pair = read_parallel(f"{tmp_path}/t.de,{tmp_path}/t.en")
    by_pattern = read_parallel(f"{tmp_path}/t.{{lang}}", "de", "en")
    assert by_pair.sources == by_pattern.sources == ["eins", "zwei"]
    assert by_pair.targets == by_pattern.targets == ["one", "two"]
    assert by_pattern.skipped == 1
    other_way = read_parallel(f"{tmp_path}/t.{{lang}}", "en", "de")
    assert other_way.sources == ["one", "two"]


def test_parallel_data_errors(tmp_path):
    (tmp_path / "a.de").write_text("eins\nzwei\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\n", encoding="utf-8")
    with pytest.raises(NlpseqError) as error:
        read_parallel(f"{tmp_path}/a.{{lang}}")
    assert str(error.value) == (
        f"{tmp_path}/a.de has 2 lines but {tmp_path}/a.en has 1; aligned "
        "files need one line per sentence on both sides")
    tsv = tmp_path / "b.tsv"
    tsv.write_text("Hallo\tHello\nkein Tab\n", encoding="utf-8")
    with pytest.raises(NlpseqError, match=r"b\.tsv:2: expected "
                       r"source<TAB>target, found no tab"):
        read_parallel(tsv)
    bad = tmp_path / "c.tsv"
    bad.write_bytes(b"ok\tok\n\xff\tx\n")
    with pytest.raises(NlpseqError, match=r"c\.tsv:2: not UTF-8"):
        read_parallel(bad)
    with pytest.raises(NlpseqError, match="File not found"):
        read_parallel(tmp_path / "missing.tsv")
    empty = tmp_path / "d.tsv"
    empty.write_text("\t\n", encoding="utf-8")
    with pytest.raises(NlpseqError, match="no sentence pairs"):
        read_parallel(empty)


def test_mocked_tfds_translation_dataset():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=4,
                                policy=tfds.testing.MockPolicy.USE_CODE):
        pairs = read_parallel("tfds:ted_hrlr_translate/pt_to_en:validation",
                              "pt", "en")
        assert len(pairs) + pairs.skipped == 4
        with pytest.raises(NlpseqError, match="no feature for language "
                           "'de'; features: "):
            read_parallel("tfds:ted_hrlr_translate/pt_to_en", "de", "en")


# -- attention and loss against NumPy -------------------------------------------


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("kind", ["luong", "bahdanau"])
def test_attention_matches_numpy(kind):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 3, 4)).astype("float32")
    memory = rng.normal(size=(2, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = Attention(kind, units=7 if kind == "bahdanau" else None)
    context, weights = layer(query, memory, memory_mask=mask)
    if kind == "luong":
        (w,) = [v.numpy() for v in layer.weights]
        scores = np.einsum("btq,bsq->bts", query, memory @ w)
    else:
        w_m, w_q, v = [x.numpy() for x in (layer.memory_kernel,
                                            layer.query_kernel,
                                            layer.score_vector)]
        hidden = np.tanh((query @ w_q)[:, :, None] + (memory @ w_m)[:, None])
        scores = hidden @ v
    scores = np.where(mask[:, None, :], scores, -np.inf)
    expected = _softmax(scores)
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    np.testing.assert_allclose(context, expected @ memory, atol=1e-5)
    assert np.all(np.asarray(weights)[0, :, 3:] == 0)


def test_attention_config_and_bad_kind():
    layer = Attention("bahdanau", units=3, name="a")
    again = Attention.from_config(layer.get_config())
    assert (again.kind, again.units, again.name) == ("bahdanau", 3, "a")
    with pytest.raises(ValueError, match="`kind`.*got 'dot'"):
        Attention("dot")


def test_masked_cross_entropy_with_label_smoothing():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    targets = np.array([[2, 4, 0], [1, 0, 0]])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for e in (0.0, 0.1):
        smooth = np.full(5, e / 5)
        expected = []
        for b, t in zip(*np.nonzero(targets)):
            q = smooth.copy()
            q[targets[b, t]] += 1 - e
            expected.append(-(q * log_p[b, t]).sum())
        np.testing.assert_allclose(
            masked_cross_entropy(targets, logits, e), np.mean(expected),
            rtol=1e-5)


# -- a trained model of the built-in sample -------------------------------------


@pytest.fixture(scope="module")
def sample_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("translation") / "model"
    result = run("translation", "train", "--model-dir", folder, "--epochs",
                 "8", "--units", "32", "--embedding-dim", "32",
                 "--learning-rate", "0.005", "--dropout", "0.1", "--seed",
                 "1")
    assert result.exit_code == 0, result.output
    return folder, Translation.load(folder)


def test_sample_model_translates_unseen_sentences(sample_model):
    folder, task = sample_model
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["bleu"] > 90, metrics
    lines = [line.split("\t") for line in
             SAMPLE.read_text(encoding="utf-8").splitlines()]
    seen = {german for german, _ in lines}
    unseen = ["Ein alter Arbeiter singt ein Lied am Strand.",
              "Zwei alte Hunde schlafen neben dem Fluss."]
    assert not seen & set(unseen)
    translations, _ = task.translate_lines(unseen)
    assert [t[0] for t in translations] == [
        "An old worker is singing a song on the beach.",
        "Two old dogs are sleeping next to the river."]


def test_beam_width_one_equals_greedy(sample_model):
    _, task = sample_model
    lines = ["Ein Mann liest ein Buch.", "Drei Frauen trinken Kaffee.",
             "Hund Hund Hund", "Strand"]
    ids, scores, _ = task.graph_function("greedy")(tf.constant(lines))
    beam_ids, beam_scores = tf.function(task.beam_search)(
        tf.constant(lines), tf.constant(1), tf.constant(0.0), tf.constant(1))
    width = ids.shape[1]
    np.testing.assert_array_equal(beam_ids[:, 0, :width], ids)
    np.testing.assert_allclose(beam_scores[:, 0], scores, rtol=1e-5)


def test_padding_in_the_source_never_changes_a_translation(sample_model):
    _, task = sample_model
    short = "Ein Hund läuft."
    long = "Vier große Arbeiter spielen Fußball vor einem Gebäude."
    alone, alone_scores = task.translate_lines([short], beam_width=3)
    padded, padded_scores = task.translate_lines([short, long],
                                                     beam_width=3)
    assert padded[0] == alone[0]
    np.testing.assert_allclose(padded_scores[0], alone_scores[0], rtol=1e-4)
    memory, _, mask, states = task.encode_source(tf.constant([short]))
    memory2, _, mask2, states2 = task.encode_source(
        tf.constant([short, long]))
    n = int(mask.numpy().sum())
    np.testing.assert_allclose(memory2[0, :n], memory[0, :n], atol=1e-5)
    for a, b in zip(states, states2):
        np.testing.assert_allclose(b[0], a[0], atol=1e-5)



@pytest.mark.parametrize("beam_width, n_best", [(1, 1), (3, 2)])
def test_length_groups_translate_as_each_sentence_alone(
        sample_model, monkeypatch, beam_width, n_best):
    """The graph decodes groups of sentences of similar length, in the
    request's order, and each sentence's translation and score are those
    of the sentence alone (its length limit is its own), empty texts
    included."""
    _, task = sample_model
    lines = ["Vier große Arbeiter spielen Fußball vor einem Gebäude.", "",
             "Strand", "Ein Hund läuft.", "Hund Hund Hund Hund Hund Hund",
             "Drei Frauen trinken Kaffee.", "Ein Mann liest ein Buch."]
    # (groups of 2 sentences at beam 3, of 6 greedy)
    monkeypatch.setattr(type(task), "SERVING_HYPOTHESES", 6)
    translate = tf.function(task.translate)
    texts, scores = translate(tf.constant(lines), tf.constant(beam_width),
                              tf.constant(0.6), tf.constant(n_best))
    assert texts.shape == (len(lines), n_best)
    for row, line in enumerate(lines):
        alone_texts, alone_scores = translate(
            tf.constant([line]), tf.constant(beam_width), tf.constant(0.6),
            tf.constant(n_best))
        assert texts[row].numpy().tolist() == \
            alone_texts[0].numpy().tolist()
        np.testing.assert_allclose(scores[row], alone_scores[0], rtol=1e-4,
                                   atol=1e-6)
    assert texts[1].numpy().tolist() == [b""] * n_best
    # (a request of no sentences: no rows)
    texts, scores = translate(tf.constant([], tf.string),
                              tf.constant(beam_width), tf.constant(0.6),
                              tf.constant(n_best))
    assert texts.shape[0] == 0 and scores.shape[0] == 0


def test_a_beam_width_below_one_is_named_in_the_graph(sample_model):
    _, task = sample_model
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="beam_width must be at least 1"):
        tf.function(task.translate)(
            tf.constant(["Ein Hund läuft."]), tf.constant(0),
            tf.constant(0.6), tf.constant(1))

def test_n_best_are_ranked_and_distinct(sample_model):
    _, task = sample_model
    translations, scores = task.translate_lines(
        ["Ein Mädchen singt ein Lied."], beam_width=4, n_best=3)
    assert len(set(translations[0])) == 3
    assert scores[0] == sorted(scores[0], reverse=True)
    with pytest.raises(NlpseqError, match="--n-best 5 is more than "
                       "--beam-width 4"):
        task.translate_lines(["x"], beam_width=4, n_best=5)


def test_detokenize_joins_punctuation():
    config = Translation.effective_config({})
    task = Translation(config, Seq2SeqPreprocessor.fit(
        ParallelTexts(["a"], ["A man ( tall ) , sits !"], "x"), config))
    vocabulary = task.target_encoder.vocabulary
    words = "A man ( tall ) , sits !".split()
    ids = [vocabulary.index(w) for w in words] + [END_ID, vocabulary.index(
        "man")]
    text = task.detokenize(tf.constant([ids]))
    assert text.numpy()[0].decode() == "A man (tall), sits!"


# -- beam search is exact where brute force can check it ---------------------------


def test_beam_search_finds_the_best_sequence(tmp_path):
    import keras

    keras.utils.set_random_seed(5)
    config = Translation.effective_config(
        {"units": 3, "embedding_dim": 4, "vocab_size": 7, "dropout": 0.0})
    task = Translation(config, Seq2SeqPreprocessor.fit(
        ParallelTexts(["a b", "b c"], ["x y z", "z y"], "t"), config))
    assert task.target_encoder.vocabulary_size == 7
    task.model = task.build_model()
    # strong random weights: the best sequence is not the greedy one
    for weight in task.model.weights:
        weight.assign(weight * 3.0)
    limit = 3
    task.max_steps = lambda mask: limit
    source = tf.constant(["a b"])
    memory, keys, mask, states = task.encode_source(source)
    words = [4, 5, 6]

    def score(sequence):
        token, total, current = START_ID, 0.0, states
        for next_token in sequence:
            log_probs, current, _ = task.decode_step(
                tf.constant([token]), current, memory, keys, mask)
            total += float(log_probs[0, next_token])
            token = next_token
        return total

    candidates = [tuple(p) + (END_ID,) for n in range(limit)
                  for p in itertools.product(words, repeat=n)]
    candidates += list(itertools.product(words, repeat=limit))
    best = max(candidates, key=score)
    ids, scores = task.beam_search(source, tf.constant(64),
                                       tf.constant(0.0), tf.constant(1))
    found = tuple(int(i) for i in ids[0, 0] if i != 0)
    assert found == best
    assert float(scores[0, 0]) == pytest.approx(score(best), abs=1e-4)
    greedy_ids, greedy_score, _ = task.greedy(source)
    assert float(greedy_score[0]) <= score(best) + 1e-5


# -- the command line ------------------------------------------------------------


def test_translation_commands_on_the_sample_model(sample_model, tmp_path):
    folder, _ = sample_model
    result = run("translation", "predict", "--model-dir", folder,
                 "--n-best", "2", "--beam-width", "3", "--format", "json",
                 "Ein Mann sitzt.")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)[0]
    assert record["translation"] == "A man is sitting."
    assert len(record["n_best"]) == 2
    text = run("translation", "predict", "--model-dir", folder, "--n-best",
               "2", "Ein Mann sitzt.").output.splitlines()
    assert text[0].endswith("\tA man is sitting.") and len(text) == 2

    result = run("translation", "predict", "--model-dir", folder,
                 "--beam-width", "2", "--n-best", "3", "Ein Mann sitzt.")
    assert result.exit_code == 1
    assert result.output == "Error: --n-best 3 is more than --beam-width 2\n"

    # (the first 40 pairs: the command's output, not the sample's BLEU)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(SAMPLE.read_text(encoding="utf-8")
                             .splitlines(keepends=True)[:40]),
                     encoding="utf-8")
    result = run("translation", "evaluate", "--model-dir", folder, "--data",
                 pairs)
    assert result.exit_code == 0, result.output
    assert "BLEU:" in result.output and "nrefs:1|case:mixed" in result.output


def test_evaluate_takes_the_beam_and_length_penalty(sample_model, tmp_path):
    folder, task = sample_model
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(SAMPLE.read_text(encoding="utf-8")
                             .splitlines(keepends=True)[:40]),
                     encoding="utf-8")
    result = run("translation", "evaluate", "--model-dir", folder, "--data",
                 pairs, "--beam-width", "1", "--length-penalty", "0",
                 "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert (metrics["beam_width"], metrics["length_penalty"]) == (1, 0.0)
    # a beam of one is greedy decoding
    assert metrics["bleu"] == metrics["greedy_bleu"]
    assert metrics["chrf"] == metrics["greedy_chrf"]
    # the Python API: the same options, for the call only
    assert task.evaluate(str(pairs), beam_width=1)["bleu"] == \
        metrics["greedy_bleu"]
    assert task.options["beam_width"] == 5
    assert task.evaluate(str(pairs))["beam_width"] == 5
    with pytest.raises(NlpseqError, match="unknown option 'n_best'"):
        task.evaluate(str(pairs), n_best=2)
    for option, value, message in (
            ("--length-penalty", "-1",
             "length_penalty must be >= 0.0, got -1.0"),
            # (beyond it a long translation's penalty overflows float32)
            ("--length-penalty", "100",
             "length_penalty must be <= 10.0, got 100.0"),
            ("--beam-width", "3000000000",
             "beam_width must be <= 256, got 3000000000")):
        for command in ("evaluate", "predict"):
            result = run("translation", command, "--model-dir", folder,
                         "--data" if command == "evaluate" else "--input",
                         pairs, option, value)
            assert result.exit_code == 1
            assert result.output == f"Error: {option}: {message}\n"


def test_translation_warnings(sample_model, tmp_path):
    folder, task = sample_model
    limit = task.config["max_length"]
    long = " ".join(["Hund"] * (limit + 5))
    result = CliRunner().invoke(
        cli, ["translation", "predict", "--model-dir", str(folder), long,
              "Xyzzy Qwerty", "Ein Hund 犬 läuft\x07."])
    assert result.exit_code == 0
    assert f"{limit + 5} words; only the first {limit} (--max-length) are " \
        "translated" in result.stderr
    assert "'Xyzzy Qwerty': no word of it is known to the model" in \
        result.stderr
    assert ("'Ein Hund 犬 läuft\\x07.': characters never seen in "
            "training: \\x07 犬 (their words are read as unknown)") in \
        result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_training_data_warnings_and_errors(tmp_path):
    data = tmp_path / "pairs.tsv"
    rows = ["Ein Hund läuft.\tA dog is running."] * 12 + ["\tlost"] + [
        " ".join(["Hund"] * 8) + "\tdogs"]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["translation", "train", "--data", str(data), "--model-dir",
              str(tmp_path / "m"), "--max-length", "5", "--units", "2",
              "--embedding-dim", "4", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert f"warning: {data}: skipped 1 pairs with an empty side" in \
        result.stderr
    assert "cut 1 source and 0 target sentences to --max-length 5" in \
        result.stderr
    (tmp_path / "x.de").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "x.en").write_text("a\n", encoding="utf-8")
    result = run("translation", "train", "--data", f"{tmp_path}/x.{{lang}}",
                 "--model-dir", tmp_path / "n")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path}/x.de has 2 lines but {tmp_path}/x.en has 1; "
        "aligned files need one line per sentence on both sides\n")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_units_are_per_direction(bidirectional):
    # --units 5 is the size of each encoder direction (odd numbers are fine);
    # the decoder, started from the directions' states side by side, has
    # units x directions
    config = Translation.effective_config(
        {"units": 5, "embedding_dim": 4, "bidirectional": bidirectional})
    task = Translation(config, Seq2SeqPreprocessor.fit(
        ParallelTexts(["a b"], ["x y"], "t"), config))
    model = task.build_model()
    encoder = model.get_layer("encoder_1")
    directions = [encoder.forward_layer, encoder.backward_layer] \
        if bidirectional else [encoder]
    assert [layer.units for layer in directions] == [5] * len(directions)
    assert model.get_layer("decoder_1").units == 5 * len(directions)
    assert task.decoder_cells[0].units == 5 * len(directions)
    assert task.attentional.units == 5 * len(directions)


def test_attention_plot(sample_model, tmp_path):
    folder, task = sample_model
    source, target, weights = task.attention_matrix("Ein Hund läuft.")
    assert source == ["Ein", "Hund", "läuft", "."]
    assert target[-1] == "</s>"
    assert weights.shape == (len(target), len(source))
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    pytest.importorskip("matplotlib")
    path = tmp_path / "attention.png"
    result = run("translation", "predict", "--model-dir", folder,
                 "--attention-plot", path, "Ein Hund läuft.")
    assert result.exit_code == 0, result.output
    assert path.read_bytes()[:4] == b"\x89PNG"
    for bad in (tmp_path / "attention.xyz", tmp_path / "plot", tmp_path):
        result = run("translation", "predict", "--model-dir", folder,
                     "--attention-plot", bad, "Ein Hund läuft.")
        assert result.exit_code == 1
        assert result.output == (
            f"Error: --attention-plot {bad}: expected the name of a PNG "
            "file to write (ending in .png)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention.png"]


def test_translator_keeps_label_smoothing(tmp_path):
    import keras

    config = Translation.effective_config(
        {"units": 2, "embedding_dim": 4, "label_smoothing": 0.2,
         "attention": "bahdanau"})
    task = Translation(config, Seq2SeqPreprocessor.fit(
        ParallelTexts(["a b"], ["x y"], "t"), config))
    model = task.build_model()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, Translator)
    assert loaded.label_smoothing == 0.2
    x = [np.array([[2, 3]]), np.array([[2, 4, 5]])]
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_sample_generator_is_deterministic(tmp_path, monkeypatch):
    import importlib.util

    script = Path(SAMPLE).with_name("make_translation_sample.py")
    spec = importlib.util.spec_from_file_location("make_sample", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "__file__", str(tmp_path / "x.py"))
    module.main()
    assert (tmp_path / "translation_sample.tsv").read_bytes() == \
        Path(SAMPLE).read_bytes()


# -- tied output layer and the training-only regularizers ----------------------


def _small_task(**settings):
    config = Translation.effective_config(
        {"units": 3, "embedding_dim": 4, "seed": 3, **settings})
    return Translation(config, Seq2SeqPreprocessor.fit(
        ParallelTexts(["a b c", "b c d", "d a"], ["x y", "y z w", "w x"],
                      "t"), config))


def test_tied_output_layer_reads_the_target_embedding():
    import keras

    task = _small_task(tie_embeddings=True, dropout=0.0)
    model = task.build_model()
    assert "logits" not in [layer.name for layer in model.layers]
    assert task.logits_layer is None
    assert task.attentional.units == 4  # --embedding-dim, not 3 x 2
    source = task.source_encoder(tf.constant(["a b c"])).numpy()
    x = [source, np.array([[START_ID, 4, 5]], dtype="int32")]
    states = keras.Model(model.inputs,
                         model.get_layer("output_dropout").output)
    h = states(x, training=False).numpy()
    matrix = task.target_embedding.embeddings.numpy()
    bias = task.target_embedding.bias.numpy()
    logits = model(x, training=False).numpy()
    np.testing.assert_allclose(logits, h @ matrix.T + bias, rtol=1e-5,
                               atol=1e-6)
    # decoding's step function reads the same matrix: its first step's
    # log-probabilities are the model's, over the words it may produce
    memory, keys, mask, start = task.encode_source(tf.constant(["a b c"]))
    log_p, _, _ = task.decode_step(tf.constant([START_ID]), start, memory,
                                   keys, mask)
    allowed = np.arange(logits.shape[-1]) > START_ID
    first = logits[0, 0, allowed]
    expected = first - np.log(np.exp(first - first.max()).sum()) - first.max()
    np.testing.assert_allclose(log_p.numpy()[0, allowed], expected,
                               rtol=1e-5, atol=1e-5)
    # the untied model has its own output matrix, of the decoder's width
    untied = _small_task(dropout=0.0)
    untied.build_model()
    assert untied.logits_layer.kernel.shape == (6, matrix.shape[0])


def test_regularizers_change_training_only():
    plain = _small_task(dropout=0.0)
    regularized = _small_task(dropout=0.0, embedding_dropout=0.5,
                              weight_drop=0.5)
    a = plain.model = plain.build_model()
    b = regularized.model = regularized.build_model()
    assert regularized.decoder_cells[0].weight_drop == 0.5
    assert b.get_layer("encoder_1").forward_layer.cell.weight_drop == 0.5
    assert b.get_layer("source_word_dropout").rate == 0.5
    assert b.get_layer("target_word_dropout").rate == 0.5
    assert [w.shape for w in a.trainable_weights] == \
        [w.shape for w in b.trainable_weights]
    for source, target in zip(a.trainable_weights, b.trainable_weights):
        target.assign(source)
    x = [plain.source_encoder(tf.constant(["a b c d", "d a"])).numpy(),
         np.array([[START_ID, 4, 5, 6], [START_ID, 6, 0, 0]], dtype="int32")]
    expected = a(x, training=False).numpy()
    np.testing.assert_allclose(b(x, training=False), expected, atol=1e-6)
    np.testing.assert_allclose(a(x, training=True), expected, atol=1e-6)
    assert np.abs(b(x, training=True).numpy() - expected).max() > 1e-3
    # weight drop alone changes training too
    dropped = _small_task(dropout=0.0, weight_drop=0.9)
    c = dropped.model = dropped.build_model()
    for source, target in zip(a.trainable_weights, c.trainable_weights):
        target.assign(source)
    np.testing.assert_allclose(c(x, training=False), expected, atol=1e-6)
    assert np.abs(c(x, training=True).numpy() - expected).max() > 1e-4
    assert plain.translate_lines(["a b c", "d a"]) == \
        regularized.translate_lines(["a b c", "d a"])


@pytest.mark.parametrize("args, message", [
    (["--embedding-dropout", "1.5"], "Error: --embedding-dropout: "
     "embedding_dropout must be <= 0.95, got 1.5\n"),
    (["--weight-drop", "-0.1"], "Error: --weight-drop: weight_drop must be "
     ">= 0.0, got -0.1\n"),
    (["--tie-embeddings", "--attention", "none", "--units", "8",
      "--embedding-dim", "12"],
     "Error: --tie-embeddings: tie_embeddings with attention none needs "
     "embedding_dim equal to the decoder's units (16: units x directions), "
     "got 12\n"),
])
def test_regularizer_and_tying_errors(tmp_path, args, message):
    folder = tmp_path / "model"
    result = run("translation", "train", "--model-dir", folder, *args)
    assert result.exit_code == 1
    assert result.output == message
    assert list(tmp_path.iterdir()) == []


def test_tying_error_names_the_config_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[translation]\ntie_embeddings = true\n"
                      'attention = "none"\nunits = 8\nembedding_dim = 12\n',
                      encoding="utf-8")
    result = run("translation", "train", "--config", config, "--model-dir",
                 tmp_path / "model")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {config}: tie_embeddings ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]
