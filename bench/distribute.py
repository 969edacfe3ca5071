"""Time per epoch of the sentiment sample model in each ``--distribute``
mode, precision and with XLA.

Each mode trains the sentiment app's model (its defaults) on the built-in
sample repeated ``--repeat`` times (epochs long enough to time), a few
epochs without early stopping, in processes of its own:

- ``single``: one process, ``--distribute none`` (``model.fit``), float32;
- ``workers``: ``--distribute multi-worker``, two worker processes on this
  machine, each pinned to one CPU core;
- ``mirrored``: one process, ``--distribute mirrored`` over every GPU, or,
  without GPUs, over two logical devices of the CPU;
- ``mixed_float16``, ``mixed_bfloat16``: one process, ``--precision``;
- ``jit_compile``: one process, ``--jit-compile`` (float32).

An epoch's time runs from one epoch's start to the next (training,
validation, checkpoint); the first epoch (tracing) is left out and the
median of the others taken; every mode runs ``--rounds`` times,
interleaved, and its fastest round counts. Prints the seconds per epoch
and the ratios to ``single`` (above 1.0: slower), and writes
``bench/results/distribute.json``.

    python bench/distribute.py
    python bench/distribute.py --epochs 5 --repeat 40
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(args):
    """One process of a mode: train, print the epochs' start times."""
    if args.core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core % os.cpu_count()})
    import nlpseq
    from nlpseq import training

    stamps = []
    begin, end = training.EpochSeeds.on_epoch_begin, training.RunState.on_train_end

    def on_epoch_begin(self, epoch, logs=None):
        stamps.append(time.perf_counter())
        begin(self, epoch, logs)

    def on_train_end(self, logs=None):
        stamps.append(time.perf_counter())
        end(self, logs)

    training.EpochSeeds.on_epoch_begin = on_epoch_begin
    training.RunState.on_train_end = on_train_end
    from nlpseq.registry import APPS

    with tempfile.TemporaryDirectory() as folder:
        # (the sample, repeated: epochs long enough to time)
        header, *rows = APPS.get("sentiment").default_data.read_text(
            encoding="utf-8").splitlines()
        data = Path(folder) / "train.csv"
        data.write_text("\n".join([header] + rows * args.repeat) + "\n",
                        encoding="utf-8")
        nlpseq.train("sentiment", model_dir=Path(folder) / "model",
                     data=str(data), epochs=args.epochs, patience=0,
                     **json.loads(args.child))
    print(json.dumps([b - a for a, b in zip(stamps, stamps[1:])]))


def run(args, workers=1, **settings):
    ports = []
    for _ in range(workers):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    processes = []
    for index in range(workers):
        env = dict(os.environ)
        if workers > 1:
            env["TF_CONFIG"] = json.dumps({
                "cluster": {"worker": [f"localhost:{p}" for p in ports]},
                "task": {"type": "worker", "index": index}})
        command = [sys.executable, __file__, "--child", json.dumps(settings),
                   "--epochs", str(args.epochs), "--repeat", str(args.repeat)]
        if workers > 1:
            command += ["--core", str(index)]
        processes.append(subprocess.Popen(command, env=env,
                                          stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=args.timeout)[0] for p in processes]
    if any(p.returncode for p in processes):
        raise SystemExit(f"{settings}: a process failed")
    epochs = json.loads(outputs[0].strip().splitlines()[-1])
    return round(statistics.median(epochs[1:]), 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20,
                        help="train on the sample repeated this many times "
                        "(default 20: 9,000 reviews an epoch)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every mode this many times, interleaved, "
                        "and keep its fastest (default 2)")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(
        HERE / "results" / "distribute.json"))
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    modes = {
        "single": {},
        "workers": {"workers": 2, "distribute": "multi-worker"},
        "mirrored": {"distribute": "mirrored", "devices": 0 if gpus else 2},
        "mixed_float16": {"precision": "mixed_float16"},
        "mixed_bfloat16": {"precision": "mixed_bfloat16"},
        "jit_compile": {"jit_compile": True},
    }
    rounds = {mode: [] for mode in modes}
    for index in range(args.rounds):  # (the modes interleaved)
        for mode, settings in modes.items():
            rounds[mode].append(run(args, **settings))
        print(f"round {index + 1}: {({m: r[-1] for m, r in rounds.items()})}")
    seconds = {mode: min(values) for mode, values in rounds.items()}
    ratios = {mode: round(value / seconds["single"], 2)
              for mode, value in seconds.items()}
    devices = f"{gpus} GPU(s)" if gpus else "2 logical CPU devices"
    print(f"seconds per epoch: {seconds}")
    print(f"ratio to one process (above 1: slower): {ratios}; mirrored "
          f"over {devices}")
    sys.path.insert(0, str(HERE))
    from _results import write_result

    write_result("distribute", args, seconds_per_epoch=seconds,
                 rounds=rounds,
                 ratio_to_single=ratios, mirrored_devices=devices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
