"""Distributed training (``--distribute``) on localhost: one process,
mirrored over two logical CPUs and two workers train the same weights; the
multi-worker chief alone publishes; a lost worker stops the other with one
error line, and ``--resume`` continues the job.

The runs have no dropout, so the same seed and global batch give the same
computation in every mode: only the order of floating-point sums differs
(the gradients of the replicas are summed), within :data:`TOLERANCE`.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nlpseq
from nlpseq import distribute
from nlpseq.errors import NlpseqError

ROOT = Path(__file__).resolve().parent.parent
#: (with a learning-rate decay and a weight average, which the modes must
#: apply alike)
SETTINGS = {"units": 4, "embedding_dim": 4, "epochs": 2, "batch_size": 16,
            "seed": 3, "dropout": 0.0, "word_dropout": 0.0, "patience": 0,
            "lr_decay": 0.5, "lr_decay_after": 1, "weight_average": 0.9}
FLAGS = [f"--{name.replace('_', '-')}={value}"
         for name, value in SETTINGS.items()]
#: Largest difference of a weight between the modes (measured: 6e-8).
TOLERANCE = 1e-5
TEXTS = ["a wonderful film", "dull and far too long", "not bad at all"]
LIMIT = 240


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def environment(tmp, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CONFIG", "NLPSEQ_FAULT", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(TMPDIR=str(tmp), PYTHONPATH=str(ROOT), **extra)
    return env


def start(model_dir, tmp, *options, app="sentiment", flags=FLAGS, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "nlpseq", app, "train", *flags,
         "--model-dir", str(model_dir), *options], cwd=ROOT,
        env=environment(tmp, **env), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def workers(model_dir, tmp, *options, fault=None, mode="multi-worker"):
    """Two worker processes of one job (worker 1 stops at ``fault``);
    ``mode`` None: no ``--distribute`` option."""
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(2)]}
    processes = []
    for index in range(2):
        env = {"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        if fault and index == 1:
            env.update(NLPSEQ_FAULT=fault,
                       NLPSEQ_FAULT_FILE=str(tmp / "fault"))
        given = ["--distribute", mode] if mode else []
        processes.append(start(model_dir, tmp, *given, *options, **env))
    return processes


def finish(process, limit=LIMIT):
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"no exit within {limit} s")
    return process.returncode, out, err


def weights(model_dir):
    return nlpseq.load(model_dir).model.get_weights()


def history(model_dir):
    with open(Path(model_dir) / "history.csv", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def largest_difference(first, second):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Single (in this process), mirrored and multi-worker runs, the
    subprocesses side by side."""
    tmp = tmp_path_factory.mktemp("distribute")
    (tmp / "temp").mkdir()
    mirrored = start(tmp / "mirrored", tmp / "temp", "--distribute",
                     "mirrored", "--devices", "2")
    job = workers(tmp / "workers", tmp / "temp")
    single = nlpseq.train("sentiment", model_dir=tmp / "single", **SETTINGS)
    return {"tmp": tmp, "single": single, "mirrored": finish(mirrored),
            "workers": [finish(p) for p in job]}


#: The training step at which worker 1 is killed: the 12th of the second
#: epoch (450 sample reviews, 29 batches of 16 an epoch).
KILL_STEP = 29 + 12


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A multi-worker job whose worker 1 is killed in the middle of the
    second epoch, and the job resumed."""
    tmp = tmp_path_factory.mktemp("killed")
    (tmp / "temp").mkdir()
    broken = workers(tmp / "broken", tmp / "temp", fault=f"step:{KILL_STEP}")
    deadline = time.monotonic() + LIMIT
    while not (tmp / "temp" / "fault").exists():
        assert time.monotonic() < deadline, "worker 1 never reached epoch 2"
        assert broken[1].poll() is None, finish(broken[1])
        time.sleep(0.2)
    broken[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    survivor = finish(broken[0])
    stopped_after = time.monotonic() - killed
    finish(broken[1])
    state = tmp / ".broken.training" / "checkpoints" / "state.json"
    state = json.loads(state.read_text()) if state.is_file() else {}
    # (SIGKILL left worker 1's private folder behind)
    (tmp / "resumed").mkdir()
    # (restarted with --resume alone: the run keeps its --distribute)
    resumed = [finish(p) for p in workers(tmp / "broken", tmp / "resumed",
                                          "--resume", mode=None)]
    return {"tmp": tmp, "survivor": survivor, "stopped_after": stopped_after,
            "state": state, "resumed": resumed}


#: The families whose models compute their own loss (a CRF's, a
#: translator's), their deterministic settings and the first records of
#: their sample: 120 sentences or pairs, batches of 16 and a last one of 8,
#: which split evenly over two replicas.
FAMILIES = {
    "ner": ({"rare_word_dropout": 0.0}, "ner_sample.conll"),
    "translation": ({}, "translation_sample.tsv"),
}


def first_records(name, folder, count=120):
    text = (ROOT / "apps" / "data" / name).read_text(encoding="utf-8")
    if name.endswith(".conll"):
        records = text.strip().split("\n\n")[:count]
        small = "\n\n".join(records) + "\n"
    else:
        small = "\n".join(text.splitlines()[:count]) + "\n"
    (folder / name).write_text(small, encoding="utf-8")
    return folder / name


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """The ner and translation apps, 1 epoch in one process and mirrored
    over two logical CPUs."""
    tmp = tmp_path_factory.mktemp("families")
    (tmp / "temp").mkdir()
    runs = {}
    for app, (extra, name) in FAMILIES.items():
        data = first_records(name, tmp)
        settings = dict(SETTINGS, epochs=1, lr_decay=1.0, weight_average=0.0,
                        **extra)
        del settings["word_dropout"]  # (a classifier's)
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
        flags += ["--data", str(data), "--valid", str(data)]
        runs[app] = (settings, data, start(
            tmp / f"{app}-mirrored", tmp / "temp", "--distribute",
            "mirrored", "--devices", "2", app=app, flags=flags))
    out = {}
    for app, (settings, data, process) in runs.items():
        single = nlpseq.train(app, model_dir=tmp / f"{app}-single",
                              data=str(data), valid=str(data), **settings)
        out[app] = (single, finish(process), tmp / f"{app}-mirrored")
    return out


#: Their losses are means over the tokens (the translator's) or the
#: sentences (the CRF's) of each replica's half of a batch, so the modes
#: differ by more than the rounding of a sum; Adam turns such differences
#: of nearly-zero gradients into steps of up to the learning rate (0.001).
FAMILY_TOLERANCE = 1e-2


@pytest.mark.slow  # (77 s on 2 cores)
@pytest.mark.parametrize("app", list(FAMILIES))
def test_a_model_computing_its_own_loss_trains_alike_mirrored(families, app):
    """The CRF's and the translator's losses are divided among the
    replicas as Keras' compiled losses are, so the logged losses are those
    of one process (not twice them), and the weights close."""
    single, (code, _, err), folder = families[app]
    assert code == 0, err
    for row, reference in zip(history(folder),
                              history(single.folder.path)):
        for name in ("loss", "val_loss"):
            assert float(row[name]) == pytest.approx(float(reference[name]),
                                                     rel=1e-3), name
    difference = largest_difference(single.model.get_weights(),
                                    weights(folder))
    print(f"{app}: largest weight difference to one process: {difference}")
    assert difference <= FAMILY_TOLERANCE


def test_mirrored_and_multi_worker_train_the_single_process_weights(runs):
    tmp = runs["tmp"]
    assert runs["mirrored"][0] == 0, runs["mirrored"][2]
    for code, _, err in runs["workers"]:
        assert code == 0, err
    reference = runs["single"].model.get_weights()
    differences = {mode: largest_difference(reference, weights(tmp / mode))
                   for mode in ("mirrored", "workers")}
    print(f"largest weight difference to one process: {differences}")
    assert max(differences.values()) <= TOLERANCE, differences
    assert "2 replica(s) in sync" in runs["mirrored"][1]


#: The same seeded mirrored run twice in one process: through nlpseq's loop
#: (distribute.fit), then through Keras' model.fit under the strategy's
#: scope; prints the largest weight difference.
BOTH_PATHS = """
import json, sys
import numpy as np
import nlpseq
from nlpseq import distribute

settings = json.loads(sys.argv[2])
folder = sys.argv[1]
ours = nlpseq.train("sentiment", model_dir=folder + "/loop", **settings)

def keras_fit(model, x, validation_data, epochs, initial_epoch,
              steps_per_epoch, callbacks, verbose, shuffle=False):
    with model.distribute_strategy.scope():
        return model.fit(x, validation_data=validation_data, epochs=epochs,
                         initial_epoch=initial_epoch,
                         steps_per_epoch=steps_per_epoch,
                         callbacks=callbacks, verbose=verbose, shuffle=False)

distribute.fit = keras_fit
keras = nlpseq.train("sentiment", model_dir=folder + "/fit", **settings)
print(max(float(np.max(np.abs(a - b))) for a, b in
          zip(ours.model.get_weights(), keras.model.get_weights())))
"""


@pytest.mark.slow  # (20 s)
def test_the_loop_trains_the_weights_of_model_fit_under_mirrored(tmp_path):
    """nlpseq's loop (one for mirrored and multi-worker) trains what Keras'
    ``model.fit`` trains under a MirroredStrategy; docs/distribute.md says
    why ``model.fit`` cannot serve multi-worker runs."""
    settings = dict(SETTINGS, distribute="mirrored", devices=2)
    result = subprocess.run(
        [sys.executable, "-c", BOTH_PATHS, str(tmp_path),
         json.dumps(settings)], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=str(ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) <= 1e-6


def test_the_chief_alone_publishes(runs):
    tmp = runs["tmp"]
    chief, other = runs["workers"]
    assert "Saved" in chief[1] and "Saved" not in other[1]
    assert "This worker is done" in other[1]
    published = [p.name for p in tmp.iterdir() if p.name.startswith(
        ("workers", ".workers"))]
    assert published == ["workers"]
    assert list((tmp / "temp").glob("nlpseq-worker-*")) == []
    # the same history (learning-rate decay included) and TensorBoard logs
    single = history(runs["single"].folder.path)
    for mode in ("mirrored", "workers"):
        rows = history(tmp / mode)
        assert [r["learning_rate"] for r in rows] == \
            [r["learning_rate"] for r in single]
        assert [float(r["learning_rate"]) for r in rows] == pytest.approx(
            [0.001, 0.0005])
        for row, reference in zip(rows, single):
            assert float(row["loss"]) == pytest.approx(
                float(reference["loss"]), abs=1e-5)
        assert list((tmp / mode / "logs").rglob("events.out.tfevents.*"))
    expected = runs["single"].predict(TEXTS)
    got = nlpseq.load(tmp / "workers").predict(TEXTS)
    for mine, theirs in zip(got, expected):
        assert mine["label"] == theirs["label"]
        assert mine["probability"] == pytest.approx(theirs["probability"],
                                                    abs=1e-4)


@pytest.mark.slow  # (40 s)
def test_a_lost_worker_stops_the_job_and_resume_continues_it(runs,
                                                             killed):
    tmp = killed["tmp"]
    code, out, err = killed["survivor"]
    assert code != 0
    print(f"the survivor exited {killed['stopped_after']:.1f} s after "
          "the kill")
    assert killed["stopped_after"] <= 60
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1, err
    assert errors[0].startswith("Error: training stopped: worker 1 of the "
                                "job stopped responding"), errors
    assert "--resume" in errors[0]
    # (killed in epoch 2: the job resumes from epoch 1's checkpoint)
    assert killed["state"]["epochs_done"] == 1
    for code, out, err in killed["resumed"]:
        assert code == 0, err
        assert "Resuming the run" in out
    assert not (tmp / ".broken.training").exists()
    assert list((tmp / "resumed").glob("nlpseq-worker-*")) == []
    difference = largest_difference(weights(runs["tmp"] / "workers"),
                                    weights(tmp / "broken"))
    print(f"largest weight difference, resumed to uninterrupted: "
          f"{difference}")
    assert difference <= TOLERANCE


@pytest.mark.parametrize("value, message", [
    (None, "TF_CONFIG is not set"),
    ("{cluster", "TF_CONFIG: not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG: no 'cluster'"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG: cluster job 'worker' is \\[\\]; expected a non-empty list "
     "of \"host:port\" addresses"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", '
     '"index": "0"}}', 'TF_CONFIG: task index "0" is not an integer'),
    ('{"cluster": {"worker": ["h:1", 3]}}',
     "TF_CONFIG: cluster job 'worker' is \\[\"h:1\", 3\\]"),
    ('{"cluster": {"worker": ["h:1"]}}', "TF_CONFIG: no 'task'"),
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", '
     '"index": 2}}', "task index 2 is out of range"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", '
     '"index": 0}}', "task type 'chief' is not a job"),
])
def test_bad_tf_config_is_one_line(value, message):
    environ = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(NlpseqError, match=message) as caught:
        distribute.cluster(environ)
    assert "\n" not in str(caught.value)


def test_chief(monkeypatch, tmp_path):
    config = {"distribute": "multi-worker"}
    cluster = {"chief": ["h:1"], "worker": ["h:2"]}
    for task, chief in ((("chief", 0), True), (("worker", 0), False)):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {
            "type": task[0], "index": task[1]}}))
        assert distribute.is_chief(config) is chief
    assert distribute.is_chief({"distribute": "mirrored"})
    # resumed, the run's saved setting counts
    staging = tmp_path / ".m.training"
    staging.mkdir()
    (staging / "config.json").write_text(json.dumps(
        {"app": "sentiment", "config": {"distribute": "multi-worker"}}))
    assert distribute.is_chief({"distribute": "none"}, staging) is False
    assert distribute.is_chief({"distribute": "none"},
                               tmp_path / "missing") is True


def test_too_late_for_logical_devices(runs, tmp_path):
    # (TensorFlow runs in this process already: the run in the fixture)
    with pytest.raises(NlpseqError, match="--devices 3: TensorFlow has "
                       "already started"):
        nlpseq.train("sentiment", model_dir=tmp_path / "m", distribute=
                     "mirrored", devices=3, **SETTINGS)
    assert not (tmp_path / "m").exists()


def test_xla_with_a_strategy_is_refused(tmp_path):
    with pytest.raises(NlpseqError, match="^--jit-compile: not available "
                       "with --distribute mirrored"):
        nlpseq.train("sentiment", model_dir=tmp_path / "m", distribute=
                     "mirrored", devices=2, jit_compile=True, **SETTINGS)
    assert not (tmp_path / "m").exists()


def test_more_devices_than_a_cpu_can_be_split_into_are_refused(tmp_path):
    """(before TensorFlow starts: 100,000 logical devices would sit for
    minutes at 1.3 GB)"""
    with pytest.raises(NlpseqError, match="devices must be <= 64, got "
                       "100000"):
        nlpseq.train("sentiment", model_dir=tmp_path / "m", devices=100000,
                     distribute="mirrored", **SETTINGS)
    assert not (tmp_path / "m").exists()


def test_devices_without_mirrored_is_refused(tmp_path):
    with pytest.raises(NlpseqError, match="^--devices 2: only with "
                       "--distribute mirrored \\(got none\\)$"):
        nlpseq.train("sentiment", model_dir=tmp_path / "m", devices=2,
                     **SETTINGS)
    assert not (tmp_path / "m").exists()

