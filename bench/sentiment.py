"""Speed of the sentiment app against a reference built from Keras' LSTM.

In one process: the same sentiment model (embedding -> LSTM -> masked max
pooling -> dense) is built twice, once with nlpseq's LSTM and once with
``keras.layers.LSTM`` of the same sizes. For each it measures

- training throughput (reviews/s) of ``fit`` on IMDB training reviews,
- prediction throughput (reviews/s) of the exported SavedModel, fed raw
  review strings from the IMDB validation split in batches,

prints the ratios nlpseq / reference (above 1.0: nlpseq is faster) and
writes ``bench/results/sentiment.json``.

    python bench/sentiment.py
    python bench/sentiment.py --train-reviews 2000 --repeats 2
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _results import write_result  # noqa: E402

from nlpseq.registry import APPS  # noqa: E402
from nlpseq.training import batches_per_epoch, padded_batches  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" \
    / "imdb"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--train-reviews", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=256,
                        help="reviews per request to the SavedModel")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "sentiment.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "valid.csv.gz").is_file():
        print(f"skipped: the IMDB data is not in {data}")
        return 0

    cls = APPS.get("sentiment")
    config = cls.effective_config({"cell": "lstm", "units": 64,
                                   "embedding_dim": 64, "max_length": 400,
                                   "batch_size": 32})
    task = cls(config)
    train = task.read_data(str(data / "train.csv.gz"), "train")
    valid = task.read_data(str(data / "valid.csv.gz"), "valid")
    train.texts = train.texts[:args.train_reviews]
    train.labels = train.labels[:args.train_reviews]
    task.preprocessor = cls.preprocessor_class.fit(train, config)
    x, y = task.encode(train)
    n_batches = batches_per_epoch(len(x), config["batch_size"])

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        models = {}
        for name, layer_class in (("nlpseq", None),
                                  ("keras", keras.layers.LSTM)):
            keras.utils.set_random_seed(0)
            model = task.build_model(layer_class=layer_class)
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          jit_compile=False, **task.compile_arguments())
            models[name] = model
        # training: one warm-up epoch, then timed epochs, alternating
        train_times = {name: [] for name in models}
        for repeat in range(args.repeats + 1):
            for name, model in models.items():
                batches = padded_batches(x, y, config["batch_size"],
                                         seed=repeat, first_epoch=repeat)
                start = time.perf_counter()
                model.fit(batches, epochs=1, steps_per_epoch=n_batches,
                          verbose=0, shuffle=False)
                if repeat:
                    train_times[name].append(time.perf_counter() - start)
        # prediction: export each, serve raw strings
        served = {}
        for name, model in models.items():
            task.model = model
            path = task.export(Path(folder) / name, 1)
            served[name] = tf.saved_model.load(str(path)).signatures[
                "serving_default"]
        texts = valid.texts
        requests = [tf.constant(texts[i:i + args.batch])
                    for i in range(0, len(texts), args.batch)]
        predict_times = {name: [] for name in served}
        for repeat in range(args.repeats + 1):
            for name, serve in served.items():
                start = time.perf_counter()
                for request in requests:
                    serve(text=request)["probabilities"].numpy()
                if repeat:
                    predict_times[name].append(time.perf_counter() - start)

    for name in models:
        rows[name] = {
            "train_reviews_per_s": round(
                len(x) / statistics.median(train_times[name]), 1),
            "predict_reviews_per_s": round(
                len(texts) / statistics.median(predict_times[name]), 1),
        }
    ratios = {key: round(rows["nlpseq"][key] / rows["keras"][key], 3)
              for key in rows["nlpseq"]}
    print(f"sentiment model: embedding 64 -> LSTM 64 -> max pooling -> "
          f"dense; {len(x)} training reviews (batch {config['batch_size']}),"
          f" {len(texts)} validation reviews served in batches of "
          f"{args.batch}; median of {args.repeats}")
    print(f"{'':<26}{'nlpseq':>10}{'keras LSTM':>12}{'ratio':>8}")
    for key, label in (("train_reviews_per_s", "train (reviews/s)"),
                       ("predict_reviews_per_s", "predict (reviews/s)")):
        print(f"{label:<26}{rows['nlpseq'][key]:>10.0f}"
              f"{rows['keras'][key]:>12.0f}{ratios[key]:>8.2f}")
    write_result("sentiment", args, rows=rows, ratios=ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
