"""``nlpseq <app> distill``: train a smaller classifier on a trained one's
probabilities (:mod:`nlpseq.distillation`), for the classifier apps, which
name it in their ``commands``."""

from __future__ import annotations

import click

from nlpseq.cli.commands import HELP, run_training, training_options


def distill_command(cls):
    """The ``distill`` command of ``cls`` (a classifier task class)."""
    name = cls.name

    def distill(teacher, unlabelled, config_file, model_dir, resume,
                overwrite, **flags):
        from nlpseq.errors import NlpseqError

        if teacher is None and not resume:
            raise NlpseqError("distill: give the trained model to learn "
                              "from: --teacher MODEL_DIR")
        flags.update(teacher=teacher, unlabelled=unlabelled)
        run_training(cls, config_file, model_dir, resume, overwrite, flags)

    distill.__doc__ = (
        f"Train a {name} model on a trained one's probabilities "
        "(knowledge distillation).\n\nThe student takes the teacher's "
        "vocabulary, class names, n-gram model and, where not given, its "
        "settings and data; it learns the teacher's probabilities of the "
        "training texts and of --unlabelled ones, and keeps the epoch that "
        "does best on the labelled validation data. Give the settings "
        "that make it smaller (--no-bidirectional, --units, --max-length). "
        "The other options are train's. See docs/apps/sentiment.md.\n\n"
        "\b\nExamples:\n"
        f"    nlpseq {name} distill --teacher saved_models/{name} "
        "--no-bidirectional\n"
        f"    nlpseq {name} distill --teacher saved_models/{name} "
        f"--unlabelled unlabelled.txt --units 128 --model-dir "
        f"saved_models/{name}-small")
    # (not the folder a teacher is trained into by default; without the
    # options of --init-from, which a student cannot take)
    distill = training_options(
        cls, distill, suffix="-student",
        without=("init_from", "discriminative_lr", "unfreeze_every"))
    distill = click.option(
        "--unlabelled", metavar="SPEC", help="also learn the teacher's "
        "probabilities of these texts: a text file (one text a line, plain "
        "or .gz) or a table's text column")(distill)
    distill = click.option(
        "--teacher", metavar="MODEL_DIR", help="the trained model to learn "
        f"from (a {name} model folder)")(distill)
    return click.command("distill", context_settings=HELP)(distill)


__all__ = ["distill_command"]
