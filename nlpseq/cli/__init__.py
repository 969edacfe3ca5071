"""The ``nlpseq`` command line.

Commands are thin: parse the arguments, call one library function, print the
result. Errors in user input (:class:`nlpseq.errors.NlpseqError`, or a
``ValueError`` from the layers) become one ``Error: ...`` line and exit
status 1, without a traceback. TensorFlow is imported only by the commands
that need it, so ``--help`` and ``--version`` answer at once.
"""

import difflib
import errno
import logging
import os
import platform
import sys

import click

import nlpseq
from nlpseq.errors import NlpseqError
from nlpseq.registry import APPS, CELLS
from nlpseq.runtime import import_tensorflow

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class AppGroup(click.Group):
    """The top-level group: built-in commands plus one group per app.

    App groups come from :data:`nlpseq.registry.APPS`, so an app is added to
    the command line by registering it, never by editing this file.
    """

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(APPS.names()))

    def get_command(self, ctx, name):
        from nlpseq.cli.commands import build_command_group

        command = super().get_command(ctx, name)
        if command is None and name in APPS:
            command = build_command_group(APPS.get(name))
        return command

    def format_commands(self, ctx, formatter):
        # (each command's whole first sentence, wrapped: Click cuts it at
        # the terminal's width otherwise)
        rows = [(name, command.get_short_help_str(limit=300))
                for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None
                and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        # (Click suggests from its own commands only; the apps are
        # registered, so a misspelt app gets its suggestion here)
        name = args[0] if args else ""
        if name and not name.startswith("-") and \
                self.get_command(ctx, name) is None:
            matches = difflib.get_close_matches(name,
                                                self.list_commands(ctx))
            if matches:
                ctx.fail(f"No such command {name!r}. Did you mean "
                         f"{matches[0]!r}?")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        handler = EchoHandler()
        logger = logging.getLogger("nlpseq")
        logger.addHandler(handler)
        level = logger.level
        logger.setLevel(logging.INFO)
        try:
            return super().invoke(ctx)
        except NlpseqError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise
            # (a full disk under the output or a file being written;
            # standard output is dropped so that Python's own flush at
            # exit does not fail again)
            _drop_stdout()
            raise click.ClickException(
                f"{error.filename or 'writing the output'}: "
                f"{error.strerror}") from None
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)


class EchoHandler(logging.Handler):
    """Prints the library's progress (``nlpseq`` logger): information on
    standard output, warnings on standard error as ``warning: ...``.
    Records marked ``progress`` (``extra={"progress": True}``) go to
    standard error, and only when it is a terminal, and those marked
    ``stderr`` go to standard error, so that the output of a command stays
    what it documents."""

    def emit(self, record):
        message = self.format(record)
        if getattr(record, "progress", False):
            if _stderr_is_terminal():
                click.echo(message, err=True)
        elif getattr(record, "stderr", False):
            click.echo(message, err=True)
        elif record.levelno >= logging.WARNING:
            click.echo(f"warning: {message}", err=True)
        else:
            click.echo(message)


@click.group(cls=AppGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(nlpseq.__version__, "--version", prog_name="nlpseq")
def cli():
    """nlpseq: recurrent-network NLP on Keras 3 / TensorFlow.

    Textbook RNN, LSTM and GRU layers, and application pipelines driven
    through their life cycle: train, evaluate, predict, export.

    \b
    Example:
        nlpseq info
    """


@cli.command()
def info():
    """Versions, devices, and the registered apps and cells.

    \b
    Example:
        nlpseq info
    """
    tf = import_tensorflow()
    import keras

    devices = tf.config.list_physical_devices()
    lines = [
        f"nlpseq      {nlpseq.__version__}",
        f"python      {platform.python_version()} ({sys.executable})",
        f"tensorflow  {tf.__version__}",
        f"keras       {keras.__version__} (backend: {keras.backend.backend()})",
        "devices     " + (", ".join(
            f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in devices)
            or "none"),
        "apps        " + (", ".join(APPS.names()) or "none registered"),
        "cells",
    ]
    lines += [f"  {name:<8}  {CELLS.describe(name)}" for name in CELLS.names()]
    click.echo("\n".join(lines))


def _register_commands():
    from nlpseq.cli.lab import lab
    from nlpseq.cli.serve import serve

    cli.add_command(lab)
    cli.add_command(serve)


_register_commands()


def _drop_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _stderr_is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="nlpseq")


if __name__ == "__main__":  # pragma: no cover
    main()
