"""Bad settings and bad data get one clear ``Error:`` line (or a warning),
never a traceback or a silently wrong result; and a failed training writes
nothing.

(Cases of one reader or of ``config.merge`` alone are in test_config.py,
test_data_*.py and test_ner.py; per-app prediction cases in
test_pipeline.py.)
"""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pipeline import TINY, _write_sentiment

import nlpseq
from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.registry import APPS
from nlpseq.tasks.trainer import Trainer

APP_NAMES = ["sentiment", "topic", "next-word", "ner", "translation"]


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def nothing_written(tmp_path, name="m"):
    """No model folder and no staging folder of ``tmp_path / name``."""
    return not (tmp_path / name).exists() and not (
        tmp_path / f".{name}.training").exists()


def hashes(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes())
            .hexdigest() for p in sorted(Path(folder).rglob("*"))
            if p.is_file()}


# -- NaN and infinities in every float setting and option ---------------------


@pytest.mark.parametrize("name", APP_NAMES)
@pytest.mark.parametrize("flag, value", [
    ("--learning-rate", "nan"), ("--learning-rate", "inf"),
    ("--clip-norm", "nan"), ("--dropout", "nan"), ("--valid-split", "nan"),
    ("--lr-decay", "-inf"), ("--weight-average", "nan"),
])
def test_train_refuses_nan_and_infinities(name, flag, value, tmp_path):
    result = run(name, "train", "--model-dir", tmp_path / "m", flag, value)
    assert result.exit_code == 1
    setting = flag[2:].replace("-", "_")
    assert result.output == (f"Error: {flag}: {setting} must be a finite "
                             f"number, got {value}\n")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("args", [
    ["translation", "predict", "--length-penalty", "nan", "ein hund"],
    ["next-word", "generate", "--temperature", "nan"],
    ["next-word", "generate", "--temperature", "inf"],
])
def test_prediction_options_refuse_nan_and_infinities(args, tmp_path):
    result = run(*args[:2], "--model-dir", tmp_path / "m", *args[2:])
    assert result.exit_code == 1
    setting = args[2][2:].replace("-", "_")
    assert result.output == (f"Error: {args[2]}: {setting} must be a finite "
                             f"number, got {args[3]}\n")


@pytest.mark.parametrize("text, shown", [
    ("learning_rate = nan\n", "learning_rate must be a finite number, got "
                              "nan"),
    ("[sentiment]\nclip_norm = inf\n", "clip_norm must be a finite number, "
                                       "got inf"),
])
def test_config_file_nan_and_infinities(text, shown, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(text)
    result = run("sentiment", "train", "--config", path, "--model-dir",
                 tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: {shown}\n"
    assert nothing_written(tmp_path)


def test_yaml_nan(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dropout: .nan\n")
    result = run("ner", "train", "--config", path, "--model-dir",
                 tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: dropout must be a finite number, got nan\n")
    assert nothing_written(tmp_path)


# -- --valid with --valid-split; other apps' config tables --------------------


def test_valid_with_an_explicit_valid_split_is_an_error(tmp_path):
    data = _write_sentiment(tmp_path)
    result = run("sentiment", "train", "--data", data, "--valid", data,
                 "--valid-split", "0.2", "--model-dir", tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --valid-split: valid_split 0.2 cannot be used with --valid "
        f"{data} (the validation data is given); drop one of them\n")
    assert nothing_written(tmp_path)
    # from a config file
    path = tmp_path / "run.toml"
    path.write_text("valid_split = 0.3\n")
    result = run("sentiment", "train", "--data", data, "--valid", data,
                 "--config", path, "--model-dir", tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: valid_split 0.3 cannot be used with --valid "
        f"{data} (the validation data is given); drop one of them\n")
    # from the Python API
    with pytest.raises(NlpseqError) as caught:
        nlpseq.train("sentiment", data=data, valid=data, valid_split=0.2,
                     model_dir=tmp_path / "m")
    assert str(caught.value).startswith(
        "--valid-split: valid_split 0.2 cannot be used with --valid ")
    assert nothing_written(tmp_path)
    # the split's default alone is no conflict
    config = APPS.get("sentiment").effective_config(
        {"data": str(data), "valid": str(data)})
    assert config["valid_split"] == 0.1
    # the built-in sample has its own validation file
    result = run("sentiment", "train", "--valid-split", "0.2",
                 "--model-dir", tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == (
        "Error: --valid-split: the built-in sample has its own validation "
        "file (sentiment_valid.csv); --valid-split splits the data given "
        "with --data\n")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("name", APP_NAMES)
def test_config_file_of_other_apps_tables_only(name, tmp_path):
    other = "ner" if name != "ner" else "sentiment"
    path = tmp_path / "run.toml"
    path.write_text(f"[{other}]\nunits = 8\n")
    result = run(name, "train", "--config", path, "--model-dir",
                 tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: no settings for {name}: its only tables are "
        f"[{other}] (other apps' settings); add a [{name}] table or "
        "top-level settings\n")
    assert nothing_written(tmp_path)


# -- --resume with changed settings ---------------------------------------------


def _interrupted_run(tmp_path, **changes):
    """A staging folder as an interrupted sentiment run leaves it."""
    cls = APPS.get("sentiment")
    config = dict(cls.effective_config({}), units=4, epochs=3, **changes)
    staging = tmp_path / ".m.training"
    (staging / "checkpoints").mkdir(parents=True)
    (staging / "config.json").write_text(json.dumps(
        {"app": "sentiment", "config": config}))
    (staging / "checkpoints" / "state.json").write_text(json.dumps(
        {"epochs_done": 1, "stopped_early": False}))
    return staging


def test_resume_refuses_changed_settings(tmp_path):
    staging = _interrupted_run(tmp_path)
    before = hashes(staging)
    result = run("sentiment", "train", "--model-dir", tmp_path / "m",
                 "--resume", "--units", "8", "--dropout", "0.5", "--epochs",
                 "5")
    assert result.exit_code == 1
    assert result.output == (
        "Error: --resume: the interrupted run continues with its own "
        "settings, but these differ: units 8 (from --units; the run has 4); "
        "dropout 0.5 (from --dropout; the run has 0.3); drop them (only "
        "--epochs may change), or train again without --resume\n")
    assert hashes(staging) == before
    assert not (tmp_path / "m").exists()


def test_resume_accepts_epochs_and_unchanged_settings(tmp_path):
    staging = _interrupted_run(tmp_path)
    cls = APPS.get("sentiment")
    given = cls.effective_config({"epochs": 5, "units": 4, "dropout": None})
    config, state = Trainer.resumed(cls, staging, 5, given)
    assert (config["epochs"], config["units"], state["epochs_done"]) == (
        5, 4, 1)


# -- bad data: one line, nothing written, before TensorFlow ---------------------


def test_conll_file_without_tags_is_refused(tmp_path):
    path = tmp_path / "tokens.conll"
    path.write_text("Anna\nBerg\nvisited\nOslo\n\nTom\nHale\n")
    result = run("ner", "train", "--data", path, "--model-dir",
                 tmp_path / "m")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}:1: 1 column(s), and the token and the tag would both "
        "be column 1; tagged data needs a token column and a tag column "
        "(train's --token-column / --tag-column)\n")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("cell", ["NaN", "None", ""])
def test_labels_written_as_missing_values_are_refused(cell, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("text,label\ngood film,pos\nbad film,neg\n"
                    f"a film,{cell}\n")
    result = run("sentiment", "train", "--data", path, "--model-dir",
                 tmp_path / "m")
    assert result.exit_code == 1
    detail = (f" (it holds {cell!r}, which is how a missing value is "
              "written)" if cell else "")
    assert result.output == (
        f"Error: {path}:4: missing label in column 'label'{detail}\n")
    assert nothing_written(tmp_path)


def test_data_errors_come_before_tensorflow_starts(tmp_path):
    code = (
        "import sys\n"
        "from nlpseq.cli import cli\n"
        "try:\n"
        "    cli.main(['sentiment', 'train', '--data', 'missing.csv',\n"
        "              '--model-dir', 'm'], standalone_mode=False)\n"
        "except Exception as error:\n"
        "    print(error)\n"
        "print('tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout == "File not found: missing.csv\nFalse\n", done.stderr
    assert nothing_written(tmp_path)


# -- loading: consistency of the model folder ---------------------------------


@pytest.fixture(scope="module")
def sentiment_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentiment")
    data = _write_sentiment(folder)
    result = run("sentiment", "train", "--data", data, "--model-dir",
                 folder / "model", *TINY)
    assert result.exit_code == 0, result.output
    return folder / "model"


def test_class_names_that_do_not_fit_the_model_are_corruption(
        sentiment_model, tmp_path):
    folder = tmp_path / "three"
    shutil.copytree(sentiment_model, folder)
    path = folder / "preprocessor.json"
    saved = json.loads(path.read_text())
    saved["state"]["class_names"] = ["neg", "pos", "zzz"]
    path.write_text(json.dumps(saved))
    result = run("sentiment", "predict", "--model-dir", folder, "a film")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {folder}: corrupted (preprocessor.json has 3 class names, "
        "but the model has 1 output (2 classes))\n")


# -- prediction: a bad line ends the output after everything before it ---------


def test_bad_byte_on_line_5001_comes_after_5000_results(sentiment_model):
    lines = b"".join(b"a great film %d\n" % i for i in range(5000))
    stdin = lines + b"bad \xff byte\n" + b"a dull film\n" * 10
    result = CliRunner().invoke(
        cli, ["sentiment", "predict", "--model-dir", str(sentiment_model),
              "--format", "jsonl"], input=stdin, catch_exceptions=False)
    assert result.exit_code == 1
    records = result.stdout.splitlines()
    assert len(records) == 5000
    assert json.loads(records[-1])["text"] == "a great film 4999"
    assert result.stderr == (
        "Error: <stdin>:5001: not UTF-8 text (byte 0xff at column 5)\n")


def test_predict_stream_yields_what_came_before_a_failing_input(
        sentiment_model):
    task = nlpseq.load(sentiment_model)

    def lines():
        yield from ("good", "bad", "fine")
        raise NlpseqError("input.txt:4: not UTF-8 text")

    got = []
    with pytest.raises(NlpseqError, match="^input.txt:4: not UTF-8 text$"):
        for record in task.predict_stream(lines(), chunk=2):
            got.append(record["text"])
    assert got == ["good", "bad", "fine"]
