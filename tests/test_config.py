"""Tests of nlpseq.config: Setting.check, read_config_file and merge."""

import pytest

from nlpseq.config import Setting, merge, read_config_file
from nlpseq.errors import NlpseqError

SETTINGS = (
    Setting("units", int, 64, "units per layer", minimum=1, maximum=4096),
    Setting("dropout", float, 0.0, "dropout rate", minimum=0.0, maximum=0.9),
    Setting("learning_rate", float, 1e-3, "step size", minimum=0.0,
            exclusive_minimum=True),
    Setting("cell", str, "lstm", "recurrent cell",
            choices=("gru", "lstm", "rnn")),
    Setting("bidirectional", bool, False, "both directions"),
    Setting("seed", int, 0, "random seed", flag=False),
)
DEFAULTS = {"units": 64, "dropout": 0.0, "learning_rate": 1e-3,
            "cell": "lstm", "bidirectional": False, "seed": 0}


def error_of(**kwargs):
    with pytest.raises(NlpseqError) as caught:
        merge(SETTINGS, **kwargs)
    return str(caught.value)


# -- precedence ---------------------------------------------------------------


def test_defaults_only():
    assert merge(SETTINGS) == DEFAULTS
    assert merge(SETTINGS, file_values={}, flags={}) == DEFAULTS


def test_file_overrides_defaults_and_flags_override_file():
    file_values = {"units": 32, "cell": "gru", "dropout": 0.25}
    flags = {"units": 128, "cell": None, "dropout": None,
             "bidirectional": True}
    config = merge(SETTINGS, file_values=file_values, flags=flags)
    assert config == {**DEFAULTS, "units": 128, "cell": "gru",
                      "dropout": 0.25, "bidirectional": True}


def test_none_flag_means_not_given():
    config = merge(SETTINGS, file_values={"units": 32},
                   flags={name: None for name in DEFAULTS})
    assert config == {**DEFAULTS, "units": 32}


def test_false_flag_is_given():
    config = merge(SETTINGS, file_values={"bidirectional": True},
                   flags={"bidirectional": False})
    assert config["bidirectional"] is False


def test_dashed_names_in_file_are_accepted():
    config = merge(SETTINGS, file_values={"learning-rate": 0.5})
    assert config["learning_rate"] == 0.5


def test_merge_does_not_modify_its_inputs():
    file_values = {"sentiment": {"units": 8}, "units": 16}
    merge(SETTINGS, file_values=file_values, section="sentiment")
    assert file_values == {"sentiment": {"units": 8}, "units": 16}


# -- sections -----------------------------------------------------------------


def test_app_table_is_used_and_other_apps_ignored():
    file_values = {
        "units": 16,
        "cell": "rnn",
        "sentiment": {"units": 8, "dropout": 0.5},
        "tagger": {"units": 999, "unknown_thing": 1},
    }
    config = merge(SETTINGS, file_values=file_values, section="sentiment")
    # The app's table wins over top-level values; top-level values not in
    # the table still apply; the other app's table is ignored entirely.
    assert config == {**DEFAULTS, "units": 8, "dropout": 0.5, "cell": "rnn"}


def test_other_apps_tables_ignored_without_own_table():
    file_values = {"units": 16, "tagger": {"units": 999}}
    config = merge(SETTINGS, file_values=file_values, section="sentiment")
    assert config == {**DEFAULTS, "units": 16}


def test_flags_override_app_table():
    config = merge(SETTINGS, file_values={"sentiment": {"units": 8}},
                   flags={"units": 2}, section="sentiment")
    assert config["units"] == 2


def test_values_in_app_table_are_checked():
    message = error_of(file_values={"sentiment": {"units": 0}},
                       section="sentiment", source="run.toml")
    assert message == "run.toml: units must be >= 1, got 0"


# -- errors -------------------------------------------------------------------


def test_unknown_key_lists_known_settings():
    message = error_of(file_values={"unit": 3}, source="run.toml")
    assert message == (
        "run.toml: unknown setting 'unit'; known settings: bidirectional, "
        "cell, dropout, learning_rate, seed, units")


def test_unknown_key_in_app_table():
    message = error_of(file_values={"sentiment": {"epoch": 3}},
                       section="sentiment")
    assert message.startswith("config file: unknown setting 'epoch'; ")


@pytest.mark.parametrize("name, value, expected", [
    ("units", "64", "units must be an integer, got '64'"),
    ("units", 3.0, "units must be an integer, got 3.0"),
    ("units", True, "units must be an integer, got True"),
    ("dropout", "0.5", "dropout must be a number, got '0.5'"),
    ("dropout", False, "dropout must be a number, got False"),
    ("cell", 3, "cell must be a string, got 3"),
    ("bidirectional", 1, "bidirectional must be true or false, got 1"),
    ("bidirectional", "yes", "bidirectional must be true or false, "
                             "got 'yes'"),
])
def test_wrong_type(name, value, expected):
    message = error_of(file_values={name: value}, source="c.yaml")
    assert message == "c.yaml: " + expected


@pytest.mark.parametrize("name, value, expected", [
    ("units", 0, "units must be >= 1, got 0"),
    ("units", 5000, "units must be <= 4096, got 5000"),
    ("dropout", -0.5, "dropout must be >= 0.0, got -0.5"),
    ("dropout", 1, "dropout must be <= 0.9, got 1.0"),
    ("learning_rate", 0.0, "learning_rate must be > 0.0, got 0.0"),
    ("learning_rate", 0, "learning_rate must be > 0.0, got 0.0"),
])
def test_out_of_range(name, value, expected):
    message = error_of(file_values={name: value}, source="c.toml")
    assert message == "c.toml: " + expected


def test_bounds_themselves_are_accepted():
    config = merge(SETTINGS, file_values={"units": 1, "dropout": 0.9})
    assert config["units"] == 1 and config["dropout"] == 0.9
    config = merge(SETTINGS, file_values={"units": 4096, "dropout": 0.0})
    assert config["units"] == 4096 and config["dropout"] == 0.0


def test_choices():
    message = error_of(file_values={"cell": "transformer"}, source="c.toml")
    assert message == (
        "c.toml: cell must be one of gru, lstm, rnn, got 'transformer'")


def test_flag_errors_name_the_option():
    message = error_of(flags={"learning_rate": -1.0})
    assert message == "--learning-rate: learning_rate must be > 0.0, got -1.0"
    message = error_of(flags={"units": "8"})
    assert message == "--units: units must be an integer, got '8'"


def test_int_accepted_for_float_setting():
    config = merge(SETTINGS, file_values={"dropout": 0},
                   flags={"learning_rate": 2})
    assert config["dropout"] == 0.0 and type(config["dropout"]) is float
    assert config["learning_rate"] == 2.0
    assert type(config["learning_rate"]) is float


def test_setting_check_directly():
    setting = Setting("rate", float, 0.5, "rate", minimum=0.0, maximum=1.0)
    assert setting.check(1, "here") == 1.0
    assert setting.option == "--rate"
    assert Setting("max_length", int, 0, "").option == "--max-length"
    with pytest.raises(NlpseqError, match=r"^here: rate must be <= 1.0, "
                                          r"got 1.5$"):
        setting.check(1.5, "here")


def test_integers_stop_at_what_tensorflow_reads():
    # (counts, seeds and caps reach TensorFlow as 32-bit integers)
    seed = Setting("seed", int, 0, "", minimum=0)
    assert seed.check(2**31 - 1, "here") == 2**31 - 1
    with pytest.raises(NlpseqError, match=r"^here: seed must be <= "
                                          r"2147483647, got 2147483648$"):
        seed.check(2**31, "here")
    wide = Setting("count", int, 0, "", maximum=2**40)
    with pytest.raises(NlpseqError, match="must be <= 2147483647"):
        wide.check(2**35, "here")
    assert Setting("units", int, 0, "", maximum=10).check(10, "here") == 10


# -- files --------------------------------------------------------------------


def test_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('units = 32\ncell = "gru"\n\n[sentiment]\ndropout = 0.5\n'
                    '\n[tagger]\nunits = 7\n', encoding="utf-8")
    values = read_config_file(path)
    assert values == {"units": 32, "cell": "gru",
                      "sentiment": {"dropout": 0.5}, "tagger": {"units": 7}}
    config = merge(SETTINGS, values, source=str(path), section="sentiment")
    assert config == {**DEFAULTS, "units": 32, "cell": "gru", "dropout": 0.5}


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_yaml_file(tmp_path, suffix):
    path = tmp_path / ("run" + suffix)
    path.write_text("units: 32\nbidirectional: true\nsentiment:\n"
                    "  dropout: 0.5\n", encoding="utf-8")
    assert read_config_file(path) == {"units": 32, "bidirectional": True,
                                      "sentiment": {"dropout": 0.5}}


def test_empty_yaml_file_is_no_settings(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    assert read_config_file(path) == {}


def test_toml_syntax_error_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("units = 32\ncell = \n", encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 2" in message
    assert "\n" not in message


def test_yaml_syntax_error_gives_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("units: 32\ncell: gru\ndropout: [0.5\nseed: 1\n",
                    encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid YAML at line ")
    assert "\n" not in message
    # The parser notices the unclosed list on line 4 (0-based 3 + 1).
    assert f"{path}: invalid YAML at line 4: " in message


def test_yaml_mapping_error_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("units: 32\ncell: gru: lstm\n", encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    assert str(caught.value) == (
        f"{path}: invalid YAML at line 2: mapping values are not allowed here")


def test_yaml_not_a_table(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- units\n- cell\n", encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    assert str(caught.value) == (
        f"{path}: expected a table of name = value settings")


def test_missing_config_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    assert str(caught.value) == f"Config file not found: {path}"


def test_folder_is_not_a_config_file(tmp_path):
    with pytest.raises(NlpseqError, match="^Config file not found: "):
        read_config_file(tmp_path)


@pytest.mark.parametrize("name, shown", [("run.json", ".json"),
                                         ("run.ini", ".ini"),
                                         ("runconfig", "runconfig")])
def test_unknown_extension(tmp_path, name, shown):
    path = tmp_path / name
    path.write_text("units = 3\n", encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    assert str(caught.value) == (
        f"{path}: unknown config file type '{shown}', "
        "expected .toml, .yaml or .yml")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'cell = "caf\xe9"\n')
    with pytest.raises(NlpseqError) as caught:
        read_config_file(path)
    assert str(caught.value) == f"{path}: not UTF-8 text (byte 11)"


# -- NaN and infinities; other apps' tables; what was given -------------------


@pytest.mark.parametrize("value, shown", [
    (float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf")])
@pytest.mark.parametrize("name", ["dropout", "learning_rate"])
def test_float_settings_refuse_nan_and_infinities(name, value, shown):
    assert error_of(flags={name: value}) == (
        f"--{name.replace('_', '-')}: {name} must be a finite number, got "
        f"{shown}")
    assert error_of(file_values={name: value}, source="c.toml") == (
        f"c.toml: {name} must be a finite number, got {shown}")


@pytest.mark.parametrize("text, shown", [
    ("learning_rate = nan\n", "nan"), ("learning_rate = inf\n", "inf"),
    ("learning_rate = -inf\n", "-inf")])
def test_toml_nan_and_infinities(tmp_path, text, shown):
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        merge(SETTINGS, read_config_file(path), source=str(path))
    assert str(caught.value) == (
        f"{path}: learning_rate must be a finite number, got {shown}")


@pytest.mark.parametrize("text, shown", [
    ("dropout: .nan\n", "nan"), ("dropout: .inf\n", "inf"),
    ("sentiment:\n  dropout: -.inf\n", "-inf")])
def test_yaml_nan_and_infinities(tmp_path, text, shown):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NlpseqError) as caught:
        merge(SETTINGS, read_config_file(path), source=str(path),
              section="sentiment")
    assert str(caught.value) == (
        f"{path}: dropout must be a finite number, got {shown}")


def test_a_file_of_other_apps_tables_only_is_an_error():
    message = error_of(file_values={"ner": {"units": 8}, "topic": {}},
                       source="run.toml", section="sentiment")
    assert message == (
        "run.toml: no settings for sentiment: its only tables are [ner], "
        "[topic] (other apps' settings); add a [sentiment] table or "
        "top-level settings")
    # with the app's own table, or top-level settings, it is fine; and an
    # empty file sets nothing
    assert merge(SETTINGS, {"ner": {"units": 8}, "sentiment": {"units": 2}},
                 section="sentiment")["units"] == 2
    assert merge(SETTINGS, {"ner": {"units": 8}, "units": 3},
                 section="sentiment")["units"] == 3
    assert merge(SETTINGS, {}, section="sentiment") == DEFAULTS


def test_merge_records_which_settings_were_given():
    config = merge(SETTINGS, file_values={"units": 32, "dropout": 0.5},
                   flags={"units": 8, "cell": None, "seed": 0},
                   source="run.toml")
    assert config == {**DEFAULTS, "units": 8, "dropout": 0.5}
    assert config.given == {"units": "--units", "dropout": "run.toml",
                            "seed": "--seed"}
    assert merge(SETTINGS).given == {}
