"""Speed of the next-word app against a reference built from Keras' LSTM.

In one process, on Penn Treebank text: the same language model (tied
embedding 200 -> 2 LSTM layers of 200 units -> logits over the vocabulary,
the ``apps/configs/next_word_ptb.toml`` sizes) is built with nlpseq's LSTM
and with ``keras.layers.LSTM``. It measures

- training throughput (tokens/s) of ``fit`` on 35-token windows, batch 64;
- generation speed (tokens/s) of nlpseq's in-graph generation, greedy and
  beam search (width 4), for one prompt and for a batch of 32 prompts,

prints the training ratio nlpseq / reference (above 1.0: nlpseq is faster)
and writes ``bench/results/next_word.json``.

With ``--models A B ...`` (trained model folders, e.g. a word model and a
subword one, or SavedModel folders exported earlier, served as they are),
it serves each one's export instead: ``serving_default`` (the 10 most
likely next words) for the first ``--prompts`` lines of ``--text`` (each
cut to its first 12 words), ``--batch`` prompts a request, in the same
run, and prints each one's prompts/s and its ratio to the first, and for
how many prompts each lists the first one's next words (with the largest
difference in their probabilities).

    python bench/next_word.py
    python bench/next_word.py --train-batches 40 --repeats 2
    python bench/next_word.py --models saved_models/imdb_lm saved_models/imdb_lm_sw \
        --text ../shared/datasets/imdb/unsup.txt.gz
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _results import (  # noqa: E402
    compare_models,
    items_per_second,
    write_result,
)

from nlpseq.registry import APPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "datasets" / "ptb"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--train-batches", type=int, default=60)
    parser.add_argument("--generate-length", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", metavar="MODEL_DIR",
                        help="trained next-word model folders to compare")
    parser.add_argument("--text", help="with --models: the text whose "
                        "lines are the prompts (default: ptb.valid.txt)")
    parser.add_argument("--prompts", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32,
                        help="with --models: prompts per request")
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "next_word.json"))
    args = parser.parse_args(argv)
    if args.models:
        return compare(args)
    data = Path(args.data)
    if not (data / "ptb.valid.txt").is_file():
        print(f"skipped: the Penn Treebank data is not in {data}")
        return 0

    cls = APPS.get("next-word")
    config = cls.effective_config(
        {}, ROOT / "apps" / "configs" / "next_word_ptb.toml")
    task = cls(config)
    corpus = task.read_data(str(data / "ptb.valid.txt"), "train")
    task.preprocessor = cls.preprocessor_class.fit(
        task.read_data(str(data / "ptb.train.txt.gz"), "train"), config)
    x, y = task.encode(corpus)
    batch = config["batch_size"]
    n = min(len(x) // batch, args.train_batches) * batch
    x, y = x[:n], y[:n]
    tokens = x.size

    models = {}
    for name, layer_class in (("nlpseq", None), ("keras", keras.layers.LSTM)):
        keras.utils.set_random_seed(0)
        model = task.build_model(layer_class=layer_class)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      jit_compile=False, **task.compile_arguments())
        models[name] = model
    train_times = {name: [] for name in models}
    for repeat in range(args.repeats + 1):  # the first is a warm-up
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0,
                      shuffle=False)
            if repeat:
                train_times[name].append(time.perf_counter() - start)
    rows = {name: {"train_tokens_per_s": round(
        tokens / statistics.median(times), 1)}
        for name, times in train_times.items()}
    ratio = round(rows["nlpseq"]["train_tokens_per_s"]
                  / rows["keras"]["train_tokens_per_s"], 3)

    task.model = models["nlpseq"]
    generation = {}
    prompts = [" ".join(line.split()[:5]) for line in corpus.lines[:32]]
    for strategy in ("greedy", "beam"):
        for count in (1, 32):
            texts = tf.constant(prompts[:count])
            function = task.graph_function("generate")

            def generate():
                return function(texts, np.int32(args.generate_length),
                                tf.constant(strategy), np.float32(1.0),
                                np.int32(0), np.int32(4),
                                np.int32(0)).numpy()

            generate()  # trace
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                generate()
                times.append(time.perf_counter() - start)
            generation[f"{strategy}_batch_{count}_tokens_per_s"] = round(
                count * args.generate_length / statistics.median(times), 1)

    print(f"next-word model: tied embedding {config['embedding_dim']} -> "
          f"{config['layers']} x LSTM {config['units']} -> "
          f"{task.preprocessor.encoder.vocabulary_size} logits; {tokens} training "
          f"tokens in windows of {config['sequence_length']}, batch {batch};"
          f" median of {args.repeats}")
    print(f"{'':<26}{'nlpseq':>10}{'keras LSTM':>12}{'ratio':>8}")
    print(f"{'train (tokens/s)':<26}"
          f"{rows['nlpseq']['train_tokens_per_s']:>10.0f}"
          f"{rows['keras']['train_tokens_per_s']:>12.0f}{ratio:>8.2f}")
    for key, value in generation.items():
        label = key.replace("_tokens_per_s", "").replace("_", " ")
        print(f"generate {label:<17}{value:>10.0f} tokens/s")
    write_result("next_word", args, rows=rows, train_ratio=ratio,
                 generation=generation)
    return 0


def compare(args):
    """``--models``: each model's ``serving_default`` on the same prompts."""
    from nlpseq.data.corpus import read_corpus

    text = args.text or str(Path(args.data) / "ptb.valid.txt")
    lines = [line for line in read_corpus(text).lines if line.split()]
    prompts = [" ".join(line.split()[:12]) for line in lines[:args.prompts]]
    requests = [tf.constant(prompts[i:i + args.batch])
                for i in range(0, len(prompts), args.batch)]
    outputs = []

    def rate(serve):
        def run():
            for request in requests:
                serve(text=request)["tokens"].numpy()

        speed = items_per_second(len(prompts), run, args.repeats)
        served = [serve(text=request) for request in requests]
        outputs.append((np.concatenate([s["tokens"].numpy() for s in served]),
                        np.concatenate([s["probabilities"].numpy()
                                        for s in served])))
        return speed

    rows = compare_models(
        args.models, rate, "prompts/s",
        f"next-word SavedModels, serving_default: {len(prompts)} prompts "
        f"of {text} in requests of {args.batch}; median of {args.repeats}")
    agreement = {}
    words, probabilities = outputs[0]
    for name, (other_words, other_probabilities) in zip(args.models[1:],
                                                        outputs[1:]):
        same = int(np.all(other_words == words, axis=1).sum())
        largest = float(np.max(np.abs(other_probabilities - probabilities)))
        agreement[name] = {"same_words": same, "largest_difference": largest}
        print(f"{name}: the first model's next words for {same} of "
              f"{len(prompts)} prompts; probabilities within {largest:.2g}")
    write_result("next_word", args, prompts_per_s=rows, agreement=agreement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
