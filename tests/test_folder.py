"""Tests of nlpseq.folder: atomic writes, the staging swap, reading configs."""

import json
import os
import stat

import pytest

from nlpseq.errors import NlpseqError
from nlpseq.folder import (
    ModelFolder,
    folder_config,
    save_atomic,
    write_json_atomic,
    write_text_atomic,
)


def tree(path):
    """Every file under ``path`` (relative name -> content)."""
    return {str(p.relative_to(path)): p.read_text(encoding="utf-8")
            for p in sorted(path.rglob("*")) if p.is_file()}


def write_model(path, app="sentiment", **files):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"app": app}),
                                      encoding="utf-8")
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8")


# -- atomic writes ------------------------------------------------------------


def test_write_text_atomic_content_and_no_temporary_files(tmp_path):
    target = tmp_path / "notes.txt"
    write_text_atomic(target, "first\n")
    write_text_atomic(target, "second: été\n")
    assert target.read_text(encoding="utf-8") == "second: été\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_write_text_atomic_mode_follows_umask_not_0600(tmp_path):
    reference = tmp_path / "plain.txt"
    with open(reference, "w", encoding="utf-8") as handle:  # 0666 & ~umask
        handle.write("x")
    target = tmp_path / "atomic.txt"
    write_text_atomic(target, "x")
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == stat.S_IMODE(reference.stat().st_mode)
    assert mode != 0o600  # what mkstemp alone would leave
    assert mode & stat.S_IRGRP  # with the usual umask 022, others may read


def test_write_text_atomic_failure_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(TypeError):
        write_text_atomic(target, 12345)  # not text: the write fails
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_write_json_atomic(tmp_path):
    value = {"b": [1, 2], "a": "é"}
    write_json_atomic(tmp_path / "v.json", value)
    text = (tmp_path / "v.json").read_text(encoding="utf-8")
    assert json.loads(text) == value
    assert text.endswith("}\n") and text.index('"b"') < text.index('"a"')


def test_save_atomic(tmp_path):
    target = tmp_path / "weights.bin"

    def save(path):
        assert path != str(target)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("saved")

    save_atomic(target, save)
    assert target.read_text(encoding="utf-8") == "saved"

    def broken(path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic(target, broken)
    assert target.read_text(encoding="utf-8") == "saved"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


# -- start / publish ----------------------------------------------------------


def test_names_of_staging_and_backup(tmp_path):
    folder = ModelFolder(tmp_path / "models" / "sentiment")
    assert folder.staging == tmp_path / "models" / ".sentiment.training"
    assert str(folder) == str(tmp_path / "models" / "sentiment")


def test_publish_into_new_folder(tmp_path):
    folder = ModelFolder(tmp_path / "models" / "m")
    staging = folder.start()
    assert staging == folder.staging and staging.is_dir()
    assert list(staging.iterdir()) == []
    write_model(staging, vocab="a\n")
    folder.publish()
    assert tree(folder.path) == {"config.json": '{"app": "sentiment"}',
                                 "vocab": "a\n"}
    assert sorted(p.name for p in folder.path.parent.iterdir()) == ["m"]


def test_publish_replaces_what_training_writes_and_keeps_the_rest(
        tmp_path):
    """The new model replaces the files a training run writes; files and
    folders of the user's own are carried over (never deleted), unless the
    new model has an entry of the same name."""
    folder = ModelFolder(tmp_path / "m")
    write_model(folder.path, old_only="old\n", shared="old\n")
    (folder.path / "sub").mkdir()
    (folder.path / "sub" / "deep.txt").write_text("old", encoding="utf-8")
    (folder.path / "checkpoints").mkdir()
    (folder.path / "checkpoints" / "old.keras").write_text("old")
    (folder.path / "history.csv").write_text("old")
    staging = folder.start()
    write_model(staging, app="tagger", shared="new\n")
    (staging / "checkpoints").mkdir()
    (staging / "checkpoints" / "state.json").write_text("{}",
                                                        encoding="utf-8")
    folder.publish()
    assert tree(folder.path) == {
        "config.json": '{"app": "tagger"}', "shared": "new\n",
        "checkpoints/state.json": "{}", "old_only": "old\n",
        "sub/deep.txt": "old"}
    # No staging or backup left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_start_clears_an_old_staging_folder(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    folder.staging.mkdir()
    (folder.staging / "stale.txt").write_text("x", encoding="utf-8")
    assert list(folder.start().iterdir()) == []


def test_start_resume_without_staging_run(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    with pytest.raises(NlpseqError) as caught:
        folder.start(resume=True)
    assert str(caught.value) == (
        f"--resume: no interrupted run of {tmp_path / 'm'} to continue "
        f"(looked for {tmp_path / '.m.training'})")
    # A staging folder without a checkpoint state is no run to resume.
    folder.staging.mkdir()
    (folder.staging / "checkpoints").mkdir()
    with pytest.raises(NlpseqError, match="^--resume: no interrupted run"):
        folder.start(resume=True)


def test_start_resume_keeps_the_interrupted_run(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    staging = folder.start()
    (staging / "checkpoints").mkdir()
    (staging / "checkpoints" / "state.json").write_text(
        '{"epochs_done": 2}', encoding="utf-8")
    assert folder.start(resume=True) == staging
    assert tree(staging) == {"checkpoints/state.json": '{"epochs_done": 2}'}


def test_recover_after_swap_cut_between_renames(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    write_model(folder.path, weights="old")
    staging = folder.start()
    write_model(staging, weights="new")
    # The first rename of publish() happened, the second did not.
    os.replace(folder.path, tmp_path / ".m.previous")
    assert not folder.path.exists()
    assert folder.read_config("sentiment") == {"app": "sentiment"}
    assert tree(folder.path)["weights"] == "old"
    assert not (tmp_path / ".m.previous").exists()
    # The unfinished staging run is untouched and can still be published.
    assert tree(staging)["weights"] == "new"
    folder.publish()
    assert tree(folder.path)["weights"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_publish_after_cut_swap_keeps_no_backup(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    write_model(folder.path, weights="old")
    staging = folder.start()
    write_model(staging, weights="new")
    os.replace(folder.path, tmp_path / ".m.previous")
    folder.publish()
    assert tree(folder.path)["weights"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_recover_does_nothing_when_folder_exists(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    write_model(folder.path, weights="current")
    write_model(tmp_path / ".m.previous", weights="older")
    folder.recover()
    assert tree(folder.path)["weights"] == "current"
    assert (tmp_path / ".m.previous").is_dir()


# -- read_config --------------------------------------------------------------


def read_error(folder, app=None):
    with pytest.raises(NlpseqError) as caught:
        folder.read_config(app)
    return str(caught.value)


def test_read_config(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    folder.path.mkdir()
    config = folder_config("sentiment", ModelFolder, {"units": 3},
                           class_names=["neg", "pos"])
    write_json_atomic(folder.path / "config.json", config)
    assert folder.read_config("sentiment") == config
    assert folder.read_config() == config
    assert config["class"] == "nlpseq.folder.ModelFolder"
    assert config["config"] == {"units": 3}


def test_read_config_missing_folder(tmp_path):
    path = tmp_path / "nothing"
    assert read_error(ModelFolder(path)) == f"Model folder not found: {path}"


def test_read_config_not_a_folder(tmp_path):
    path = tmp_path / "file"
    path.write_text("x", encoding="utf-8")
    assert read_error(ModelFolder(path)) == f"{path}: not a folder"


def test_read_config_no_config_json(tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    (path / "model.keras").write_text("x", encoding="utf-8")
    assert read_error(ModelFolder(path)) == (
        f"{path}: not an nlpseq model folder (no config.json)")


def test_read_config_invalid_json(tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    (path / "config.json").write_text('{"app": "sentiment",', encoding="utf-8")
    try:
        json.loads('{"app": "sentiment",')
    except ValueError as error:
        reason = str(error)
    assert read_error(ModelFolder(path)) == (
        f"{path / 'config.json'}: corrupted ({reason})")


@pytest.mark.parametrize("text", ['{"class": "x"}', '["sentiment"]', '3'])
def test_read_config_without_app_entry(tmp_path, text):
    path = tmp_path / "m"
    path.mkdir()
    (path / "config.json").write_text(text, encoding="utf-8")
    assert read_error(ModelFolder(path)) == (
        f"{path / 'config.json'}: corrupted (no 'app' entry)")


def test_read_config_other_app(tmp_path):
    path = tmp_path / "m"
    write_model(path, app="tagger")
    assert read_error(ModelFolder(path), "sentiment") == (
        f"{path}: a model of the 'tagger' app, not 'sentiment' "
        "(use: nlpseq tagger ...)")
    assert ModelFolder(path).read_config("tagger")["app"] == "tagger"


def test_file_checks_existence(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    write_model(folder.path, vocab="a\n")
    assert folder.file("vocab") == folder.path / "vocab"
    assert folder.file("model.keras", required=False) == (
        folder.path / "model.keras")
    with pytest.raises(NlpseqError) as caught:
        folder.file("model.keras")
    assert str(caught.value) == (
        f"{folder.path}: corrupted (missing model.keras)")
