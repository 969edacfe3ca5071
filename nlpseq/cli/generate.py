"""``nlpseq <app> generate``: text that continues a prompt, for the apps of
the language-model family (:mod:`nlpseq.tasks.language_model`), which
names it in its ``commands``."""

from __future__ import annotations

import click

from nlpseq.cli.commands import (
    HELP,
    check_options,
    load,
    model_dir_option,
    setting_option,
)


def generate_command(cls):
    """The ``generate`` command of ``cls`` (a language-model task class):
    its options are ``cls.generate_settings``."""
    settings = cls.generate_settings

    def generate(model_dir, **flags):
        options = check_options(settings, flags)
        task = load(cls, model_dir)
        text, _ = task.generate(**options)
        prompt = options["prompt"]
        glue = "" if task.level == "char" or not prompt else " "
        click.echo(prompt + glue + text)

    generate.__doc__ = (
        "Generate text that continues a prompt.\n\n\b\nExamples:\n"
        f"    nlpseq {cls.name} generate --prompt \"on sunday i want\"\n"
        f"    nlpseq {cls.name} generate --prompt \"the\" --strategy "
        "sample --temperature 0.8 --top-k 40 --seed 1")
    for setting in reversed(settings):
        generate = setting_option(setting)(generate)
    generate = model_dir_option(cls)(generate)
    return click.command("generate", context_settings=HELP)(generate)


__all__ = ["generate_command"]
