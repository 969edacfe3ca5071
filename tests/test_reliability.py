"""Reliability of the model folder: nlpseq never destroys what it does not
own, one writer at a time, atomic checkpoints, publishes and loads.

Each test asserts the exit status, the one-line message and that nothing on
disk was lost (file hashes before and after). The fault-injection tests kill
(SIGKILL) a training or an export subprocess at a named point
(``NLPSEQ_FAULT``, :func:`nlpseq.folder.fault_point`); the concurrency test
loads a model while another process publishes models in a loop.
"""

import csv
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import nlpseq
from nlpseq.cli import cli
from nlpseq.errors import NlpseqError
from nlpseq.folder import (
    FolderLock,
    ModelFolder,
    recover_folder,
    replace_folder,
)

TINY = ["--units", "4", "--embedding-dim", "4", "--batch-size", "8",
        "--dropout", "0", "--seed", "3"]
ROOT = Path(__file__).resolve().parents[1]


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def hashes(path):
    """Every file under ``path``: relative name -> SHA-256."""
    path = Path(path)
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes())
            .hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def write_data(path, words=("good", "great", "fine", "bad", "awful",
                            "dull"), n=48):
    rng = np.random.default_rng(len(words))
    half = len(words) // 2
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(n):
            label = "pos" if i % 2 else "neg"
            pool = words[:half] if label == "pos" else words[half:]
            writer.writerow([f"a {' '.join(rng.choice(pool, 3))} film",
                             label])
    return path


def weights(folder):
    return nlpseq.load(folder).model.get_weights()


def assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


INPUTS = ["a great film", "an awful, dull film", "a fine film"]


def predictions(folder):
    return [r["probabilities"] for r in nlpseq.load(folder).predict(INPUTS)]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Data, a published one-epoch model (the "previous" model), and the
    model an uninterrupted two-epoch run publishes."""
    root = tmp_path_factory.mktemp("reliability")
    data = write_data(root / "train.csv")
    previous = root / "previous"
    result = run("sentiment", "train", "--data", data, "--model-dir",
                 previous, *TINY, "--epochs", "1")
    assert result.exit_code == 0, result.output
    straight = root / "straight"
    result = run("sentiment", "train", "--data", data, "--model-dir",
                 straight, *TINY, "--epochs", "2")
    assert result.exit_code == 0, result.output
    return {"root": root, "data": data, "previous": previous,
            "straight": straight}


def copy_model(base, tmp_path, name="model"):
    target = tmp_path / name
    shutil.copytree(base["previous"], target)
    return target


def only_entries(folder, *names):
    """The parent of ``folder`` holds only ``names`` (no staging, backup or
    lock files left behind)."""
    assert sorted(p.name for p in Path(folder).parent.iterdir()) == sorted(
        names)


# -- 1. a folder nlpseq did not write, another app's model ---------------------


@pytest.mark.parametrize("content", ["files", "foreign-config"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_training_refuses_a_folder_nlpseq_did_not_write(tmp_path, content,
                                                        overwrite):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "important.txt").write_text("x")
    if content == "foreign-config":  # e.g. another library's model folder
        (folder / "config.json").write_text('{"model_type": "bert"}')
    before = hashes(folder)
    result = run("sentiment", "train", "--epochs", "1", "--model-dir",
                 folder, *overwrite)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {folder}: not an nlpseq model folder (no config.json of "
        "nlpseq's) and not empty; training replaces the model folder as a "
        "whole, so it will not write there: give a new or empty folder\n")
    assert hashes(folder) == before
    only_entries(folder, "d")


def test_publish_refuses_a_folder_that_became_foreign(tmp_path):
    folder = ModelFolder(tmp_path / "m")
    staging = folder.start()
    (staging / "config.json").write_text('{"app": "sentiment"}')
    folder.path.mkdir()
    (folder.path / "notes.txt").write_text("mine")
    with pytest.raises(NlpseqError, match="not an nlpseq model folder"):
        folder.publish()
    assert hashes(folder.path) == {"notes.txt": hashlib.sha256(
        b"mine").hexdigest()}
    assert staging.is_dir()


def test_another_apps_model_needs_overwrite_and_exports_survive(
        base, tmp_path):
    """A fake ``ner`` model with exports: refused without --overwrite;
    replaced with it, its ``export/`` versions carried over; a stale lock
    (its process dead) is taken over."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"app": "ner"}')
    for version in ("1", "7"):
        (folder / "export" / version / "variables").mkdir(parents=True)
        (folder / "export" / version / "saved_model.pb").write_bytes(
            os.urandom(64))
        (folder / "export" / version / "variables" / "v.index").write_text(
            version)
    before = hashes(folder)
    result = run("sentiment", "train", "--data", base["data"],
                 "--model-dir", folder, *TINY, "--epochs", "1")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {folder}: holds a model of the 'ner' app; give --overwrite "
        "to replace it with a 'sentiment' model, or another --model-dir\n")
    assert hashes(folder) == before

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / ".m.lock"
    lock.write_text(json.dumps({"pid": dead.pid, "host":
                                socket.gethostname(), "started": "then"}))
    result = run("sentiment", "train", "--data", base["data"],
                 "--model-dir", folder, *TINY, "--epochs", "1",
                 "--overwrite")
    assert result.exit_code == 0, result.output
    assert f"warning: took over the stale lock {lock} of PID {dead.pid}" \
        in result.output
    assert json.loads((folder / "config.json").read_text())["app"] == \
        "sentiment"
    exports = {k: v for k, v in hashes(folder).items()
               if k.startswith("export/")}
    assert exports == {k: v for k, v in before.items()
                       if k.startswith("export/")}
    only_entries(folder, "m")


# -- 2. exports survive a retrain (through the real export) ---------------------


def test_exports_are_carried_after_a_publish_cut_off_before_the_carry(
        tmp_path):
    folder = ModelFolder(tmp_path / "m")
    old = tmp_path / ".m.previous"  # the old model, swapped out
    (old / "export" / "1").mkdir(parents=True)
    (old / "config.json").write_text('{"app": "sentiment"}')
    (old / "export" / "1" / "saved_model.pb").write_text("served")
    folder.path.mkdir()  # the new model, swapped in
    (folder.path / "config.json").write_text('{"app": "sentiment"}')
    with folder.lock():  # (the next writer finishes the publish)
        folder.check_training("sentiment", locked=True)
    assert hashes(folder.path) == hashes_of({
        "config.json": '{"app": "sentiment"}',
        "export/1/saved_model.pb": "served"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_retrain_through_a_link_keeps_exports_and_a_users_own_files(
        base, tmp_path):
    """A retrain publishes a new model in the folder a link points to, and
    carries what is not the model's: the exported versions and the user's
    own files."""
    target = copy_model(base, tmp_path, "v3")
    exported = nlpseq.load(target).export()
    assert exported == target / "export" / "1"
    (target / "notes.txt").write_text("hello\n")
    (target / "mine").mkdir()
    (target / "mine" / "data.bin").write_bytes(b"\x00\x01")
    before = hashes(target)
    link = tmp_path / "current"
    link.symlink_to("v3")
    result = run("sentiment", "train", "--data", base["data"],
                 "--model-dir", link, *TINY, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == "v3"
    after = hashes(target)
    assert {k: v for k, v in after.items() if k.startswith("export/")} == \
        {k: v for k, v in before.items() if k.startswith("export/")}
    assert any(k.startswith("export/1/") for k in after)
    for name in ("notes.txt", "mine/data.bin"):
        assert after[name] == before[name]
    assert after["model.keras"] != before["model.keras"]  # (a new model)
    assert_same_weights(weights(link), weights(base["straight"]))
    assert_same_weights(weights(target), weights(base["straight"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "v3"]


@pytest.mark.parametrize("command", ["train", "export"])
def test_a_folder_under_a_file_is_one_clean_error(base, tmp_path, command):
    (tmp_path / "efile").write_text("x")
    place = tmp_path / "efile" / "sub"
    if command == "train":
        args = ["train", "--data", base["data"], "--model-dir", place,
                *TINY, "--epochs", "1"]
    else:
        args = ["export", "--model-dir", copy_model(base, tmp_path),
                "--output", place]
    result = CliRunner().invoke(cli, ["sentiment"] + [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: "), result.output
    assert "efile" in result.output and "Traceback" not in result.output
    assert "\n" not in result.output.rstrip("\n")
    assert (tmp_path / "efile").read_text() == "x"


def test_weights_of_another_model_are_one_line_without_warnings(
        base, tmp_path):
    other = tmp_path / "other"
    result = run("sentiment", "train", "--data", base["data"], "--model-dir",
                 other, "--units", "6", "--embedding-dim", "6", "--epochs",
                 "1")
    assert result.exit_code == 0, result.output
    folder = copy_model(base, tmp_path)
    shutil.copy(other / "model.keras", folder / "model.keras")
    result = CliRunner().invoke(cli, ["sentiment", "predict", "--model-dir",
                                      str(folder), "a good film"])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: {folder}: corrupted model (model.keras does not hold the "
        "weights of this sentiment model: ValueError: ")
    assert "\n" not in result.output.rstrip("\n")
    assert not result.output.rstrip("\n").endswith(":)")


def test_a_refused_resume_starts_no_tensorflow(tmp_path):
    """The settings of a resume are checked before TensorFlow starts: no
    start-up noise, and fast."""
    staging = tmp_path / ".m.training"
    (staging / "checkpoints").mkdir(parents=True)
    config = nlpseq.api.task_class("sentiment").effective_config({})
    (staging / "config.json").write_text(json.dumps(
        {"app": "sentiment", "config": dict(config)}))
    (staging / "checkpoints" / "state.json").write_text(json.dumps(
        {"epochs_done": 1, "stopped_early": False}))
    (staging / "checkpoints" / "last.keras").write_bytes(b"")
    code = ("import sys\nfrom nlpseq.cli import main\ntry:\n"
            "    main(['sentiment', 'train', '--model-dir', 'm', "
            "'--resume', '--units', '8'])\n"
            "except SystemExit as exit:\n"
            "    print('exit', exit.code, 'tensorflow' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                            env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.splitlines()[-1] == "exit 1 False", result.stdout
    assert result.stderr.startswith("Error: --resume: ")
    assert "units 8" in result.stderr and config["units"] == 64
    assert "\n" not in result.stderr.rstrip("\n")


@pytest.mark.parametrize("state", ['{"epochs_done": 1, "stopp', "[1, 2]",
                                   "\x00\xff garbage"])
def test_a_damaged_run_state_is_one_line_on_resume(tmp_path, state):
    """``checkpoints/state.json`` cut short, of the wrong kind or random
    bytes: one Error line naming it, nothing changed."""
    staging = tmp_path / ".m.training"
    (staging / "checkpoints").mkdir(parents=True)
    config = nlpseq.api.task_class("sentiment").effective_config({})
    (staging / "config.json").write_text(json.dumps(
        {"app": "sentiment", "config": dict(config)}))
    (staging / "checkpoints" / "state.json").write_text(state)
    (staging / "checkpoints" / "last.keras").write_bytes(b"")
    before = hashes(staging)
    result = run("sentiment", "train", "--model-dir", tmp_path / "m",
                 "--resume")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "state.json" in lines[0]
    assert hashes(staging) == before


# -- 3. an interrupted run: never wiped by a typo, never silently discarded -----


def test_interrupted_run_is_kept_until_resumed_or_overwritten(
        base, tmp_path, interrupted_after_first_epoch):
    folder = copy_model(base, tmp_path)
    staging = tmp_path / ".model.training"
    with interrupted_after_first_epoch():
        result = run("sentiment", "train", "--data", base["data"],
                     "--model-dir", folder, *TINY, "--epochs", "2")
    assert result.exit_code == 1
    model_before, run_before = hashes(folder), hashes(staging)
    assert "checkpoints/state.json" in run_before

    # a fresh run would discard it: refused, saying how to go on
    result = run("sentiment", "train", "--data", base["data"],
                 "--model-dir", folder, *TINY, "--epochs", "2")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {folder}: an interrupted run (after epoch 1 of 2) is "
        f"waiting in {staging}; continue it with: nlpseq sentiment train "
        f"--model-dir {folder} --resume, or discard it with --overwrite\n")
    # a mistyped --data, even with --overwrite, is reported before the run
    # is touched
    missing = tmp_path / "tran.csv"
    result = run("sentiment", "train", "--data", missing, "--model-dir",
                 folder, *TINY, "--epochs", "2", "--overwrite")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == f"Error: File not found: " \
        f"{missing}"
    assert hashes(folder) == model_before
    assert hashes(staging) == run_before

    result = run("sentiment", "train", "--model-dir", folder, "--resume")
    assert result.exit_code == 0, result.output
    assert_same_weights(weights(folder), weights(base["straight"]))
    only_entries(folder, "model")


# -- 4. a non-finite loss publishes nothing ------------------------------------


def test_non_finite_loss_stops_and_publishes_nothing(base, tmp_path,
                                                     monkeypatch):
    from keras import ops

    from nlpseq.registry import APPS

    cls = APPS.get("sentiment")
    arguments = cls.compile_arguments

    def diverging(self):
        def loss(y_true, y_pred):
            return ops.mean(y_pred) * float("nan")

        return dict(arguments(self), loss=loss)

    monkeypatch.setattr(cls, "compile_arguments", diverging)
    folder = copy_model(base, tmp_path)
    before = hashes(folder)
    result = run("sentiment", "train", "--data", base["data"],
                 "--model-dir", folder, *TINY, "--epochs", "2")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: training stopped: the loss became nan in epoch 1; nothing "
        f"was published (the previous model in {folder} is untouched); try "
        "a lower --learning-rate or a --clip-norm")
    assert "Traceback" not in result.output
    assert hashes(folder) == before
    # no checkpoint to resume from: the failed run's staging folder is gone
    only_entries(folder, "model")


def test_run_state_does_not_checkpoint_a_non_finite_epoch(tmp_path):
    import keras

    from nlpseq.training import RunState, read_state

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = RunState(tmp_path / "checkpoints", patience=0)
    state.set_model(model)
    state.on_epoch_begin(0)
    state.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    before = hashes(tmp_path)
    state.on_epoch_begin(1)
    state.on_epoch_end(1, {"loss": 0.5, "val_loss": float("inf")})
    assert state.non_finite == (1, "val_loss", float("inf"))
    assert model.stop_training
    assert hashes(tmp_path) == before
    assert read_state(tmp_path / "checkpoints")["epochs_done"] == 1


# -- 5. one writer per model folder ----------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--resume"], ["--overwrite"]])
def test_a_second_writer_gets_one_line_naming_the_holder(base, tmp_path,
                                                         extra):
    """Whatever the flags, and although the first run has a checkpoint
    already."""
    folder = copy_model(base, tmp_path)
    staging = tmp_path / ".model.training"
    shutil.copytree(base["previous"], staging)
    before = hashes(tmp_path)
    with ModelFolder(folder).lock():
        holder = json.loads((tmp_path / ".model.lock").read_text())
        result = run("sentiment", "train", "--data", base["data"],
                     "--model-dir", folder, *TINY, "--epochs", "1", *extra)
    assert result.exit_code == 1
    assert holder["pid"] == os.getpid()
    assert result.output == (
        f"Error: {folder} is in use: another nlpseq process (PID "
        f"{os.getpid()} on {socket.gethostname()}, started "
        f"{holder['started']}) is training into it; one at a time (lock "
        f"file: {tmp_path / '.model.lock'})\n")
    assert hashes(tmp_path) == before
    only_entries(folder, "model", ".model.training")


def test_lock_is_exclusive_and_removed_on_release(tmp_path):
    lock = FolderLock(tmp_path / "deep" / ".m.lock", "m").acquire()
    with pytest.raises(NlpseqError, match=f"^m is locked by PID "
                       f"{os.getpid()} on "):
        FolderLock(tmp_path / "deep" / ".m.lock", "m").acquire()
    lock.release()
    # the lock file and the parent folder the lock made are gone
    assert list(tmp_path.iterdir()) == []
    with FolderLock(tmp_path / ".m.lock", "m").acquire():
        pass
    assert list(tmp_path.iterdir()) == []


def test_waiting_lock_waits_for_the_holder(tmp_path):
    first = FolderLock(tmp_path / ".x.lock", "x").acquire()
    order = []

    def second():
        with FolderLock(tmp_path / ".x.lock", "x").acquire(wait=True):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    order.append("first")
    first.release()
    thread.join(10)
    assert order == ["first", "second"]
    assert list(tmp_path.iterdir()) == []


def test_two_exports_of_the_same_version_at_once(base, tmp_path):
    folder = copy_model(base, tmp_path)
    task = nlpseq.load(folder)
    results = []

    def export():
        try:
            results.append(str(task.export(tmp_path / "serving", 3)))
        except NlpseqError as error:
            results.append(f"Error: {error}")

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == sorted([
        str(tmp_path / "serving" / "3"),
        f"Error: --version 3: {tmp_path / 'serving' / '3'} exists already; "
        "give another version number"])
    assert sorted(p.name for p in (tmp_path / "serving").iterdir()) == ["3"]
    assert (tmp_path / "serving" / "3" / "saved_model.pb").is_file()


def test_export_rename_race_is_a_clean_error(base, tmp_path, monkeypatch):
    """Another writer (without the lock) puts the version in place while
    this export writes it: one clean error, the other's version kept."""
    from nlpseq import folder as model_folder

    folder = copy_model(base, tmp_path)
    task = nlpseq.load(folder)
    target = tmp_path / "serving" / "1"

    def racing(name):  # (between writing the version and renaming it)
        if name == "export":
            target.mkdir()
            (target / "saved_model.pb").write_text("the other one")

    monkeypatch.setattr(model_folder, "fault_point", racing)
    with pytest.raises(NlpseqError) as caught:
        task.export(tmp_path / "serving", 1)
    assert str(caught.value) == (f"--version 1: {target} exists already; "
                                 "give another version number")
    assert (target / "saved_model.pb").read_text() == "the other one"
    assert sorted(p.name for p in target.parent.iterdir()) == ["1"]


# -- 6. a model folder without a name ------------------------------------------


@pytest.mark.parametrize("path", [".", "..", "/", "sub/.."])
def test_model_dir_without_a_name(path, tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    result = run("sentiment", "train", "--epochs", "1", "--model-dir", path)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --model-dir {Path(path)}: give the model folder a name "
        "(e.g. saved_models/sentiment): training replaces it as a whole, so "
        "it cannot be '.', '..' or '/'\n")
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    assert list((tmp_path / "sub").iterdir()) == []


def test_a_model_folder_given_as_dot_loads(base, tmp_path, monkeypatch):
    folder = copy_model(base, tmp_path)
    monkeypatch.chdir(folder)
    result = run("sentiment", "predict", "--model-dir", ".", "a fine film")
    assert result.exit_code == 0, result.output
    assert result.output.split()[0] in ("pos", "neg")


# -- 7. checkpoint and state: one atomic unit ----------------------------------


def test_replace_folder_leaves_the_old_or_the_new_folder(tmp_path):
    target = tmp_path / "checkpoints"
    target.mkdir()
    (target / "state.json").write_text("old")

    def broken(new):
        (new / "last.keras").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        replace_folder(target, broken)
    assert hashes(target) == hashes_of({"state.json": "old"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]

    replace_folder(target, lambda new: (new / "state.json").write_text("new"))
    assert hashes(target) == hashes_of({"state.json": "new"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def hashes_of(files):
    return {name: hashlib.sha256(text.encode()).hexdigest()
            for name, text in files.items()}


@pytest.mark.parametrize("cut, kept", [
    ("partial written", "old"),       # crash while writing the new folder
    ("old moved aside", "new"),       # crash between the two renames
    ("new in place", "new"),          # crash before the old one is removed
])
def test_recover_folder_after_a_crash(tmp_path, cut, kept):
    target = tmp_path / "checkpoints"
    partial = tmp_path / ".checkpoints.partial"
    previous = tmp_path / ".checkpoints.previous"
    old, new = {"state.json": "old", "last.keras": "o"}, {
        "state.json": "new", "last.keras": "n"}

    def write(folder, files):
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)

    if cut == "partial written":
        write(target, old)
        write(partial, {"last.keras": "n"})
    elif cut == "old moved aside":
        write(previous, old)
        write(partial, new)
    else:
        write(previous, old)
        write(target, new)
    recover_folder(target)
    assert hashes(target) == hashes_of(old if kept == "old" else new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]


def test_trim_history_drops_epochs_after_the_checkpoint(tmp_path):
    from nlpseq.training import trim_history

    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,0.9\n1,0.8\n2,0.7\n")
    trim_history(path, 2)
    assert path.read_text() == "epoch,loss\n0,0.9\n1,0.8\n"
    trim_history(path, 2)
    assert path.read_text() == "epoch,loss\n0,0.9\n1,0.8\n"


# -- 9. a damaged model.keras --------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_damaged_model_file_is_reported_as_damaged(base, tmp_path, damage):
    folder = copy_model(base, tmp_path)
    data = (folder / "model.keras").read_bytes()
    (folder / "model.keras").write_bytes(
        data[:len(data) // 2] if damage == "truncated"
        else np.random.default_rng(0).bytes(len(data)))
    before = hashes(folder)
    result = run("sentiment", "predict", "--model-dir", folder, "a film")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {folder}: corrupted model (model.keras is damaged: not a "
        "whole .keras file, e.g. cut short; train or copy the model "
        "again)\n")
    assert hashes(folder) == before


# -- fault injection: SIGKILL at named points ------------------------------------


def start(args, fault, signal_file):
    env = dict(os.environ, NLPSEQ_FAULT=fault,
               NLPSEQ_FAULT_FILE=str(signal_file), TF_CPP_MIN_LOG_LEVEL="2",
               KERAS_BACKEND="tensorflow",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get(
                   "PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "nlpseq", *map(str, args)],
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def kill_at(process, signal_file, timeout=180):
    """Wait until ``process`` sleeps at its fault point, then SIGKILL it."""
    deadline = time.monotonic() + timeout
    while not signal_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"ended before its fault point "
                                 f"({process.returncode}):\n"
                                 f"{process.stdout.read()[-3000:]}")
        assert time.monotonic() < deadline, "fault point never reached"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


FAST_POINTS = ["checkpoint-files:2", "publish-swap"]
SLOW_POINTS = ["epoch", "checkpoint-swap:2", "before-publish", "publish"]


@pytest.mark.parametrize("point", FAST_POINTS + [
    pytest.param(p, marks=pytest.mark.slow) for p in SLOW_POINTS])
def test_killed_training_keeps_the_previous_model_and_resumes(
        base, tmp_path, point):
    """Killed during an epoch, between or around the checkpoint files, or
    during the publish: the previous model loads and predicts as before;
    ``--resume`` reaches the uninterrupted run's weights, listing each epoch
    once in history.csv."""
    folder = copy_model(base, tmp_path)
    before, expected = hashes(folder), predictions(base["previous"])
    signal_file = tmp_path / "reached"
    process = start(["sentiment", "train", "--data", base["data"],
                     "--model-dir", folder, *TINY, "--epochs", "2"], point,
                    signal_file)
    kill_at(process, signal_file)

    assert predictions(folder) == expected  # (finishes a cut-off swap)
    assert hashes(folder) == before
    result = run("sentiment", "train", "--model-dir", folder, "--resume")
    assert result.exit_code == 0, result.output
    assert_same_weights(weights(folder), weights(base["straight"]))
    history = list(csv.DictReader(open(folder / "history.csv")))
    assert [row["epoch"] for row in history] == ["0", "1"]
    only_entries(folder, "model", "reached")


def test_killed_export_leaves_no_version_and_the_model_intact(base,
                                                              tmp_path):
    folder = copy_model(base, tmp_path)
    before, expected = hashes(folder), predictions(folder)
    signal_file = tmp_path / "reached"
    process = start(["sentiment", "export", "--model-dir", folder], "export",
                    signal_file)
    kill_at(process, signal_file)
    assert not (folder / "export" / "1").exists()
    assert predictions(folder) == expected
    assert {k: v for k, v in hashes(folder).items()
            if not k.startswith("export/")} == before
    # the next export writes version 1 and clears the killed one's remains
    assert nlpseq.load(folder).export() == folder / "export" / "1"
    assert sorted(p.name for p in (folder / "export").iterdir()) == ["1"]


# -- 8. loads are atomic against a concurrent publish --------------------------


PUBLISHER = textwrap.dedent("""
    import shutil, sys, time
    from pathlib import Path
    from nlpseq.folder import ModelFolder

    folder = ModelFolder(sys.argv[1])
    sources = sys.argv[2:4]
    stop = Path(sys.argv[4])
    count = 0
    while not stop.exists():
        with folder.lock():
            if folder.staging.exists():
                shutil.rmtree(folder.staging)
            shutil.copytree(sources[count % 2], folder.staging)
            folder.publish()
        count += 1
    print(count)
""")


def test_loads_never_mix_two_models_while_publishing(base, tmp_path):
    other = tmp_path / "other"
    data = write_data(tmp_path / "other.csv", words=(
        "good", "great", "fine", "superb", "lovely", "bad", "awful", "dull",
        "boring", "poor"))
    result = run("sentiment", "train", "--data", data, "--model-dir", other,
                 *TINY, "--epochs", "1", "--embedding-dim", "5")
    assert result.exit_code == 0, result.output
    references = []
    for source in (base["previous"], other):
        task = nlpseq.load(source)
        references.append((task.preprocessor.get_config(),
                           task.model.get_weights()))
    assert references[0][0] != references[1][0]

    folder = copy_model(base, tmp_path, "served")
    stop = tmp_path / "stop"
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(folder), str(base["previous"]),
         str(other), str(stop)], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    loads, mixed, seen = 0, [], set()
    started = time.monotonic()
    try:
        while loads < 120 and time.monotonic() - started < 45:
            try:
                task = nlpseq.load(folder)
            except NlpseqError as error:
                mixed.append(str(error))
                continue
            finally:
                loads += 1
            found = [i for i, (config, _) in enumerate(references)
                     if task.preprocessor.get_config() == config]
            if len(found) != 1 or not all(
                    np.array_equal(a, b) for a, b in zip(
                        task.model.get_weights(), references[found[0]][1])):
                mixed.append(f"load {loads}: preprocessor {found}")
            else:
                seen.add(found[0])
    finally:
        stop.touch()
        published = int(publisher.communicate(timeout=60)[0] or 0)
    assert publisher.returncode == 0
    assert loads >= 100
    assert mixed == []
    assert published > loads  # (the folder changed under most loads)
    assert seen == {0, 1}
