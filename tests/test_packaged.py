"""Packaged samples and configs by name, from any directory: ``--data
sample:NAME`` and ``--config NAME`` name what is installed with the
package, and ``evaluate`` without ``--data`` reads the built-in validation
sample, as ``train`` does."""

import json

import pytest
from click.testing import CliRunner
from nlpseq.apps import CONFIGS, DATA, config_path, configs, data_spec

from nlpseq.cli import cli
from nlpseq.config import read_config_file
from nlpseq.errors import NlpseqError


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The working directory: a folder outside the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_packaged_config_by_name(elsewhere):
    assert "sentiment_imdb" in configs("sentiment")
    assert "ner_conll2003" not in configs("sentiment")
    for name in ("sentiment_imdb", "sentiment_imdb.toml"):
        assert config_path(name) == str(CONFIGS / "sentiment_imdb.toml")
    assert read_config_file(config_path("sentiment_imdb"))
    # (a file of that name where the user is comes first)
    (elsewhere / "sentiment_imdb.toml").write_text("units = 3\n")
    assert config_path("sentiment_imdb.toml") == "sentiment_imdb.toml"


def test_an_unknown_config_name_lists_the_packaged_ones(elsewhere):
    with pytest.raises(NlpseqError) as caught:
        config_path("sentiment_imbd")
    assert str(caught.value).startswith(
        "Config file not found: sentiment_imbd (nor a packaged config of "
        "that name: ")
    assert "sentiment_imdb" in str(caught.value)
    # (a path is the reader's to refuse)
    assert config_path("configs/nowhere.toml") == "configs/nowhere.toml"


def test_a_packaged_sample_by_name(elsewhere):
    assert data_spec("sample:topic_valid") == str(DATA / "topic_valid.csv")
    assert data_spec("other.csv") == "other.csv" and data_spec(None) is None
    with pytest.raises(NlpseqError, match=r"^--valid sample:nope: no "
                       r"packaged sample of that name; the samples: "):
        data_spec("sample:nope", "--valid")


def test_train_and_evaluate_by_name_from_another_directory(elsewhere):
    runner = CliRunner()
    result = runner.invoke(cli, [
        "topic", "train", "--data", "sample:topic_sample", "--valid",
        "sample:topic_valid", "--epochs", "1", "--units", "4",
        "--embedding-dim", "4", "--model-dir", "model"])
    assert result.exit_code == 0, result.output
    default = runner.invoke(cli, ["topic", "evaluate", "--model-dir",
                                  "model", "--json"])
    assert default.exit_code == 0, default.output
    named = runner.invoke(cli, ["topic", "evaluate", "--model-dir", "model",
                                "--data", "sample:topic_valid", "--json"])
    assert named.exit_code == 0, named.output

    def metrics(output):
        return json.loads(output[output.index("{"):])

    assert metrics(default.output) == metrics(named.output)
    assert metrics(default.output)["count"] > 0


def test_the_command_line_names_the_packaged_configs():
    result = CliRunner().invoke(cli, ["sentiment", "train", "--help"])
    assert ("sentiment_imdb, sentiment_imdb_student, "
            "sentiment_imdb_transfer") in " ".join(
        result.output.split())
    bad = CliRunner().invoke(cli, ["sentiment", "train", "--config",
                                   "sentiment_imbd"])
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: Config file not found: "
                                 "sentiment_imbd (nor a packaged config")
