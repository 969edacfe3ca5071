"""Speed of the transfer recipe's parts: the language model's training step
with the full softmax and with ``--sampled-softmax``, and the prediction
throughput of a classifier started from a language model next to a
classifier trained from scratch.

In one process, on IMDB text (``../shared/datasets/imdb``):

- **language model**: the ``apps/configs/next_word_imdb.toml`` model (tied
  embedding 256 -> LSTM 256 -> 30,000 logits) with its vocabulary fitted on
  the unlabelled reviews' first ``--lines`` lines, trained ``--train-batches``
  batches of 64 windows of 70 tokens with the full softmax and with a
  sampled one (512 words): tokens/s, and the ratio sampled / full (above
  1.0: the sampled softmax is faster);
- **prediction** (``--classifiers FROM_SCRATCH TRANSFERRED``, two model
  folders of the sentiment app): reviews/s of each model's ``predict`` over
  the first ``--reviews`` validation reviews, 1,024 at a time, and their
  ratio.

Writes ``bench/results/transfer.json``.

    python bench/transfer.py
    python bench/transfer.py --classifiers saved_models/imdb \\
        saved_models/imdb_transfer
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import keras  # noqa: E402
from _results import write_result  # noqa: E402

import nlpseq  # noqa: E402
from nlpseq.data.corpus import Corpus  # noqa: E402
from nlpseq.registry import APPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "datasets" / "imdb"


def language_model(args):
    import gzip

    cls = APPS.get("next-word")
    config = cls.effective_config(
        {"data": str(Path(args.data) / "unsup.txt.gz")},
        ROOT / "apps" / "configs" / "next_word_imdb.toml")
    task = cls(config)
    with gzip.open(Path(args.data) / "unsup.txt.gz", "rt") as handle:
        lines = [line.rstrip("\n") for _, line in zip(range(args.lines),
                                                      handle)]
    corpus = Corpus(lines, "unsup.txt.gz")
    task.preprocessor = cls.preprocessor_class.fit(corpus, config)
    x, y = task.encode(corpus)
    batch = config["batch_size"]
    n = min(len(x) // batch, args.train_batches) * batch
    x, y = x[:n], y[:n]
    rows = {}
    for name, sampled in (("full", 0), ("sampled", 512)):
        task.config["sampled_softmax"] = sampled
        keras.utils.set_random_seed(0)
        model = task.build_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      jit_compile=False, **task.compile_arguments())
        times = []
        for repeat in range(args.repeats + 1):  # the first is a warm-up
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0,
                      shuffle=False)
            if repeat:
                times.append(time.perf_counter() - start)
        rows[name] = {"train_tokens_per_s": round(
            x.size / statistics.median(times), 1)}
    ratio = round(rows["sampled"]["train_tokens_per_s"]
                  / rows["full"]["train_tokens_per_s"], 2)
    print(f"language model: tied embedding 256 -> LSTM 256 -> "
          f"{task.preprocessor.encoder.vocabulary_size:,} words; {x.size:,} "
          f"tokens a round, median of {args.repeats}")
    print(f"{'train (tokens/s)':<26}{'full':>10}{'sampled 512':>13}"
          f"{'ratio':>8}")
    print(f"{'':<26}{rows['full']['train_tokens_per_s']:>10.0f}"
          f"{rows['sampled']['train_tokens_per_s']:>13.0f}{ratio:>8.2f}")
    return rows, ratio


def prediction(args):
    import csv
    import gzip

    with gzip.open(Path(args.data) / "valid.csv.gz", "rt") as handle:
        texts = [row["text"] for _, row in zip(range(args.reviews),
                                               csv.DictReader(handle))]
    rows = {}
    for name, folder in zip(("from_scratch", "transferred"),
                            args.classifiers):
        task = nlpseq.load(folder)
        task.predict_probabilities(texts[:64])  # trace
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            task.predict_probabilities(texts)
            times.append(time.perf_counter() - start)
        rows[name] = {"folder": str(folder), "reviews_per_s": round(
            len(texts) / statistics.median(times), 1)}
    ratio = round(rows["transferred"]["reviews_per_s"]
                  / rows["from_scratch"]["reviews_per_s"], 2)
    print(f"prediction: {len(texts):,} validation reviews, median of "
          f"{args.repeats}")
    for name, row in rows.items():
        print(f"{name:<26}{row['reviews_per_s']:>10.0f} reviews/s  "
              f"({row['folder']})")
    print(f"{'ratio transferred / from scratch':<36}{ratio:>8.2f}")
    return rows, ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--train-batches", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--classifiers", nargs=2, default=None,
                        metavar=("FROM_SCRATCH", "TRANSFERRED"))
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "transfer.json"))
    args = parser.parse_args(argv)
    if not (Path(args.data) / "unsup.txt.gz").is_file():
        print(f"skipped: the IMDB data is not in {args.data}")
        return 0
    figures = {}
    figures["language_model"], figures["sampled_ratio"] = \
        language_model(args)
    if args.classifiers:
        missing = [f for f in args.classifiers if not Path(f).is_dir()]
        if missing:
            print(f"prediction skipped: no model folder {missing[0]}")
        else:
            figures["prediction"], figures["prediction_ratio"] = \
                prediction(args)
    write_result("transfer", args, **figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
