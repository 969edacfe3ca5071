"""Tagging throughput of the NER app's exported SavedModel.

Builds the ``apps/configs/ner_conll2003.toml`` model (character BiLSTM,
word BiLSTM 100, CRF) with the CoNLL-2003 training vocabulary, exports it,
and serves the 3,250 validation sentences (testa) in requests of
``--batch`` sentences through both signatures: ``tokens`` (pre-tokenized)
and ``serving_default`` (raw text, tokenized in the graph). Prints
sentences/s (median of ``--repeats``) and writes ``bench/results/ner.json``.
The weights do not change the speed, so the model is not trained here.

With ``--models A B ...`` (trained model folders, e.g. the tagger without
and with ``--char-lm``, or SavedModel folders exported earlier, served as
they are), it serves each one's export instead, through
``serving_default`` (raw text), in the same run, and prints each one's
sentences/s and its ratio to the first.

    python bench/ner.py
    python bench/ner.py --batch 64 --repeats 2
    python bench/ner.py --models saved_models/conll saved_models/conll-charlm
"""

import argparse
import sys
import tempfile
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _results import (  # noqa: E402
    compare_models,
    items_per_second,
    write_result,
)

from nlpseq.registry import APPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "datasets" / "conll2003"


def sentences_per_second(serve, key, requests, count, repeats):
    """``serve``'s sentences/s over ``requests``, each given as ``key``
    (median of ``repeats`` passes)."""
    def run():
        for request in requests:
            serve(**{key: request})["tags"].numpy()

    return items_per_second(count, run, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--batch", type=int, default=256,
                        help="sentences per request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="+", metavar="MODEL_DIR",
                        help="trained NER model folders to compare")
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "ner.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "valid.txt").is_file():
        print(f"skipped: the CoNLL-2003 data is not in {data}")
        return 0

    if args.models:
        return compare(args, data)
    cls = APPS.get("ner")
    config = cls.effective_config(
        {}, ROOT / "apps" / "configs" / "ner_conll2003.toml")
    task = cls(config)
    task.preprocessor = cls.preprocessor_class.fit(
        task.read_data(str(data / "train.txt.gz"), "train"), config)
    valid = task.read_data(str(data / "valid.txt"), "valid")
    keras.utils.set_random_seed(0)
    task.model = task.build_model()
    sentences = valid.tokens
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        path = task.export(Path(folder), 1)
        served = tf.saved_model.load(str(path))
        by_tokens = served.signatures["tokens"]
        by_text = served.signatures["serving_default"]
        token_requests, text_requests = [], []
        for start in range(0, len(sentences), args.batch):
            block = sentences[start:start + args.batch]
            width = max(len(s) for s in block)
            token_requests.append(tf.constant(
                [s + [""] * (width - len(s)) for s in block]))
            text_requests.append(tf.constant([" ".join(s) for s in block]))
        for name, serve, requests, key in (
                ("tokens", by_tokens, token_requests, "tokens"),
                ("text", by_text, text_requests, "text")):
            rows[name] = sentences_per_second(serve, key, requests,
                                              len(sentences), args.repeats)

    print(f"NER SavedModel ({config['char_features']} characters, "
          f"BiLSTM {config['units']}, CRF): {len(sentences)} validation "
          f"sentences in requests of {args.batch}; median of {args.repeats}")
    print(f"{'signature':<20}{'sentences/s':>12}")
    for name, value in rows.items():
        print(f"{name:<20}{value:>12.0f}")
    write_result("ner", args, sentences_per_s=rows)
    return 0


def compare(args, data):
    """``--models``: each model's export through ``serving_default``; a
    SavedModel folder (one with ``saved_model.pb``, e.g. written by an
    earlier version) is served as it is."""
    from nlpseq.data.conll import read_conll

    sentences = read_conll(str(data / "valid.txt")).tokens
    requests = [tf.constant([" ".join(s) for s in sentences[i:i + args.batch]])
                for i in range(0, len(sentences), args.batch)]
    rows = compare_models(
        args.models, lambda serve: sentences_per_second(
            serve, "text", requests, len(sentences), args.repeats),
        "sentences/s",
        f"NER SavedModels, serving_default: {len(sentences)} validation "
        f"sentences in requests of {args.batch}; median of {args.repeats}")
    write_result("ner", args, sentences_per_s=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
