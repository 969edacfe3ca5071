"""The data of the tagger's pretraining measurements (docs/apps/ner.md):

- ``text``: unlabelled, cased text for the character language models, one
  line each: the CoNLL-2003 training sentences (their tokens joined by
  spaces; tags are not read), then IMDB's unlabelled reviews (``<br />``
  tags read as line ends) until ``--chars`` characters in all;
- ``subset``: a seeded ``--fraction`` of the CoNLL-2003 training sentences
  (the "small data" run), as a CoNLL file.

    python bench/ner_data.py text --chars 12000000 --output charlm.txt.gz
    python bench/ner_data.py subset --fraction 0.1 --seed 0 \\
        --output conll_10.txt
"""

import argparse
import gzip
import random
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


def sentences(path):
    """The CoNLL file's sentences, each a list of its lines (document
    markers left out)."""
    block = []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("-DOCSTART-"):
                if block:
                    yield block
                block = []
            else:
                block.append(line)
    if block:
        yield block


def write_text(args):
    written = 0
    with gzip.open(args.output, "wt", encoding="utf-8") as out:
        for block in sentences(args.conll):
            line = " ".join(row.split()[0] for row in block)
            out.write(line + "\n")
            written += len(line) + 1
        with gzip.open(args.unlabelled, "rt", encoding="utf-8") as handle:
            for review in handle:
                for line in re.split(r"<br\s*/?>", review.strip()):
                    line = " ".join(line.split())
                    if not line:
                        continue
                    if written >= args.chars:
                        break
                    out.write(line + "\n")
                    written += len(line) + 1
                if written >= args.chars:
                    break
    print(f"wrote {args.output}: {written:,} characters")


def write_subset(args):
    blocks = list(sentences(args.conll))
    count = round(len(blocks) * args.fraction)
    chosen = sorted(random.Random(args.seed).sample(range(len(blocks)),
                                                    count))
    with open(args.output, "w", encoding="utf-8") as out:
        for index in chosen:
            out.write("\n".join(blocks[index]) + "\n\n")
    print(f"wrote {args.output}: {count:,} of {len(blocks):,} sentences "
          f"(seed {args.seed})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("text", "subset"))
    parser.add_argument("--conll", default=str(
        DATA / "conll2003" / "train.txt.gz"))
    parser.add_argument("--unlabelled", default=str(
        DATA / "imdb" / "unsup.txt.gz"))
    parser.add_argument("--chars", type=int, default=12_000_000)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    if not Path(args.conll).is_file():
        print(f"skipped: no CoNLL-2003 training file at {args.conll}")
        return 0
    (write_text if args.what == "text" else write_subset)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
