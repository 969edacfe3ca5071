"""``nlpseq <app> cascade``: let a classifier's n-gram model decide alone
where it is sure (:mod:`nlpseq.cascade`), for the classifier apps, which
name it in their ``commands``."""

from __future__ import annotations

import click

from nlpseq.apps import data_spec
from nlpseq.cli.commands import HELP, load, model_dir_option


def _percent(value):
    return f"{100 * value:.2f} %"


def cascade_command(cls):
    """The ``cascade`` command of ``cls`` (a classifier task class)."""
    name = cls.name

    def cascade(model_dir, data, tolerance, off):
        from nlpseq.errors import NlpseqError
        from nlpseq.report import report_data

        if off and (data is not None or tolerance is not None):
            raise NlpseqError("cascade: --off takes no --data or "
                              "--tolerance (it removes the cascade)")
        task = load(cls, model_dir)
        if off:
            task.set_cascade(None)
            task.save_cascade()
            click.echo(f"{model_dir}: no cascade; the whole model runs for "
                       "every text (exports from now on)")
            return
        found, described = report_data(task, data_spec(data))
        if found is None:
            raise NlpseqError(f"cascade: {described}")
        chosen = task.choose_cascade(found, tolerance, described)
        task.save_cascade()
        click.echo(
            f"{model_dir}: the n-gram model decides alone where its margin "
            f"is above {chosen['threshold']:.4f}: "
            f"{_percent(chosen['decided_alone'])} of {chosen['texts']:,} "
            f"texts of {described}. Accuracy there "
            f"{_percent(chosen['accuracy'])}, the whole model's "
            f"{_percent(chosen['full_accuracy'])} (tolerance "
            f"{chosen['tolerance']:g} point). Predictions, reports and "
            f"exports from now on use it (nlpseq {name} export).")

    cascade.__doc__ = (
        "Let the n-gram model decide alone where it is sure, and run the "
        "recurrent network only for the other texts.\n\nChooses, on "
        "labelled data (by default the validation data the model was "
        "trained with), the n-gram model's margin above which it decides "
        "alone, the lowest that keeps the accuracy within --tolerance "
        "points of the whole model's, and saves it in the model folder. "
        "The model needs an n-gram model (trained with --ngram-buckets N). "
        "See docs/apps/sentiment.md.\n\n\b\nExamples:\n"
        f"    nlpseq {name} cascade --model-dir saved_models/{name}\n"
        f"    nlpseq {name} cascade --model-dir saved_models/{name} "
        "--data valid.csv --tolerance 0.2\n"
        f"    nlpseq {name} cascade --model-dir saved_models/{name} --off")
    cascade = click.option(
        "--off", is_flag=True,
        help="remove the cascade: the whole model runs for every "
             "text")(cascade)
    cascade = click.option(
        "--tolerance", type=click.FloatRange(min=0.0, max=100.0),
        metavar="POINTS", help="accuracy points the cascade may lose on the "
        "data [default: 0.1]")(cascade)
    cascade = click.option(
        "--data", metavar="SPEC", help="labelled data to choose the "
        "threshold on [default: the validation data the model was trained "
        "with]")(cascade)
    cascade = model_dir_option(cls)(cascade)
    return click.command("cascade", context_settings=HELP)(cascade)


__all__ = ["cascade_command"]
