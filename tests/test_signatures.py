"""The exported signatures fit for REST: the NER entities in the graph equal
``predict``'s, the text-only generation and translation signatures equal
the full ones with their documented defaults, and every SavedModel says its
app and family in ``assets.extra/nlpseq.json``."""

import json
import random

import pytest
import tensorflow as tf

import nlpseq
from nlpseq.registry import APPS
from nlpseq.tagging import spans
from nlpseq.tasks.language_model import GENERATE_BEAM_WIDTH, GENERATE_LENGTH
from nlpseq.tasks.seq2seq import EXPORT_BEAM_WIDTH, EXPORT_LENGTH_PENALTY
from nlpseq.tasks.tagger import TaggerTask, graph_entities

NER_SAMPLE = "".join(
    "".join(f"{w} {t}\n" for w, t in rows) + "\n" for rows in [
        [("Anna", "B-PER"), ("Berg", "I-PER"), ("visited", "O"),
         ("Oslo", "B-LOC"), (".", "O")],
        [("Tom", "B-PER"), ("met", "O"), ("Helix", "B-ORG"),
         ("Motors", "I-ORG"), (".", "O")],
    ] * 20)


def strings(tensor):
    return [[v.decode("utf-8") for v in row] for row in tensor.numpy()]


def exported(models, app):
    """The session's tiny exported model of ``app`` (conftest's
    ``exported_models``): its task, version folder and loaded SavedModel."""
    path = models.base_paths[app] / "1"
    return models.tasks[app], path, tf.saved_model.load(str(path))


# -- NER: entities in the graph ------------------------------------------------


def python_entities(texts, tags):
    """The entities of ``predict``'s records for given tags: the Python
    tokenizer's offsets and :func:`~nlpseq.tagging.spans`."""
    _, offsets = TaggerTask.tokenize(texts)
    return [[(kind, text[where[s][0]:where[e - 1][1]], where[s][0],
              where[e - 1][1]) for kind, s, e in spans(row)]
            for text, row, where in zip(texts, tags, offsets)]


graph_entities_function = tf.function(
    graph_entities, autograph=False, input_signature=[
        tf.TensorSpec((None,), tf.string),
        tf.TensorSpec((None, None), tf.string),
        tf.TensorSpec((None, None), tf.string)])


def signature_entities(outputs):
    """Entity tuples per input from the graph's outputs."""
    types, texts = strings(outputs["entity_types"]), strings(
        outputs["entity_texts"])
    starts = outputs["entity_starts"].numpy().tolist()
    ends = outputs["entity_ends"].numpy().tolist()
    found = []
    for row, count in enumerate(outputs["entity_count"].numpy().tolist()):
        found.append(list(zip(types[row], texts[row], starts[row],
                              ends[row]))[:count])
        # (padding after the entities)
        assert set(types[row][count:]) <= {""}
        assert set(texts[row][count:]) <= {""}
        assert set(starts[row][count:] + ends[row][count:]) <= {-1}
    return found


def entities_of(texts, tags):
    """Graph entities of ``texts`` whose word_tokenize tokens get ``tags``
    (a list per text; tokens past its length are dropped, as past
    ``max_length``)."""
    tokens, _ = TaggerTask.tokenize(texts)
    tokens = [row[:len(t)] for row, t in zip(tokens, tags)]
    width = max([len(row) for row in tokens] + [0])
    return signature_entities(graph_entities_function(
        tf.constant(texts, tf.string),
        tf.constant([row + [""] * (width - len(row)) for row in tokens],
                    tf.string, shape=(len(texts), width)),
        tf.constant([row + [""] * (width - len(row)) for row in tags],
                    tf.string, shape=(len(texts), width))))


@pytest.mark.parametrize("text, tags, expected", [
    # I- after O (or first) starts an entity, as conlleval reads it
    ("Anna Berg visited Oslo", ["I-PER", "I-PER", "O", "I-LOC"],
     [("PER", "Anna Berg", 0, 9), ("LOC", "Oslo", 18, 22)]),
    # a change of type ends one entity and starts another
    ("Anna Berg Oslo Rome", ["B-PER", "I-PER", "I-LOC", "I-LOC"],
     [("PER", "Anna Berg", 0, 9), ("LOC", "Oslo Rome", 10, 19)]),
    # an entity at the end, after repeated spaces and a tab
    ("met  \t Helix   Motors", ["O", "B-ORG", "I-ORG"],
     [("ORG", "Helix   Motors", 7, 21)]),
    # B- B- of one type: two entities
    ("Anna Tom", ["B-PER", "B-PER"],
     [("PER", "Anna", 0, 4), ("PER", "Tom", 5, 8)]),
    # IOB1: B- only right after an entity of the same type
    ("Anna Tom Berg", ["I-PER", "B-PER", "I-PER"],
     [("PER", "Anna", 0, 4), ("PER", "Tom Berg", 5, 13)]),
    # BIOES
    ("Oslo Anna Berg Tom", ["S-LOC", "B-PER", "E-PER", "S-PER"],
     [("LOC", "Oslo", 0, 4), ("PER", "Anna Berg", 5, 14),
      ("PER", "Tom", 15, 18)]),
    # I- after E- starts one; O ends one
    ("a b c d", ["B-X", "E-X", "I-X", "O"],
     [("X", "a b", 0, 3), ("X", "c", 4, 5)]),
    # non-ASCII, emoji, punctuation split off, a possessive
    ("Zoë's café 😀 (Köln)!",
     ["B-PER", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O", "O"],
     [("PER", "Zoë", 0, 3), ("ORG", "café 😀", 6, 12),
      ("LOC", "Köln", 14, 18)]),
    # a bare type is inside an entity of that type; types with a dash
    ("x y z", ["PER", "B-MISC-X", "I-MISC-X"],
     [("PER", "x", 0, 1), ("MISC-X", "y z", 2, 5)]),
    # no entities
    ("nothing here", ["O", "O"], []),
    ("", [], []),
    (" \t ", [], []),
], ids=lambda v: repr(v)[:30] if isinstance(v, str) else None)
def test_graph_entities_of_written_tags(text, tags, expected):
    tokens, _ = TaggerTask.tokenize([text])
    assert len(tokens[0]) == len(tags)
    assert python_entities([text], [tags]) == [expected]
    # alone, and in a batch beside a longer sentence
    assert entities_of([text], [tags]) == [expected]
    other = "Anna Berg visited Oslo yesterday morning ."
    assert entities_of([other, text], [["B-PER"] * 7, tags])[1] == expected


def test_graph_entities_equal_the_python_decoding_on_random_tags():
    texts = ["Anna  Berg visited\tOslo.", "", "   ",
             "Émile\tZoë met 😀 Ünïcödé's  friends (in Köln)!",
             "a\u00a0b c\vd e\r\nf", "x", "U.S. 1996-08-22 O'Neill's \"3.5\"",
             "中文字符，标点。日本語 ok"]
    tokens, _ = TaggerTask.tokenize(texts)
    choices = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC",
               "E-LOC", "S-LOC", "PER", "B-"]
    rng = random.Random(0)
    for _ in range(40):
        # (some cut short, as by max_length)
        tags = [[rng.choice(choices) for _ in row][:rng.choice(
            [len(row), max(0, len(row) - 2)])] for row in tokens]
        expected = python_entities(texts, tags)
        assert entities_of(texts, tags) == expected
        for text, found in zip(texts, expected):
            for _, entity_text, start, end in found:
                assert text[start:end] == entity_text


@pytest.fixture(scope="module")
def ner(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ner")
    data = folder / "train.conll"
    data.write_text(NER_SAMPLE)
    task = nlpseq.train(
        "ner", data=str(data), model_dir=folder / "model", units=8,
        embedding_dim=8, char_units=4, char_dim=4, epochs=10,
        learning_rate=0.02, dropout=0.0, batch_size=8, max_length=6,
        seed=1)
    path = task.export(folder / "export")
    return task, path, tf.saved_model.load(str(path))


NER_TEXTS = [
    "Anna Berg visited Oslo.",
    "Tom  met\tHelix   Motors .",
    "Zoë Berg visited Köln 😀, then Oslo!",
    "",
    "   ",
    "Anna Berg visited Oslo. Tom met Helix Motors.",  # over max_length
    "Tom met Anna Berg's friend in Oslo",
]


def test_ner_signature_entities_equal_predict(ner):
    task, _, served = ner
    outputs = served.signatures["serving_default"](
        text=tf.constant(NER_TEXTS))
    records = task.predict(NER_TEXTS)
    found = signature_entities(outputs)
    assert found == [[(e["type"], e["text"], e["start"], e["end"])
                      for e in r["entities"]] for r in records]
    assert sum(map(len, found)) >= 6  # (the model learned the names)
    assert found[0] == [("PER", "Anna Berg", 0, 9), ("LOC", "Oslo", 18, 22)]
    for text, row in zip(NER_TEXTS, found):
        for _, entity_text, start, end in row:
            assert text[start:end] == entity_text
    # the tokens and tags are predict's too, cut at max_length
    tokens, tags = strings(outputs["tokens"]), strings(outputs["tags"])
    for row, record in enumerate(records):
        n = min(len(record["tokens"]), 6)
        assert tokens[row] == record["tokens"][:n] + [""] * (
            len(tokens[row]) - n)
        assert tags[row] == record["tags"][:n] + [""] * (len(tags[row]) - n)
    assert outputs["entity_count"].dtype == tf.int32
    assert outputs["entity_starts"].dtype == tf.int32


def test_ner_signatures_keep_their_inputs_and_outputs(ner):
    _, _, served = ner
    default = served.signatures["serving_default"]
    assert list(default.structured_input_signature[1]) == ["text"]
    assert set(default.structured_outputs) == {
        "tokens", "tags", "entity_types", "entity_texts", "entity_starts",
        "entity_ends", "entity_count"}
    assert set(served.signatures["tokens"].structured_outputs) == {"tags"}
    only_empty = default(text=tf.constant([""]))
    assert only_empty["entity_count"].numpy().tolist() == [0]
    assert only_empty["entity_types"].shape == (1, 0)


# -- next-word: text-only generation ---------------------------------------------


@pytest.fixture(scope="module")
def next_word(exported_models):
    return exported(exported_models, "next-word")


@pytest.mark.parametrize("name, strategy", [("generate_greedy", "greedy"),
                                            ("generate_beam", "beam")])
def test_text_only_generation_is_generate_with_its_defaults(
        next_word, name, strategy):
    task, _, served = next_word
    prompts = ["on sunday", "she", ""]
    signature = served.signatures[name]
    assert list(signature.structured_input_signature[1]) == ["text"]
    outputs = signature(text=tf.constant(prompts))
    full = served.signatures["generate"](
        text=tf.constant(prompts), length=tf.constant(GENERATE_LENGTH),
        strategy=tf.constant(strategy), temperature=tf.constant(1.0),
        top_k=tf.constant(0), beam_width=tf.constant(GENERATE_BEAM_WIDTH),
        seed=tf.constant(0))
    assert set(outputs) == {"text", "tokens"}
    assert strings(outputs["tokens"]) == strings(full["tokens"])
    assert outputs["text"].numpy().tolist() == full["text"].numpy().tolist()
    assert outputs["tokens"].shape == (3, GENERATE_LENGTH)
    # the generate command's defaults
    text, tokens = task.generate(prompts[0], strategy=strategy)
    assert strings(outputs["tokens"])[0] == tokens
    assert outputs["text"].numpy()[0].decode() == text


# -- translation: text-only greedy and beam -----------------------------------------


@pytest.fixture(scope="module")
def translation(exported_models):
    return exported(exported_models, "translation")


TRANSLATION_TEXTS = ["Ein Hund läuft.", "Zwei Kinder spielen am Strand.", ""]


def full_translate(served, beam_width, n_best):
    return served.signatures["translate"](
        text=tf.constant(TRANSLATION_TEXTS),
        beam_width=tf.constant(beam_width),
        length_penalty=tf.constant(EXPORT_LENGTH_PENALTY),
        n_best=tf.constant(n_best))


def test_translate_greedy_is_translate_with_beam_width_one(translation):
    task, _, served = translation
    signature = served.signatures["translate_greedy"]
    assert list(signature.structured_input_signature[1]) == ["text"]
    outputs = signature(text=tf.constant(TRANSLATION_TEXTS))
    full = full_translate(served, 1, 1)
    assert set(outputs) == {"translation", "score"}
    assert outputs["translation"].numpy().tolist() == \
        full["translations"].numpy()[:, 0].tolist()
    assert outputs["score"].numpy().tolist() == \
        full["scores"].numpy()[:, 0].tolist()
    texts, scores = task.translate_lines(TRANSLATION_TEXTS, beam_width=1,
                                         n_best=1)
    assert [t.decode() for t in outputs["translation"].numpy()] == \
        [row[0] for row in texts]
    assert outputs["score"].numpy().tolist() == pytest.approx(
        [row[0] for row in scores], abs=1e-5)


def test_translate_beam_gives_the_beams_best(translation):
    task, _, served = translation
    signature = served.signatures["translate_beam"]
    assert list(signature.structured_input_signature[1]) == ["text"]
    outputs = signature(text=tf.constant(TRANSLATION_TEXTS))
    full = full_translate(served, EXPORT_BEAM_WIDTH, EXPORT_BEAM_WIDTH)
    assert set(outputs) == {"translations", "scores"}
    assert outputs["translations"].shape == (3, EXPORT_BEAM_WIDTH)
    assert outputs["translations"].numpy().tolist() == \
        full["translations"].numpy().tolist()
    assert outputs["scores"].numpy().tolist() == \
        full["scores"].numpy().tolist()
    texts, _ = task.translate_lines(TRANSLATION_TEXTS,
                                    beam_width=EXPORT_BEAM_WIDTH,
                                    n_best=EXPORT_BEAM_WIDTH)
    assert strings(outputs["translations"]) == texts
    # the default signature is still the best of the same beam
    default = served.signatures["serving_default"](
        text=tf.constant(TRANSLATION_TEXTS))
    assert default["translation"].numpy().tolist() == \
        outputs["translations"].numpy()[:, 0].tolist()


# -- what an export says of itself --------------------------------------------------


@pytest.fixture(scope="module")
def sentiment(exported_models):
    return exported(exported_models, "sentiment")[:2]


@pytest.mark.parametrize("fixture, app, family", [
    ("sentiment", "sentiment", "classifier"), ("ner", "ner", "tagger"),
    ("next_word", "next-word", "language_model"),
    ("translation", "translation", "seq2seq")])
def test_saved_model_says_its_app_and_family(request, fixture, app, family):
    path = request.getfixturevalue(fixture)[1]
    cls = APPS.get(app)
    assert json.loads((path / "assets.extra" / "nlpseq.json").read_text()) \
        == {"app": app, "family": family,
            "nlpseq_version": nlpseq.__version__,
            # (what the demo page shows of it)
            "demo": {"panel": cls.demo_panel, "example": cls.demo_example},
            # (the caps on a request's work: the defaults)
            "limits": {s.name: s.default for s in cls.export_settings}}
    assert (path / "saved_model.pb").is_file()
    assert not list(path.parent.glob(".*"))  # (written before the rename)


def test_onnx_export_has_no_saved_model_info(sentiment, tmp_path):
    pytest.importorskip("tf2onnx")
    task, _ = sentiment
    path = task.export(tmp_path, format="onnx")
    assert sorted(p.name for p in path.iterdir()) == [
        "model.onnx", "preprocessor.json"]


# -- edge inputs: the graph and the library agree ------------------------------

#: Empty, whitespace-only (ASCII and Unicode: no-break space, ideographic
#: space, line separator), one character, and ordinary text.
EDGE_INPUTS = ["", " ", "\t\n", "\u00a0", "\u3000 \u2028", "a", "é",
               "the house", "Anna visited Oslo ."]


def _agree_classifier(record, served, row):
    if record["label"] is None:  # (the empty result)
        assert served["label"][row] == b""
        assert served["probabilities"][row].tolist() == [0.0] * len(
            served["probabilities"][row])
    else:
        assert served["label"][row].decode() == record["label"]
        assert float(max(served["probabilities"][row])) == pytest.approx(
            record["probability"], abs=1e-5)


def _agree_tagger(record, served, row):
    tokens = [t.decode() for t in served["tokens"][row]]
    tags = [t.decode() for t in served["tags"][row]]
    n = len(record["tokens"])
    assert tokens == record["tokens"] + [""] * (len(tokens) - n)
    assert tags == record["tags"] + [""] * (len(tags) - n)
    count = int(served["entity_count"][row])
    assert count == len(record["entities"])


def _agree_language_model(record, served, row):
    words = [t.decode() for t in served["tokens"][row]]
    assert words[:len(record["next"])] == [n["token"] for n in record["next"]]


def _agree_translator(record, served, row):
    assert served["translation"][row].decode() == record["translation"]
    if record["score"] is None:  # (the empty result)
        assert float(served["score"][row]) == 0.0
    else:
        assert float(served["score"][row]) == pytest.approx(
            record["score"], abs=1e-4)


AGREE = {"sentiment": _agree_classifier, "ner": _agree_tagger,
         "next-word": _agree_language_model,
         "translation": _agree_translator}


@pytest.mark.parametrize("app", list(AGREE))
def test_edge_inputs_get_the_python_apis_answer_from_the_graph(
        exported_models, app):
    """Every app's ``serving_default`` answers the edge inputs as
    ``predict`` does: the empty result for an empty or whitespace-only
    text ("" and 0 where the record has None), the same answer for one
    character."""
    task, _, served = exported(exported_models, app)
    records = task.predict(EDGE_INPUTS)
    outputs = served.signatures["serving_default"](
        text=tf.constant(EDGE_INPUTS))
    outputs = {k: v.numpy() for k, v in outputs.items()}
    for row, record in enumerate(records):
        AGREE[app](record, outputs, row)


@pytest.mark.parametrize("app", list(AGREE))
def test_bytes_that_are_not_utf8_are_refused_by_the_graph(exported_models,
                                                         app):
    """As the command line refuses such a line and Python cannot hold it
    in a str: INVALID_ARGUMENT from the graph itself, in any server."""
    _, _, served = exported(exported_models, app)
    for bad in (b"\xff\xfe", b"caf\xe9", b"\xed\xa0\x80"):  # (a surrogate)
        with pytest.raises(tf.errors.InvalidArgumentError):
            served.signatures["serving_default"](
                text=tf.constant([b"fine", bad]))
