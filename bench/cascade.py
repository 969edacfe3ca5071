"""Speed and accuracy of a classifier's cascade (``nlpseq <app> cascade``)
against the same model without it, through the SavedModel.

For a model folder whose model has a cascade (``nlpseq sentiment cascade
--model-dir DIR`` chose its threshold), two SavedModels are exported into
a temporary folder: the whole model, and the cascade. Both are loaded with
``tf.saved_model.load`` and their ``serving_default`` signature is called
on the first ``--reviews`` texts of ``--data`` (IMDB's validation reviews by
default), ``--batch`` raw strings a call, the two models in alternating
rounds; reviews/s is over the median round. Accuracy is each model's on the
same texts, from the signature's labels, and the share of texts the n-gram
model decided alone is read from the model. Writes
``bench/results/cascade.json``.

With ``--exports A B ...`` (SavedModel folders, e.g. one exported by an
earlier version and one by this one), it serves those instead, as they
are, in alternating rounds, and prints each one's reviews/s, its ratio to
the first, whether its labels equal the first's and, where ``--data`` has
a ``label`` column, its accuracy on the texts.

    nlpseq sentiment cascade --model-dir saved_models/imdb_transfer
    python bench/cascade.py saved_models/imdb_transfer
    python bench/cascade.py --exports old_export/1 new_export/1
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _results import write_result  # noqa: E402

import nlpseq  # noqa: E402
from nlpseq.cascade import margins  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "datasets" / "imdb" / "valid.csv.gz"


def serve_all(signature, texts, batch):
    labels = []
    for i in range(0, len(texts), batch):
        out = signature(text=tf.constant(texts[i:i + batch]))
        labels += [x.decode() for x in out["label"].numpy()]
    return labels


def timed_rounds(signatures, texts, batch, repeats):
    """``{name: reviews/s}`` over the median of ``repeats`` alternating
    rounds, after a warm-up round that also gives each one's labels."""
    labels = {name: serve_all(signature, texts, batch)
              for name, signature in signatures.items()}
    times = {name: [] for name in signatures}
    for _ in range(repeats):
        for name, signature in signatures.items():
            start = time.perf_counter()
            serve_all(signature, texts, batch)
            times[name].append(time.perf_counter() - start)
    return {name: round(len(texts) / statistics.median(times[name]), 1)
            for name in signatures}, labels


def compare(args):
    """``--exports``: SavedModel folders served as they are."""
    import pandas as pd

    table = pd.read_csv(args.data)
    texts = table["text"].astype(str).tolist()[:args.reviews]
    gold = (table["label"].astype(str).tolist()[:args.reviews]
            if "label" in table else None)
    signatures = {name: tf.saved_model.load(name).signatures[
        "serving_default"] for name in args.exports}
    speeds, labels = timed_rounds(signatures, texts, args.batch,
                                  args.repeats)
    first = args.exports[0]
    print(f"{len(texts):,} texts of {args.data}, {args.batch} a call, "
          f"median of {args.repeats} alternating rounds")
    print(f"{'SavedModel':<44}{'reviews/s':>10}{'ratio':>8}  labels"
          + ("    accuracy" if gold else ""))
    accuracy = {}
    for name in args.exports:
        same = "same" if labels[name] == labels[first] else "differ"
        line = (f"{name:<44}{speeds[name]:>10.0f}"
                f"{speeds[name] / speeds[first]:>8.2f}  {same:<6}")
        if gold:
            accuracy[name] = round(float(np.mean(
                [p == g for p, g in zip(labels[name], gold)])), 4)
            line += f"  {100 * accuracy[name]:.2f} %"
        print(line)
    write_result("cascade", args, reviews_per_s=speeds, accuracy=accuracy)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", help="a sentiment or topic "
                        "model folder with a cascade")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exports", nargs="+", metavar="SAVEDMODEL",
                        help="SavedModel folders to compare as they are")
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "cascade.json"))
    args = parser.parse_args(argv)
    if args.exports:
        return compare(args)
    if args.model_dir is None or not Path(args.model_dir).is_dir():
        print("skipped: give a classifier's model folder with a cascade "
              "(nlpseq sentiment cascade --model-dir DIR)")
        return 0
    task = nlpseq.load(args.model_dir)
    cascade = task.preprocessor.cascade
    if not cascade:
        parser.error(f"{args.model_dir}: no cascade; choose one first: "
                     f"nlpseq {task.name} cascade --model-dir "
                     f"{args.model_dir}")
    data = task.read_data(args.data, "evaluate")
    texts = list(data.texts[:args.reviews])
    gold = [str(label) for label in data.labels[:args.reviews]]
    ngram = task.graph_outputs("cascade_parts", texts, ("ngram",))["ngram"]
    alone = float(np.mean(margins(ngram) > cascade["threshold"]))

    signatures = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, setting in (("whole model", None), ("cascade", cascade)):
            task.set_cascade(setting)
            path = task.export(Path(folder) / name.replace(" ", "_"))
            signatures[name] = tf.saved_model.load(str(path)).signatures[
                "serving_default"]
        task.set_cascade(cascade)
        speeds, labels = timed_rounds(signatures, texts, args.batch,
                                      args.repeats)
    rows = {name: {"accuracy": round(float(np.mean(
        [p == g for p, g in zip(labels[name], gold)])), 4),
        "reviews_per_s": speeds[name]} for name in signatures}
    ratio = round(rows["cascade"]["reviews_per_s"]
                  / rows["whole model"]["reviews_per_s"], 2)
    print(f"{args.model_dir}: {len(texts):,} texts of {args.data}, "
          f"{args.batch} a call, median of {args.repeats} rounds; the "
          f"n-gram model decided {100 * alone:.1f} % alone (threshold "
          f"{cascade['threshold']:.4f})")
    for name, row in rows.items():
        print(f"{name:<14}{row['reviews_per_s']:>9.0f} reviews/s  accuracy "
              f"{100 * row['accuracy']:.2f} %")
    print(f"{'ratio cascade / whole model':<30}{ratio:>6.2f}")
    write_result("cascade", args, rows=rows, ratio=ratio, decided_alone=alone,
                 threshold=cascade["threshold"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
