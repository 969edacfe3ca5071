import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import nlpseq
from nlpseq.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"nlpseq, version {nlpseq.__version__}"


def test_help_short_and_long():
    long, short = run("--help"), run("-h")
    assert long.exit_code == short.exit_code == 0
    assert long.output == short.output
    assert "info" in long.output


def test_info_lists_versions_and_registry():
    import keras
    import tensorflow as tf

    result = run("info")
    assert result.exit_code == 0, result.output
    assert f"tensorflow  {tf.__version__}" in result.output
    assert f"keras       {keras.__version__}" in result.output
    assert "CPU" in result.output
    for name, path in (("lstm", "nlpseq.layers.lstm.LSTM"),
                       ("gru", "nlpseq.layers.gru.GRU"),
                       ("rnn", "nlpseq.layers.simple_rnn.SimpleRNN")):
        assert re.search(rf"^  {name}\s+{re.escape(path)}$", result.output,
                         re.M)


def test_unknown_command_fails_cleanly():
    result = run("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output


def test_every_command_is_documented_in_readme():
    readme = README.read_text(encoding="utf-8")
    import click

    for name in cli.list_commands(None):
        assert f"nlpseq {name}" in readme, f"`nlpseq {name}` not in README"
        command = cli.get_command(None, name)
        if isinstance(command, click.Group):
            for sub in command.list_commands(None):
                assert f"nlpseq {name} {sub}" in readme, \
                    f"`nlpseq {name} {sub}` not in README"


def test_apps_package_is_importable_as_nlpseq_apps():
    import nlpseq.apps

    assert Path(nlpseq.apps.__file__).parent.name == "apps"


def test_runtime_settings_are_defaults_the_environment_overrides(monkeypatch):
    from nlpseq.runtime import ENVIRONMENT, configure_environment

    monkeypatch.delenv("TF_CPU_ALLOCATOR_USE_BFC", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    configure_environment()
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == \
        ENVIRONMENT["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # the user's choice


def test_a_misspelt_app_gets_a_suggestion():
    result = run("sentimnet", "train")
    assert result.exit_code == 2
    assert "Error: No such command 'sentimnet'. Did you mean 'sentiment'?" \
        in result.output
    result = run("sentiment", "trian")
    assert "Did you mean 'train'?" in result.output
    assert "Did you mean" not in run("qqqqq").output


def test_the_command_list_shows_each_whole_first_sentence():
    output = " ".join(run("--help").output.split("Commands:")[1].split())
    assert "..." not in output
    assert ("sentiment Sentiment classification of reviews (a label and its "
            "probability).") in output


@pytest.mark.skipif(not os.path.exists("/dev/full"),
                    reason="no /dev/full (a device that is always full) here")
def test_a_full_disk_under_the_output_is_one_error_line():
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "nlpseq", "info"], stdout=full,
            stderr=subprocess.PIPE, text=True, timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        "Error: writing the output: No space left on device"
