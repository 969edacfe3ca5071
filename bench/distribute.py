"""Time per epoch of the sentiment sample model in each ``--distribute`` mode.

Each mode trains the built-in sentiment sample (the app's defaults, a few
epochs, no early stopping) in processes of its own:

- ``single``: one process, ``--distribute none`` (``model.fit``);
- ``workers``: ``--distribute multi-worker``, two worker processes on this
  machine, each pinned to one CPU core;
- ``mirrored``: one process, ``--distribute mirrored`` over every GPU, or,
  without GPUs, over two logical devices of the CPU.

An epoch's time runs from one epoch's start to the next (training,
validation, checkpoint); the first epoch (tracing) is left out and the
median of the others taken. Prints the seconds per epoch and the ratios to
``single`` (above 1.0: slower), and writes ``bench/results/distribute.json``.

    python bench/distribute.py
    python bench/distribute.py --epochs 5
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
    with tempfile.TemporaryDirectory() as folder:
        nlpseq.train("sentiment", model_dir=Path(folder) / "model",
                     epochs=args.epochs, patience=0, distribute=args.child,
                     devices=args.devices)
    print(json.dumps([b - a for a, b in zip(stamps, stamps[1:])]))


def run(mode, args, workers=1, devices=0):
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
        command = [sys.executable, __file__, "--child", mode, "--epochs",
                   str(args.epochs), "--devices", str(devices)]
        if workers > 1:
            command += ["--core", str(index)]
        processes.append(subprocess.Popen(command, env=env,
                                          stdout=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=args.timeout)[0] for p in processes]
    if any(p.returncode for p in processes):
        raise SystemExit(f"{mode}: a process failed")
    epochs = json.loads(outputs[0].strip().splitlines()[-1])
    return round(statistics.median(epochs[1:]), 3)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=0,
                        help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(
        HERE / "results" / "distribute.json"))
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    seconds = {
        "single": run("none", args),
        "workers": run("multi-worker", args, workers=2),
        "mirrored": run("mirrored", args, devices=0 if gpus else 2),
    }
    ratios = {mode: round(value / seconds["single"], 2)
              for mode, value in seconds.items()}
    devices = f"{gpus} GPU(s)" if gpus else "2 logical CPU devices"
    print(f"seconds per epoch: {seconds}")
    print(f"ratio to one process (above 1: slower): {ratios}; mirrored "
          f"over {devices}")
    sys.path.insert(0, str(HERE))
    from _results import write_result

    write_result("distribute", args, seconds_per_epoch=seconds,
                 ratio_to_single=ratios, mirrored_devices=devices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
