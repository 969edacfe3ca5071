"""Speed of nlpseq's recurrent layers against Keras' builtin ones.

Times, in one process, a forward+backward training step and an inference
pass for nlpseq's SimpleRNN / LSTM / GRU and for ``keras.layers`` layers of the
same size, alternating the two so that both see the same machine load. Prints
median times and the ratio nlpseq / Keras (below 1.0: nlpseq is faster) and
writes them to ``bench/results/cells.json``.

    python bench/cells.py                      # the README's table
    python bench/cells.py --steps 100 --repeats 5 --cells lstm
    TF_CPU_ALLOCATOR_USE_BFC=false python bench/cells.py  # TF's default
                                                          # host allocator
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _results import write_result  # noqa: E402

from nlpseq import layers  # noqa: E402

PAIRS = {
    "rnn": (layers.SimpleRNN, keras.layers.SimpleRNN, {}),
    "lstm": (layers.LSTM, keras.layers.LSTM, {}),
    "gru": (layers.GRU, keras.layers.GRU, {"reset_after": False}),
    "gru_reset_after": (layers.GRU, keras.layers.GRU, {"reset_after": True}),
}


def make_steps(layer, x):
    """Compiled inference and training-step functions for one layer."""

    @tf.function
    def infer():
        return layer(x, training=False)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True)))
        return tape.gradient(loss, layer.trainable_variables)

    return infer, train


def time_pair(functions, repeats):
    """Median seconds of each function, calls alternated round-robin."""
    for function in functions:  # trace and warm up
        function()
        function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, bucket in zip(functions, times):
            start = time.perf_counter()
            result = function()
            # Make sure the work is done before stopping the clock.
            tf.nest.map_structure(lambda t: t.numpy(), result)
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def _bfc():
    return os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in (
        "1", "true")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9,
                        help="timed training steps per layer")
    parser.add_argument("--infer-repeats", type=int, default=25,
                        help="timed inference passes per layer (they are "
                        "shorter, so more of them for a stable median)")
    parser.add_argument("--cells", nargs="+", default=list(PAIRS),
                        choices=list(PAIRS))
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "cells.json"))
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    rows = []
    print(f"batch {args.batch}, features {args.features}, units "
          f"{args.units}; median of {args.repeats} training steps and "
          f"{args.infer_repeats} inference passes; host allocator: "
          f"{'BFC' if _bfc() else 'default'}; ratio = nlpseq / Keras (lower "
          f"is better)")
    print(f"{'cell':<16}{'steps':>6}  {'mode':<6}{'nlpseq ms':>11}"
          f"{'keras ms':>10}{'ratio':>8}")
    for name in args.cells:
        ours_cls, keras_cls, kwargs = PAIRS[name]
        for steps in args.steps:
            x = tf.constant(np.random.default_rng(0).standard_normal(
                (args.batch, steps, args.features)).astype("float32"))
            ours = ours_cls(args.units, **kwargs)
            theirs = keras_cls(args.units, **kwargs)
            ours_infer, ours_train = make_steps(ours, x)
            theirs_infer, theirs_train = make_steps(theirs, x)
            for mode, pair in (("train", (ours_train, theirs_train)),
                               ("infer", (ours_infer, theirs_infer))):
                t_ours, t_keras = time_pair(
                    pair, args.repeats if mode == "train"
                    else args.infer_repeats)
                ratio = t_ours / t_keras
                rows.append({
                    "cell": name, "steps": steps, "mode": mode,
                    "nlpseq_ms": round(t_ours * 1e3, 2),
                    "keras_ms": round(t_keras * 1e3, 2),
                    "ratio": round(ratio, 3),
                })
                print(f"{name:<16}{steps:>6}  {mode:<6}{t_ours * 1e3:>11.1f}"
                      f"{t_keras * 1e3:>10.1f}{ratio:>8.2f}", flush=True)

    write_result("cells", args, rows=rows)
    worst = max(row["ratio"] for row in rows)
    print(f"worst ratio {worst:.2f} (target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
