"""``nlpseq <app> ensemble``: one SavedModel of several trained models that
decode as one, for the translation and language-model apps
(:mod:`nlpseq.tasks.ensemble`), which name it in their ``commands``."""

from __future__ import annotations

import click

from nlpseq.cli.commands import HELP, check_options, load, setting_option


def ensemble_command(cls):
    """The ``ensemble`` command of ``cls`` (a translation or language-model
    task class): the models, the export's base folder and version, and
    the family's export caps."""
    settings = cls.export_settings

    def ensemble(model_dirs, output, version, **flags):
        from nlpseq.errors import NlpseqError
        from nlpseq.tasks.ensemble import ensemble as make

        limits = check_options(settings, flags)
        if len(model_dirs) < 2:
            raise NlpseqError("ensemble: give at least two --model-dir "
                              "(the models to decode as one)")
        members = [load(cls, path) for path in model_dirs]
        task = make(members)
        path = task.export(output, version, **limits)
        names = ", ".join(task.serving_functions())
        click.echo(f"Exported {path} (an ensemble of {len(members)} "
                   f"models; signatures: {names})")

    ensemble.__doc__ = (
        "Export several trained models as one SavedModel that decodes with "
        "the mean of their log-probabilities (one beam search).\n\nThe "
        "models must share their vocabularies (train them on the same "
        "data, e.g. with other --seed values).\n\n\b\nExample:\n"
        f"    nlpseq {cls.name} ensemble --model-dir saved_models/a "
        "--model-dir saved_models/b \\\n"
        f"        --output saved_models/{cls.name}-ensemble/export")
    for setting in reversed(settings):
        ensemble = setting_option(setting)(ensemble)
    ensemble = click.option(
        "--version", type=click.IntRange(min=1),
        help="version number [default: next free]")(ensemble)
    ensemble = click.option(
        "--output", type=click.Path(file_okay=False), required=True,
        help="the base folder of the export's versions")(ensemble)
    ensemble = click.option(
        "--model-dir", "model_dirs", multiple=True, required=True,
        type=click.Path(file_okay=False),
        help="a trained model (repeat: two or more)")(ensemble)
    return click.command("ensemble", context_settings=HELP)(ensemble)


__all__ = ["ensemble_command"]
