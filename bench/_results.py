"""What the benchmarks share: timing a workload, and writing the figures
with the versions, the machine and the options that produced them, as
``bench/results/<name>.json``."""

import json
import os
import platform
import statistics
import time
from pathlib import Path

import keras
import tensorflow as tf

import nlpseq
from nlpseq.runtime import ENVIRONMENT


def items_per_second(count, run, repeats):
    """``count`` items over the median time of ``run()``, called ``repeats``
    times after one warm-up call."""
    times = []
    for repeat in range(repeats + 1):  # the first warms up
        start = time.perf_counter()
        run()
        if repeat:
            times.append(time.perf_counter() - start)
    return round(count / statistics.median(times), 1)


def served_signature(name, folder, signature="serving_default"):
    """A signature of ``name``: a SavedModel folder (one with
    ``saved_model.pb``, e.g. written by an earlier version) as it is, or a
    trained model folder's export, written under ``folder``."""
    path = Path(name)
    if not (path / "saved_model.pb").is_file():
        path = nlpseq.load(name).export(Path(folder), 1)
    return tf.saved_model.load(str(path)).signatures[signature]


def compare_models(names, rate, unit, title):
    """``{name: rate(serve)}`` for each model of ``names`` (see
    :func:`served_signature`), its ``serving_default`` timed by ``rate``
    (items per second); prints ``title`` and a table of each one's rate in
    ``unit`` and its ratio to the first."""
    import tempfile

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for number, name in enumerate(names):
            rows[name] = rate(served_signature(name, Path(folder) /
                                               str(number)))
    first = rows[names[0]]
    print(title)
    print(f"{'model':<40}{unit:>12}{'ratio':>8}")
    for name, value in rows.items():
        print(f"{name:<40}{value:>12.0f}{value / first:>8.2f}")
    return rows


def write_result(name, args, **figures):
    """Write ``args.output`` (JSON) and say so."""
    result = {
        "benchmark": name,
        "nlpseq": nlpseq.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "environment": {name: os.environ.get(name) for name in ENVIRONMENT},
        "config": {k: v for k, v in vars(args).items() if k != "output"},
        **figures,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
