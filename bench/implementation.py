"""Which of Keras' two ``implementation`` modes is faster for nlpseq's gated
cells, by size: 1 (a recurrent product per gate) against 2 (one fused
product), for the LSTM and the GRU, in training and inference.

Both modes of a size run in one process, alternated round-robin so that
they see the same machine load. Prints median times and the ratio
implementation 1 / implementation 2 (below 1.0: a product per gate is
faster), and which mode nlpseq's default (``implementation=None``) picks
there; writes them to ``bench/results/implementation.json``.

    python bench/implementation.py
    python bench/implementation.py --units 64 256 --cells lstm
"""

import argparse
import sys
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _results import write_result  # noqa: E402
from cells import make_steps, time_pair  # noqa: E402

from nlpseq import layers  # noqa: E402

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--units", type=int, nargs="+",
                        default=[32, 64, 128, 256])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--infer-repeats", type=int, default=25)
    parser.add_argument("--cells", nargs="+", default=list(CELLS),
                        choices=list(CELLS))
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "implementation.json"))
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    x = tf.constant(np.random.default_rng(0).standard_normal(
        (args.batch, args.steps, args.features)).astype("float32"))
    print(f"batch {args.batch}, {args.steps} steps, features "
          f"{args.features}; ratio = implementation 1 / implementation 2 "
          "(below 1: a product per gate is faster)")
    print(f"{'cell':<6}{'units':>6}  {'mode':<6}{'impl 1 ms':>10}"
          f"{'impl 2 ms':>10}{'ratio':>8}  default")
    rows = []
    for name in args.cells:
        for units in args.units:
            per_gate = CELLS[name](units, implementation=1)
            fused = CELLS[name](units, implementation=2)
            default = CELLS[name](units).cell.per_gate_products
            one_infer, one_train = make_steps(per_gate, x)
            two_infer, two_train = make_steps(fused, x)
            for mode, pair in (("train", (one_train, two_train)),
                               ("infer", (one_infer, two_infer))):
                t_one, t_two = time_pair(
                    pair, args.repeats if mode == "train"
                    else args.infer_repeats)
                ratio = t_one / t_two
                rows.append({"cell": name, "units": units, "mode": mode,
                             "implementation_1_ms": round(t_one * 1e3, 2),
                             "implementation_2_ms": round(t_two * 1e3, 2),
                             "ratio": round(ratio, 3),
                             "default": 1 if default else 2})
                print(f"{name:<6}{units:>6}  {mode:<6}{t_one * 1e3:>10.1f}"
                      f"{t_two * 1e3:>10.1f}{ratio:>8.2f}  "
                      f"{1 if default else 2}", flush=True)
    write_result("implementation", args, rows=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
