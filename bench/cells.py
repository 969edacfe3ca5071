"""Speed of nlpseq's recurrent layers against Keras' builtin ones.

Times, in one process, a forward+backward training step and an inference
pass for nlpseq's SimpleRNN / LSTM / GRU and for ``keras.layers`` layers of the
same size, alternating the two so that both see the same machine load. Prints
median times and the ratio nlpseq / Keras (below 1.0: nlpseq is faster) and
writes them to ``bench/results/cells.json``.

Beside them, each case's achieved GFLOP/s (the matrix products' floating
point operations: the input projection ``2·B·T·F·G·U`` and the recurrent
products ``2·B·T·U·G·U`` for ``G`` gates; three times that for a training
step, whose backward computes two products per forward one; element-wise
work not counted) and the rate of the same products run back to back with
nothing else, measured in the same run (``sgemm``: one projection product
and ``T`` recurrent products of the step's shape, each waiting for the one
before as the recurrence does, unrolled in one graph, no loop). ``share``
is the layer's rate over that one: the fraction of the machine's
matrix-product speed for those shapes that the layer's inference reaches
(for training, against the same forward products, so an upper bound near
1 is not expected: the backward's products have other shapes).

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

#: Gates per cell: the recurrent kernel is ``[units, gates · units]``.
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "gru_reset_after": 3}

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


def product_flops(batch, steps, features, units, gates):
    """Floating point operations of one forward pass's matrix products."""
    return 2 * batch * steps * gates * units * (features + units)


def sgemm_reference(batch, steps, features, units, gates):
    """A function running the forward pass's matrix products alone: the
    input projection, then ``steps`` recurrent products each fed by the one
    before (as ``h_t`` waits for ``h_{t-1}``), unrolled."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal(
        (batch * steps, features)).astype("float32"))
    kernel = tf.constant(rng.standard_normal(
        (features, gates * units)).astype("float32") * 0.05)
    recurrent = tf.constant(rng.standard_normal(
        (units, gates * units)).astype("float32") * 0.05)
    h0 = tf.constant(rng.standard_normal((batch, units)).astype("float32"))

    @tf.function
    def products():
        projected = tf.matmul(x, kernel)
        h = h0
        for _ in range(steps):
            h = tf.matmul(h, recurrent)[:, :units]
        return projected[:1], h

    return products


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
          f"{'keras ms':>10}{'ratio':>8}{'GFLOP/s':>9}{'sgemm':>8}"
          f"{'share':>7}")
    for name in args.cells:
        ours_cls, keras_cls, kwargs = PAIRS[name]
        for steps in args.steps:
            x = tf.constant(np.random.default_rng(0).standard_normal(
                (args.batch, steps, args.features)).astype("float32"))
            ours = ours_cls(args.units, **kwargs)
            theirs = keras_cls(args.units, **kwargs)
            ours_infer, ours_train = make_steps(ours, x)
            theirs_infer, theirs_train = make_steps(theirs, x)
            shape = (args.batch, steps, args.features, args.units,
                     GATES[name])
            flops = product_flops(*shape)
            (t_sgemm,) = time_pair([sgemm_reference(*shape)],
                                   args.infer_repeats)
            sgemm = flops / t_sgemm / 1e9
            for mode, pair in (("train", (ours_train, theirs_train)),
                               ("infer", (ours_infer, theirs_infer))):
                t_ours, t_keras = time_pair(
                    pair, args.repeats if mode == "train"
                    else args.infer_repeats)
                ratio = t_ours / t_keras
                rate = flops * (3 if mode == "train" else 1) / t_ours / 1e9
                rows.append({
                    "cell": name, "steps": steps, "mode": mode,
                    "nlpseq_ms": round(t_ours * 1e3, 2),
                    "keras_ms": round(t_keras * 1e3, 2),
                    "ratio": round(ratio, 3),
                    "gflops": round(rate, 2),
                    "sgemm_gflops": round(sgemm, 2),
                    "sgemm_share": round(rate / sgemm, 3),
                })
                print(f"{name:<16}{steps:>6}  {mode:<6}{t_ours * 1e3:>11.1f}"
                      f"{t_keras * 1e3:>10.1f}{ratio:>8.2f}{rate:>9.1f}"
                      f"{sgemm:>8.1f}{rate / sgemm:>7.2f}", flush=True)

    write_result("cells", args, rows=rows)
    worst = max(row["ratio"] for row in rows)
    print(f"worst ratio {worst:.2f} (target <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
