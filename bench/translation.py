"""Translation throughput of the translation pipeline's exported SavedModel.

Exports a trained model (``--model-dir``, by default the Multi30k de-en
model of ``apps/configs/translation_multi30k.toml``) and translates the
Multi30k validation sentences in requests of ``--batch`` sentences through
the ``translate`` signature, greedy (beam width 1) and with beam search
(width 5): tokenization, encoder, decoder loop and detokenization all run
in the SavedModel. Prints sentences/s (median of ``--repeats``) and writes
``bench/results/translation.json``.

A decoder's speed depends on its weights (a trained model stops at the end
token, an untrained one runs to the longest length), so the model must be
trained. Without the model folder, a model of the built-in sample is
trained first (about a minute) and its sentences are translated instead.

With ``--exports A B ...`` (SavedModel folders, e.g. one exported by an
earlier version and one by this one from the same model), it serves those
as they are, on the Multi30k validation sentences, and prints each one's
sentences/s greedy and at beam 5, its ratio to the first, and whether its
translations equal the first's.

    python bench/translation.py
    python bench/translation.py --model-dir saved_models/multi30k-de-en
    python bench/translation.py --exports old_export/1 new_export/1
"""

import argparse
import sys
import tempfile
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import tensorflow as tf  # noqa: E402
from _results import items_per_second, write_result  # noqa: E402

from nlpseq.registry import APPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "datasets" / "multi30k"
MODEL = ROOT / "saved_models" / "multi30k-de-en"


def _pipeline(args, folder):
    cls = APPS.get("translation")
    if Path(args.model_dir).is_dir() and (DATA / "val.de").is_file():
        pipeline = cls.load(args.model_dir)
        c = pipeline.config
        data = pipeline.read_data(str(DATA / "val.{lang}"), "evaluate")
        return pipeline, data.sources, (
            f"{args.model_dir} ({c['source_lang']}->{c['target_lang']}), "
            f"Multi30k validation")
    print(f"{args.model_dir} or the Multi30k data not found: training a "
          "model of the built-in sample first")
    config = cls.effective_config({"epochs": 5, "learning_rate": 0.003})
    cls.train(config, Path(folder) / "sample", echo=lambda *_: None,
              verbose=0)
    pipeline = cls.load(Path(folder) / "sample")
    data = pipeline.read_data(str(cls.default_data), "evaluate")
    return pipeline, data.sources[:1000], "built-in sample model"


def compare(args):
    """``--exports``: SavedModel folders served as they are."""
    source = DATA / f"val.{args.source_lang}"
    if not source.is_file():
        print(f"skipped: the Multi30k data is not in {DATA}")
        return 0
    sentences = source.read_text(encoding="utf-8").splitlines()
    requests = [tf.constant(sentences[i:i + args.batch])
                for i in range(0, len(sentences), args.batch)]
    first = args.exports[0]
    rows, outputs = {}, {}
    for name in args.exports:
        translate = tf.saved_model.load(name).signatures["translate"]
        for decoding, width in (("greedy", 1), ("beam 5", 5)):
            def run(width=width, translate=translate):
                return [t for request in requests for t in translate(
                    text=request, beam_width=tf.constant(width),
                    length_penalty=tf.constant(1.0),
                    n_best=tf.constant(1))["translations"].numpy()[:, 0]]

            outputs[name, decoding] = run()
            rows[f"{name}: {decoding}"] = items_per_second(
                len(sentences), run, args.repeats)
    print(f"{len(sentences)} Multi30k validation sentences in requests of "
          f"{args.batch}; median of {args.repeats}")
    print(f"{'SavedModel: decoding':<52}{'sentences/s':>12}{'ratio':>8}"
          "  translations")
    for name in args.exports:
        for decoding in ("greedy", "beam 5"):
            key = f"{name}: {decoding}"
            same = ("same" if outputs[name, decoding]
                    == outputs[first, decoding] else "differ")
            print(f"{key:<52}{rows[key]:>12.0f}"
                  f"{rows[key] / rows[f'{first}: {decoding}']:>8.2f}  {same}")
    write_result("translation", args, sentences_per_s=rows)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(MODEL))
    parser.add_argument("--batch", type=int, default=64,
                        help="sentences per request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--exports", nargs="+", metavar="SAVEDMODEL",
                        help="SavedModel folders to compare as they are")
    parser.add_argument("--source-lang", default="de",
                        help="with --exports: the side of Multi30k to read")
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "translation.json"))
    args = parser.parse_args(argv)
    if args.exports:
        return compare(args)

    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        pipeline, sentences, described = _pipeline(args, folder)
        path = pipeline.export(Path(folder) / "export", 1)
        translate = tf.saved_model.load(str(path)).signatures["translate"]
        requests = [tf.constant(sentences[i:i + args.batch])
                    for i in range(0, len(sentences), args.batch)]
        for name, width in (("greedy", 1), ("beam 5", 5)):
            def run(width=width):
                for request in requests:
                    translate(text=request, beam_width=tf.constant(width),
                              length_penalty=tf.constant(1.0),
                              n_best=tf.constant(1))["translations"].numpy()

            rows[name] = items_per_second(len(sentences), run, args.repeats)

    print(f"Translation SavedModel, {described}: {len(sentences)} sentences "
          f"in requests of {args.batch}; median of {args.repeats}")
    print(f"{'decoding':<20}{'sentences/s':>12}")
    for name, value in rows.items():
        print(f"{name:<20}{value:>12.0f}")
    write_result("translation", args, model=described,
                 sentences_per_s=rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
