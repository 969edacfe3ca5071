"""What every benchmark writes: its figures with the versions, the machine
and the options that produced them, as ``bench/results/<name>.json``."""

import json
import os
import platform
from pathlib import Path

import keras
import tensorflow as tf

import nlpseq


def write_result(name, args, **figures):
    """Write ``args.output`` (JSON) and say so."""
    result = {
        "benchmark": name,
        "nlpseq": nlpseq.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpu",
        "config": {k: v for k, v in vars(args).items() if k != "output"},
        **figures,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
