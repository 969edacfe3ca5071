"""The shared life cycle, through the command line, for every app.

Each app contributes an :class:`AppCase` (tiny data and a tiny model); the
tests below run for each: train -> folder -> load -> predict -> export ->
SavedModel equals predict, resuming, atomic publication, config precedence,
model-folder errors and prediction formats.
"""

import csv
import io
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from nlpseq.cli import cli
from nlpseq.registry import APPS

TINY = ["--units", "4", "--embedding-dim", "4", "--batch-size", "8", "--dropout", "0",
        "--epochs", "2", "--seed", "3"]


@dataclass
class AppCase:
    name: str
    write_train: callable  # (folder) -> path of a small training file
    inputs: list  # prediction inputs
    tiny: list  # flags for a tiny, fast model
    answer: callable  # record -> the prediction as a string
    check_served: callable  # (serving_default outputs, records) -> None
    served_key: str  # an output of serving_default that holds answers
    metric: str  # a metric of evaluate --json, shown by evaluate too
    bad_setting: tuple  # (args, one-line error) of an app setting
    shown: callable = None  # record -> what --format text shows of it


def _write_sentiment(folder):
    rng = np.random.default_rng(0)
    good = ["good", "great", "fine", "lovely", "superb"]
    bad = ["bad", "awful", "dull", "boring", "poor"]
    rows = []
    for i in range(48):
        label = "pos" if i % 2 else "neg"
        words = rng.choice(good if label == "pos" else bad, 3)
        rows.append((f"a {' '.join(words)} film", label))
    path = Path(folder) / "train.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def _write_topics(folder):
    rng = np.random.default_rng(0)
    topics = {"sport": ["goal", "match", "coach"],
              "food": ["soup", "bread", "chef"],
              "tech": ["chip", "phone", "robot"]}
    path = Path(folder) / "headlines.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["headline", "topic"])
        for i in range(60):
            topic = list(topics)[i % 3]
            writer.writerow([f"the {' and the '.join(rng.choice(topics[topic], 2))}",
                             topic])
    return path


def _check_sentiment_served(outputs, records):
    labels = [x.decode() for x in outputs["label"].numpy()]
    assert labels == [r["label"] for r in records]
    np.testing.assert_allclose(
        outputs["probabilities"].numpy(),
        [list(r["probabilities"].values()) for r in records], atol=1e-5)
    names = outputs["class_names"].numpy()
    assert names.shape[0] == len(records)
    assert [n.decode() for n in names[0]] == list(
        records[0]["probabilities"])


def _write_corpus(folder):
    rng = np.random.default_rng(0)
    days = ["monday", "friday", "sunday"]
    foods = ["pizza", "soup", "rice", "cake"]
    lines = [f"on {rng.choice(days)} i eat {rng.choice(foods)} ."
             for _ in range(120)]
    path = Path(folder) / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _check_next_word_served(outputs, records):
    tokens = [[t.decode() for t in row] for row in outputs["tokens"].numpy()]
    probabilities = outputs["probabilities"].numpy()
    for record, row, values in zip(records, tokens, probabilities):
        k = len(record["next"])
        assert row[:k] == [n["token"] for n in record["next"]]
        np.testing.assert_allclose(
            values[:k], [n["probability"] for n in record["next"]],
            atol=1e-5)
        assert np.all(np.diff(values) <= 1e-7)  # ranked


def _write_conll(folder):
    rng = np.random.default_rng(0)
    people = ["Anna Berg", "Tom Hale", "Ines Roy"]
    places = ["Oslo", "Lyon", "Kyoto"]
    blocks = []
    for _ in range(40):
        person = rng.choice(people).split()
        place = rng.choice(places)
        rows = [(person[0], "B-PER"), (person[1], "I-PER"), ("visited", "O"),
                (place, "B-LOC"), (".", "O")]
        blocks.append("".join(f"{w} X {t}\n" for w, t in rows))
    path = Path(folder) / "train.conll"
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def _check_ner_served(outputs, records):
    for row, record in enumerate(records):
        n = len(record["tokens"])
        assert [t.decode() for t in outputs["tokens"].numpy()[row, :n]] == \
            record["tokens"]
        assert [t.decode() for t in outputs["tags"].numpy()[row, :n]] == \
            record["tags"]
        assert all(t == b"" for t in outputs["tags"].numpy()[row, n:])


def _write_pairs(folder):
    rng = np.random.default_rng(0)
    words = {"hund": "dog", "katze": "cat", "maus": "mouse", "vogel": "bird"}
    rows = []
    for _ in range(60):
        chosen = rng.choice(list(words), 2)
        rows.append(f"{' '.join(chosen)}\t{' '.join(words[w] for w in chosen)}")
    path = Path(folder) / "pairs.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _check_translation_served(outputs, records):
    assert [t.decode() for t in outputs["translation"].numpy()] == [
        r["translation"] for r in records]
    np.testing.assert_allclose(outputs["score"].numpy(),
                               [r["score"] for r in records], atol=1e-3)


CASES = {
    "sentiment": AppCase(
        "sentiment", _write_sentiment,
        ["a great film", "an awful, dull film", ""], TINY,
        answer=lambda record: record["label"],
        check_served=_check_sentiment_served, served_key="label",
        metric="accuracy",
        bad_setting=(["--max-length", "0"],
                     "Error: --max-length: max_length must be >= 1, got 0")),
    "topic": AppCase(
        "topic", _write_topics, ["the goal and the coach", "the chef", ""],
        TINY, answer=lambda record: record["label"],
        check_served=_check_sentiment_served, served_key="label",
        metric="macro_f1",
        bad_setting=(["--bigram-dim", "0"],
                     "Error: --bigram-dim: bigram_dim must be >= 1, got 0")),
    "next-word": AppCase(
        "next-word", _write_corpus, ["on sunday i eat", "on", ""],
        TINY + ["--layers", "1", "--sequence-length", "10"],
        answer=lambda record: record["next"][0]["token"],
        check_served=_check_next_word_served, served_key="tokens",
        metric="perplexity",
        bad_setting=(["--sequence-length", "0"],
                     "Error: --sequence-length: sequence_length must be >= "
                     "1, got 0")),
    "ner": AppCase(
        "ner", _write_conll, ["Anna Berg visited Lyon.", "Oslo", ""],
        TINY + ["--char-features", "cnn", "--char-units", "3", "--char-dim", "3"],
        answer=lambda record: record["tags"][0] if record["tags"] else "",
        check_served=_check_ner_served, served_key="tags", metric="f1",
        bad_setting=(["--char-units", "0"],
                     "Error: --char-units: char_units must be >= 1, got 0"),
        shown=lambda record: record["tokens"][0] if record["tokens"]
        else ""),
    "translation": AppCase(
        "translation", _write_pairs, ["hund katze", "vogel", ""], TINY,
        answer=lambda record: record["translation"],
        check_served=_check_translation_served, served_key="translation",
        metric="bleu",
        bad_setting=(["--label-smoothing", "0.95"],
                     "Error: --label-smoothing: label_smoothing must be <= "
                     "0.9, got 0.95")),
}


#: The record of an empty input, per app: an empty result, without running
#: the model (``None``: an empty input is predicted like any other; for the
#: language model, the tokens that start a line).
EMPTY_RECORDS = {
    "sentiment": {"text": "", "label": None, "probability": None,
                  "probabilities": {}},
    "topic": {"text": "", "label": None, "probability": None,
              "probabilities": {}},
    "next-word": None,
    "ner": {"text": "", "tokens": [], "tags": [], "entities": []},
    "translation": {"text": "", "translation": "", "score": None},
}
EMPTY_WARNING = ("warning: input {n} is empty: its record has an empty "
                 "result (no prediction), as has every empty input\n")


def run(*args, input=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], input=input,
                                catch_exceptions=False)
    return result


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tmp_path_factory):
    """A model of each app trained once for the module's tests."""
    case = CASES[request.param]
    folder = tmp_path_factory.mktemp(case.name)
    data = case.write_train(folder)
    model_dir = folder / "model"
    result = run(case.name, "train", "--data", data, "--model-dir",
                 model_dir, *case.tiny)
    assert result.exit_code == 0, result.output
    return case, data, model_dir, result.output


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The trained model exported once, as version 1 of a new folder:
    ``(case, model_dir, versions_folder)``."""
    case, _, model_dir, _ = trained
    folder = tmp_path_factory.mktemp(f"{case.name}-serving")
    result = run(case.name, "export", "--model-dir", model_dir,
                 "--output", folder)
    assert result.exit_code == 0, result.output
    assert (folder / "1" / "saved_model.pb").is_file()
    return case, model_dir, folder


def test_every_registered_app_has_a_case():
    assert set(APPS.names()) == set(CASES)


def test_train_writes_the_model_folder(trained):
    case, data, model_dir, output = trained
    assert f"Saved {model_dir}" in output
    config = json.loads((model_dir / "config.json").read_text())
    assert config["app"] == case.name
    assert config["class"] == APPS.describe(case.name)
    assert config["config"]["units"] == 4  # the flag beat the default
    assert config["config"]["data"] == str(data)
    for name in ("model.keras", "metrics.json", "history.csv",
                 "checkpoints/last.keras", "checkpoints/best.weights.h5",
                 "checkpoints/state.json"):
        assert (model_dir / name).is_file(), name
    assert list((model_dir / "logs").rglob("events.out.tfevents.*"))
    history = list(csv.DictReader(open(model_dir / "history.csv")))
    assert [row["epoch"] for row in history] == ["0", "1"]
    assert not model_dir.with_name(f".{model_dir.name}.training").exists()


def test_predict_export_and_serving_agree(exported):
    case, model_dir, serving = exported
    result = run(case.name, "predict", "--model-dir", model_dir,
                 "--format", "jsonl", *case.inputs)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == case.inputs
    # (the last input is empty: an empty result, which serving, run on
    # every input as it comes, does not give)
    assert case.inputs[-1] == ""
    if EMPTY_RECORDS[case.name] is not None:
        assert records[-1] == EMPTY_RECORDS[case.name]
        records, inputs = records[:-1], case.inputs[:-1]
    else:
        inputs = case.inputs

    served = tf.saved_model.load(str(serving / "1"))
    outputs = served.signatures["serving_default"](
        text=tf.constant(inputs))
    case.check_served(outputs, records)


def test_export_numbers_versions(trained, tmp_path):
    """``--version N`` writes folder N; without it, the next number after
    the highest (shared code: one app shows it)."""
    case, _, model_dir, _ = trained
    if case.name != "sentiment":
        pytest.skip("version numbering is the Task base's: sentiment shows it")
    result = run(case.name, "export", "--model-dir", model_dir, "--output",
                 tmp_path, "--version", "7")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "7" / "saved_model.pb").is_file()
    again = run(case.name, "export", "--model-dir", model_dir,
                "--output", tmp_path)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7", "8"]
    assert (tmp_path / "8" / "saved_model.pb").is_file()


def test_empty_inputs_give_empty_results_and_one_warning(trained):
    case, _, model_dir, _ = trained
    inputs = ["", "  ", case.inputs[0], ""]
    result = run(case.name, "predict", "--model-dir", model_dir,
                 "--format", "jsonl", *inputs)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == inputs
    empty = EMPTY_RECORDS[case.name]
    if empty is None:  # the language model: what starts a line
        assert result.stderr == ""
        assert all(r["next"] for r in records)
        assert records[0]["next"] == records[1]["next"] == records[3]["next"]
    else:
        assert result.stderr == EMPTY_WARNING.format(n=1)
        for index in (0, 1, 3):
            assert records[index] == dict(empty, text=inputs[index])
        assert records[2] != dict(empty, text=inputs[2])
    # the text format keeps a line per input
    text = run(case.name, "predict", "--model-dir", model_dir, *inputs)
    assert len(text.stdout.split("\n")) == len(inputs) + 1


def test_saved_model_cli_runs_on_raw_text(exported):
    case, model_dir, serving = exported
    expr = "text=" + json.dumps(case.inputs[:2])
    command = [sys.executable, "-c",
               "from tensorflow.python.tools.saved_model_cli import main; "
               "main()", "run", "--dir", str(serving / "1"), "--tag_set",
               "serve", "--signature_def", "serving_default",
               "--input_exprs", expr]
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    predicted = run(case.name, "predict", "--model-dir", model_dir,
                    "--format", "jsonl", *case.inputs[:2]).output
    answers = [case.answer(json.loads(line))
               for line in predicted.splitlines()]
    shown = done.stdout.split(f"Result for output key {case.served_key}:")[1]
    assert all(f"b'{answer}'" in shown for answer in answers), shown


def test_export_refuses_an_existing_version(exported):
    case, model_dir, serving = exported
    before = sorted(p.name for p in serving.iterdir())
    result = run(case.name, "export", "--model-dir", model_dir, "--output",
                 serving, "--version", "1")
    assert result.exit_code == 1
    assert result.output == (f"Error: --version 1: {serving / '1'} exists "
                             "already; give another version number\n")
    assert sorted(p.name for p in serving.iterdir()) == before


def test_prediction_formats(trained, tmp_path):
    case, _, model_dir, _ = trained
    inputs = case.inputs[:2]
    as_json = json.loads(run(case.name, "predict", "--model-dir", model_dir,
                             "--format", "json", *inputs).output)
    assert [r["text"] for r in as_json] == inputs
    rows = list(csv.DictReader(io.StringIO(run(
        case.name, "predict", "--model-dir", model_dir, "--format", "csv",
        *inputs).output)))
    assert [r["text"] for r in rows] == inputs
    assert [case.answer({k: json.loads(v) if v.startswith(("[", "{")) else v
                         for k, v in r.items()}) for r in rows] == [
        case.answer(r) for r in as_json]
    text = run(case.name, "predict", "--model-dir", model_dir,
               *inputs).output.splitlines()
    shown = case.shown or case.answer
    assert len(text) == 2 and all(shown(as_json[i]) in text[i]
                                  for i in range(2))
    # from a file and from stdin, the same
    path = tmp_path / "inputs.txt"
    path.write_text("\n".join(inputs) + "\n", encoding="utf-8")
    from_file = run(case.name, "predict", "--model-dir", model_dir,
                    "--input", path, "--format", "json").output
    from_stdin = run(case.name, "predict", "--model-dir", model_dir,
                     "--format", "json", input="\n".join(inputs)).output
    assert json.loads(from_file) == as_json == json.loads(from_stdin)


def test_predict_on_empty_input_prints_nothing(trained, tmp_path):
    case, _, model_dir, _ = trained
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    for args, stdin in (((("--input", empty)), None), ((), "")):
        result = run(case.name, "predict", "--model-dir", model_dir, *args,
                     input=stdin)
        assert result.exit_code == 0
        assert result.output == ""


def test_evaluate_reports_json(trained):
    case, data, model_dir, _ = trained
    result = run(case.name, "evaluate", "--model-dir", model_dir, "--data",
                 data, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    text = run(case.name, "evaluate", "--model-dir", model_dir, "--data",
               data).output
    value = metrics[case.metric]
    assert f"{value:.4f}" in text or f"{value:.2f}" in text, text


# -- resuming and atomic publication -------------------------------------------


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_model(
        trained, tmp_path, interrupted_after_first_epoch):
    import keras

    case, data, straight, _ = trained
    name = case.name
    # (the previous model: a copy of the module's trained one, whose run
    # this one repeats)
    old = tmp_path / "model"
    shutil.copytree(straight, old)
    before = {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()}

    with interrupted_after_first_epoch():
        result = run(name, "train", "--data", data, "--model-dir", old,
                     *case.tiny)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: interrupted; the previous model in {old} is untouched; "
        f"continue with: nlpseq {name} train --model-dir {old} --resume")
    # the previous model is intact
    assert {p.name: p.read_bytes() for p in old.iterdir()
            if p.is_file()} == before

    result = run(name, "train", "--model-dir", old, "--resume")
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.output
    a = keras.saving.load_model(straight / "model.keras")
    b = keras.saving.load_model(old / "model.keras")
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    history = list(csv.DictReader(open(old / "history.csv")))
    assert [row["epoch"] for row in history] == ["0", "1"]
    # the training time adds up the epochs before and after the interruption
    state = json.loads((old / "checkpoints" / "state.json").read_text())
    metrics = json.loads((old / "metrics.json").read_text())
    assert metrics["training_seconds"] == pytest.approx(
        state["training_seconds"], abs=0.11)
    assert state["training_seconds"] > 0


@pytest.mark.parametrize("name", list(CASES))
def test_resume_with_nothing_to_resume(name, tmp_path):
    result = run(name, "train", "--model-dir", tmp_path / "m", "--resume")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --resume: no interrupted run of {tmp_path / 'm'} to "
        f"continue (looked for {tmp_path / '.m.training'})\n")


# -- configuration ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_config_precedence_flag_over_file_over_default(name, tmp_path):
    cls = APPS.get(name)
    path = tmp_path / "run.toml"
    path.write_text(f"[{name}]\nunits = 7\nepochs = 3\n")
    config = cls.effective_config({"units": 5, "epochs": None}, path)
    assert (config["units"], config["epochs"]) == (5, 3)
    default = {s.name: s.default for s in cls.all_settings()}
    assert config["batch_size"] == default["batch_size"]
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text("units: 9\n")
    assert cls.effective_config({}, yaml_path)["units"] == 9


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("args, message", [
    (["--epochs", "-1"], "Error: --epochs: epochs must be >= 1, got -1"),
    ("app", None),
    (["--valid-split", "1.5"],
     "Error: --valid-split: valid_split must be <= 0.9, got 1.5"),
    (["--lr-decay", "0"],
     "Error: --lr-decay: lr_decay must be > 0.0, got 0.0"),
])
def test_bad_settings(name, args, message, tmp_path):
    if args == "app":
        args, message = CASES[name].bad_setting
    result = run(name, "train", "--model-dir", tmp_path / "m", *args)
    assert result.exit_code == 1
    assert result.output == message + "\n"
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config_files(name, tmp_path):
    unknown = tmp_path / "a.toml"
    unknown.write_text("unitz = 3\n")
    result = run(name, "train", "--config", unknown)
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: {unknown}: unknown setting 'unitz'; known settings: ")
    broken = tmp_path / "b.yaml"
    broken.write_text("units: [1\nepochs: 2\n")
    result = run(name, "train", "--config", broken)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {broken}: invalid YAML at line")
    wrong = tmp_path / "c.toml"
    wrong.write_text('units = "many"\n')
    assert run(name, "train", "--config", wrong).output == (
        f"Error: {wrong}: units must be an integer, got 'many'\n")


# -- model folders -----------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_model_folder_errors(command, trained, tmp_path):
    case, _, model_dir, _ = trained
    name = case.name
    extra = {"predict": ["some text"], "evaluate": ["--data", "x.csv"],
             "export": []}[command]

    def check(folder, message):
        result = run(name, command, "--model-dir", folder, *extra)
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {message}\n"

    nowhere = tmp_path / "nowhere"
    check(nowhere, f"Model folder not found: {nowhere}; train one first: "
          f"nlpseq {name} train --model-dir {nowhere}")
    (tmp_path / "plain").mkdir()
    check(tmp_path / "plain",
          f"{tmp_path / 'plain'}: not an nlpseq model folder (no config.json)")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"app": "elsewhere"}')
    check(other, f"{other}: a model of the 'elsewhere' app, not '{name}' "
                 f"(use: nlpseq elsewhere ...)")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"app": ')
    result = run(name, command, "--model-dir", broken, *extra)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {broken / 'config.json'}: "
                                    "corrupted")
    # a model file cut short
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for item in model_dir.iterdir():
        if item.is_file():
            (damaged / item.name).write_bytes(item.read_bytes())
    (damaged / "model.keras").write_bytes(
        (model_dir / "model.keras").read_bytes()[:500])
    result = run(name, command, "--model-dir", damaged, *extra)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {damaged}: corrupted model (")
    assert "\n" not in result.output.rstrip("\n")
    # the preprocessor: missing, cut short, or of the wrong shape
    for name_, content in (("missing", None), ("cut", b'{"class": '),
                           ("shape", b'{"class": "X", "state": []}')):
        folder = tmp_path / f"preprocessor_{name_}"
        folder.mkdir()
        for item in model_dir.iterdir():
            if item.is_file() and item.name != "preprocessor.json":
                (folder / item.name).write_bytes(item.read_bytes())
        if content is not None:
            (folder / "preprocessor.json").write_bytes(content)
        result = run(name, command, "--model-dir", folder, *extra)
        assert result.exit_code == 1, result.output
        expected = (f"Error: {folder}: corrupted (missing preprocessor.json)"
                    if content is None else
                    f"Error: {folder / 'preprocessor.json'}: corrupted (")
        assert result.output.startswith(expected), result.output
        assert "\n" not in result.output.rstrip("\n")
    # an empty vocabulary (every family's)
    folder = tmp_path / "preprocessor_empty"
    shutil.copytree(model_dir, folder)
    saved = json.loads((folder / "preprocessor.json").read_text())
    emptied = [key for key in saved["state"]
               if "vocabulary" in key or key == "words"]
    assert emptied
    for key in emptied:
        saved["state"][key] = []
    (folder / "preprocessor.json").write_text(json.dumps(saved))
    result = run(name, command, "--model-dir", folder, *extra)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"Error: {folder / 'preprocessor.json'}: corrupted (ValueError: "
        "empty "), result.output
    assert "vocabulary" in result.output
    assert "\n" not in result.output.rstrip("\n")
