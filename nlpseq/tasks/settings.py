"""The settings every task shares, declared once.

:data:`COMMON_SETTINGS` are the data, training-loop and reproducibility
settings of every app. :func:`encoder_settings` declares the recurrent
encoder's settings (cell, layers, units, bidirectional, embedding size,
dropout) with one meaning each: ``units`` is always the size of one
direction of one layer. A family or an app changes a default with
:func:`with_defaults`, never by declaring a setting again.

Example:
    >>> [s.name for s in encoder_settings(units=64)][:3]
    ['cell', 'bidirectional', 'layers']
"""

from __future__ import annotations

import dataclasses

from nlpseq.config import Setting
from nlpseq.registry import CELLS

#: Settings of every app: data, training loop, reproducibility.
COMMON_SETTINGS = (
    Setting("data", str, None, "training data SPEC (default: the built-in "
            "sample)"),
    Setting("valid", str, None, "validation data SPEC (default: the built-in "
            "sample's validation file with the built-in sample, else split "
            "off --valid-split of the training data)"),
    Setting("valid_split", float, 0.1, "fraction of the training data held "
            "out for validation when --valid is not given", minimum=0.0,
            maximum=0.9, exclusive_minimum=True),
    Setting("epochs", int, 10, "maximum number of epochs", minimum=1),
    Setting("batch_size", int, 32, "examples per batch", minimum=1),
    Setting("learning_rate", float, 1e-3, "Adam learning rate", minimum=0.0,
            exclusive_minimum=True),
    Setting("lr_decay", float, 1.0, "multiply the learning rate by X at "
            "each epoch after --lr-decay-after (1: constant)", minimum=0.0,
            maximum=1.0, exclusive_minimum=True),
    Setting("lr_decay_after", int, 0, "epochs at the full learning rate "
            "before --lr-decay applies", minimum=0),
    Setting("weight_average", float, 0.0, "validate and keep a moving "
            "average of the weights with this momentum (e.g. 0.99); training "
            "goes on from the raw weights (0: off)",
            minimum=0.0, maximum=0.9999),
    Setting("average_last", int, None, "end on the mean of the weights of "
            "the last N epochs up to the kept one (checkpoint averaging; at "
            "least 2)", minimum=2),
    Setting("clip_norm", float, 5.0, "clip gradients to this global norm (0: "
            "no clipping)", minimum=0.0),
    Setting("patience", int, 2, "stop after this many epochs without a "
            "better validation loss (or --monitor metric; 0: never stop "
            "early)", minimum=0),
    Setting("keep", str, "best", "the weights the model keeps: those of the "
            "epoch with the lowest validation loss (or best --monitor "
            "metric), or of the last epoch",
            choices=("best", "last")),
    Setting("seed", int, 0, "random seed (data order, initial weights, "
            "dropout)", minimum=0),
    Setting("distribute", str, "none", "train on one device, on every "
            "local device (mirrored), or as one worker of a job that "
            "TF_CONFIG describes (multi-worker)",
            choices=("none", "mirrored", "multi-worker")),
    Setting("devices", int, 0, "with --distribute mirrored: the devices to "
            "mirror over (0: every GPU, else the CPU); N > 0 without GPUs "
            "splits the CPU into N logical devices (at most 64)", minimum=0,
            maximum=64),
    Setting("precision", str, "float32", "the dtype policy: float32, or "
            "mixed precision (float16 or bfloat16 computations, float32 "
            "weights)", choices=("float32", "mixed_float16",
                                 "mixed_bfloat16")),
    Setting("jit_compile", bool, False, "compile the training step with "
            "XLA"),
)


def transfer_settings(groups=True, recipe=True):
    """``--init-from`` and the fine-tuning recipe's settings
    (:mod:`nlpseq.transfer`, :mod:`nlpseq.schedules`); ``groups``: with
    discriminative learning rates and gradual unfreezing (a model whose
    head starts fresh); ``recipe``: ULMFiT's recipe is the default with
    ``--init-from`` (else the family's own schedule, one rate for all
    layers, everything training from the start, unless asked)."""
    parts = (
        Setting("discriminative_lr", float, 2.6 if recipe else 1.0,
                "with --init-from: each layer group below the head (the "
                "recurrent layers from the top, then the embedding) learns "
                "X times slower than the group above (1: one rate for all)",
                minimum=1.0),
        Setting("unfreeze_every", float, 1.0 if recipe else 0.0,
                "with --init-from: gradual unfreezing: the layers that "
                "start fresh train alone for X epochs, then the next layer "
                "group down joins them, and so on (0: everything trains "
                "from the start)", minimum=0.0),
    ) if groups else ()
    return (
        Setting("init_from", str, None, "start from the trained next-word "
                "model in MODEL_DIR: its vocabulary and tokenization, its "
                "embedding and its recurrent layers"),
        Setting("lr_schedule", str, "auto" if recipe else "step",
                "how the learning rate moves: step (times --lr-decay each "
                "epoch after --lr-decay-after), slanted (up over the first "
                "--warmup of the steps, then down: the slanted triangular "
                "schedule), auto (slanted with --init-from, else step)",
                choices=("auto", "step", "slanted")),
        Setting("warmup", float, 0.1, "with the slanted schedule: the "
                "fraction of the training steps over which the learning "
                "rate rises", minimum=0.0, maximum=1.0),
        Setting("lr_ratio", float, 32.0, "with the slanted schedule: how "
                "many times the peak --learning-rate is above the lowest",
                minimum=1.0),
        *parts,
    )


def encoder_settings(cell="lstm", bidirectional=False, layers=1, units=64,
                     embedding_dim=64, dropout=0.3, bidirectional_help=None,
                     layers_help="stacked recurrent layers",
                     dropout_help="dropout rate"):
    """The recurrent encoder's settings with the given defaults.

    ``units`` is the size of one direction of one layer everywhere: a
    bidirectional layer of ``units`` 100 outputs 200 features.
    """
    return (
        Setting("cell", str, cell, "recurrent cell",
                choices=tuple(CELLS.names())),
        Setting("bidirectional", bool, bidirectional, bidirectional_help
                or "bidirectional recurrent layers"),
        Setting("layers", int, layers, layers_help, minimum=1),
        Setting("units", int, units, "units of each recurrent layer, per "
                "direction", minimum=1),
        Setting("embedding_dim", int, embedding_dim, "size of the word "
                "embeddings", minimum=1),
        Setting("dropout", float, dropout, dropout_help, minimum=0.0,
                maximum=0.95),
    )


def vocabulary_settings(vocab_size=20000, min_count=1, minimum_size=3):
    """The vocabulary's size settings."""
    return (
        Setting("vocab_size", int, vocab_size, "largest vocabulary (with the "
                "special entries)", minimum=minimum_size),
        Setting("min_count", int, min_count, "leave out tokens seen fewer "
                "times in the training data", minimum=1),
    )


#: The widest beam that prediction and generation take (the translator's
#: and the language model's ``beam_width``): a wider one would only fill
#: the memory.
MAX_BEAM_WIDTH = 256

#: The smallest ``subwords`` but 0 (whole words): a vocabulary of pieces
#: (:mod:`nlpseq.subwords`) starts from its text's characters.
MIN_SUBWORDS = 100


def subwords_setting(help):
    """``--subwords N``: read and write word pieces, a vocabulary of N
    learned from the training text (:mod:`nlpseq.subwords`); 0 (the
    default) is whole words. Checked by :func:`check_subwords`."""
    return Setting("subwords", int, 0, help, minimum=0)


def check_subwords(config):
    """``config`` with ``subwords`` 0 or at least :data:`MIN_SUBWORDS`.

    Raises:
        NlpseqError: a size between the two, naming where it was given.
    """
    from nlpseq.errors import NlpseqError

    if 0 < config["subwords"] < MIN_SUBWORDS:
        where = config.given.get("subwords", "--subwords")
        raise NlpseqError(
            f"{where}: subwords must be 0 (whole words) or >= "
            f"{MIN_SUBWORDS} (the pieces of a vocabulary), got "
            f"{config['subwords']}")
    return config


def monitor_setting(default, metrics):
    """``--monitor``: what picks the kept epoch and stops early, the
    validation loss or one of the family's validation ``metrics`` (names
    of its ``evaluate_data``'s results, higher is better)."""
    return Setting(
        "monitor", str, default, "what picks the kept epoch and stops "
        "early: the validation loss, or the task's own metric on the "
        "validation data, computed after each epoch (higher is better)",
        choices=("loss", *metrics))


def with_defaults(settings, **defaults):
    """``settings`` with some defaults changed (by name).

    Raises:
        ValueError: a name that is not among ``settings``.
    """
    names = {s.name for s in settings}
    unknown = sorted(set(defaults) - names)
    if unknown:
        raise ValueError(f"Unknown settings {unknown}; known: "
                         f"{sorted(names)}.")
    return tuple(dataclasses.replace(s, default=defaults[s.name])
                 if s.name in defaults else s for s in settings)


#: AWD-LSTM's regularizers (Merity et al. 2017; docs/apps/next-word.md),
#: all off by default; training only.
AWD_SETTINGS = (
    Setting("weight_drop", float, 0.0, "DropConnect on each recurrent "
            "kernel: this fraction of its entries zeroed, one mask per batch "
            "(AWD-LSTM's weight drop; e.g. 0.5)", minimum=0.0, maximum=0.95),
    Setting("locked_dropout", bool, False, "--dropout with one mask per "
            "sequence, the same at every step (variational dropout), after "
            "the embedding and each recurrent layer"),
    Setting("embedding_dropout", float, 0.0, "drop whole words: this "
            "fraction of the vocabulary reads zero embeddings for a batch "
            "(e.g. 0.1)", minimum=0.0, maximum=0.95),
    Setting("ar", float, 0.0, "activation regularization: add X times the "
            "mean square of the last layer's (dropped) outputs to the loss "
            "(e.g. 2)", minimum=0.0),
    Setting("tar", float, 0.0, "temporal activation regularization: add X "
            "times the mean square of the last layer's step-to-step change "
            "to the loss (e.g. 1)", minimum=0.0),
)


def without(settings, *names):
    """``settings`` less those named (a family that has no use for one)."""
    return tuple(s for s in settings if s.name not in names)
