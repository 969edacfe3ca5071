"""``nlpseq <app> train|evaluate|predict|export|report``, from a task class.

Each command parses its options, calls one library function
(:meth:`Task.train`, :meth:`Task.load` and then ``evaluate``,
``predict_stream`` or ``export``) and prints the result. The options of
``train`` come from the task's settings, so a setting is declared once and
is a flag, a config-file entry and a Python API keyword at the same time.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import click

from nlpseq.apps import config_path, configs, data_spec, samples
from nlpseq.config import merge
from nlpseq.exporters import check_format, check_limits, format_names
from nlpseq.folder import strict_json
from nlpseq.log import LOG
from nlpseq.registry import EXPORTERS, Registry

HELP = {"help_option_names": ["-h", "--help"]}
#: The commands a family adds to ``nlpseq <app>`` (the names in its
#: :attr:`~nlpseq.tasks.base.Task.commands`): a function of the task class
#: that returns the Click command.
FAMILY_COMMANDS = Registry("command", {
    "generate": "nlpseq.cli.generate:generate_command",
    "ensemble": "nlpseq.cli.ensemble:ensemble_command",
    "cascade": "nlpseq.cli.cascade:cascade_command",
    "distill": "nlpseq.cli.distill:distill_command",
})


def setting_option(setting):
    """A Click option for a :class:`~nlpseq.config.Setting` (default: not
    given, so config files and defaults can fill it)."""
    if setting.type is bool:
        flag = setting.name.replace("_", "-")
        default = ("" if setting.default is None else
                   f" [default: {'yes' if setting.default else 'no'}]")
        return click.option(f"--{flag}/--no-{flag}", setting.name,
                            default=None, help=setting.help + default)
    if setting.multiple:
        # (repeatable; its values as one comma-separated string, which the
        # setting splits; not given: None)
        return click.option(
            setting.option, setting.name, multiple=True, metavar="TEXT",
            callback=lambda context, parameter, value: ",".join(value)
            or None, help=setting.help + " (repeat the option for more)")
    kind = (click.Choice(setting.choices) if setting.choices
            else {int: int, float: float, str: str}[setting.type])
    default = "" if setting.default is None else \
        f" [default: {setting.default}]"
    metavar = {int: "N", float: "X"}.get(setting.type, "TEXT")
    if setting.name in ("data", "valid"):
        metavar = "SPEC"
    return click.option(setting.option, setting.name, type=kind,
                        default=None, metavar=None if setting.choices
                        else metavar, help=setting.help + default)


def model_dir_option(cls, suffix=""):
    """``--model-dir``, defaulting to ``saved_models/<app><suffix>``."""
    return click.option(
        "--model-dir", type=click.Path(file_okay=False),
        default=f"saved_models/{cls.name}{suffix}", show_default=True,
        help="the model folder")


def load(cls, model_dir):
    """The task in ``model_dir``, TensorFlow started quietly first (a
    missing folder is refused before, saying how to make one)."""
    from nlpseq.errors import NlpseqError
    from nlpseq.runtime import import_tensorflow

    if not os.path.lexists(model_dir):
        raise NlpseqError(f"Model folder not found: {model_dir}; train one "
                          f"first: nlpseq {cls.name} train --model-dir "
                          f"{model_dir}")
    import_tensorflow()
    return cls.load(model_dir)


def check_options(settings, values):
    """Command options: ``None`` (not given) becomes the default, and each
    value is checked against its :class:`~nlpseq.config.Setting`."""
    return merge(settings, None, values, source="options")


def spec_help(cls):
    return (f"A data SPEC is {cls.data_help}. Files may be gzipped "
            f"(.gz). sample:NAME names a packaged sample ({', '.join(samples())}).")


def build_command_group(cls):
    """``nlpseq <app>`` with train / evaluate / predict / export /
    report."""
    name = cls.name
    default_dir = f"saved_models/{name}"

    @click.group(name=name, help=(cls.__doc__ or name).split("\n\n")[0],
                 context_settings=HELP)
    def group():
        pass

    # train ---------------------------------------------------------------
    def train(config_file, model_dir, resume, overwrite, **flags):
        run_training(cls, config_file, model_dir, resume, overwrite, flags)

    train.__doc__ = (
        f"Train a {name} model and save it in a model folder.\n\n"
        f"Settings come from the flags, then --config FILE (TOML or YAML), "
        f"then the defaults. Without --data it trains on the built-in "
        f"sample. {spec_help(cls)}\n\n\b\nExamples:\n    nlpseq {name} "
        f"train\n    nlpseq {name} train --data {cls.data_example} "
        f"--epochs 5 --model-dir saved_models/my-{name}")
    group.command("train")(training_options(cls, train))

    # evaluate --------------------------------------------------------------
    @group.command("evaluate")
    @model_dir_option(cls)
    @click.option("--data", metavar="SPEC",
                  help="labelled data to evaluate on [default: the built-in "
                       "validation sample]")
    @click.option("--json", "as_json", is_flag=True,
                  help="print the metrics as JSON")
    def evaluate(model_dir, data, as_json, **options):
        if data is None and cls.default_valid is None:
            raise click.UsageError("give the data to evaluate on: --data")
        data = data_spec(data) or str(cls.default_valid)
        options = {k: v for k, v in options.items() if v is not None}
        check_options(cls.predict_settings, options)  # (before loading)
        task = load(cls, model_dir)
        metrics = task.evaluate(data, **options)
        click.echo(strict_json(metrics, indent=2) if as_json
                   else task.format_metrics(metrics))

    evaluate.help = (
        f"Evaluate a saved {name} model on held-out data.\n\n"
        f"{spec_help(cls)}\n\n\b\nExample:\n    nlpseq {name} evaluate "
        f"--model-dir {default_dir} --data "
        f"{cls.data_example.replace('train', 'valid')}")
    for setting in cls.predict_settings:
        if setting.name in cls.evaluate_options:
            evaluate = setting_option(setting)(evaluate)

    # predict ---------------------------------------------------------------
    @group.command("predict")
    @model_dir_option(cls)
    @click.argument("texts", nargs=-1)
    @click.option("--input", "input_file", type=click.Path(dir_okay=False,
                                                           allow_dash=True),
                  help="one input per line (plain or .gz; - for stdin)")
    @click.option("--format", "output_format",
                  type=click.Choice(cls.output_formats),
                  default="text", show_default=True, help="output format")
    def predict(model_dir, texts, input_file, output_format, **options):
        from nlpseq.data._files import iter_lines

        options = check_options(cls.predict_settings, options)
        if texts and input_file:
            raise click.UsageError("give TEXT arguments or --input, not both")
        task = load(cls, model_dir)
        if texts:
            lines = iter(texts)
        else:
            if input_file in (None, "-") and sys.stdin.isatty():
                click.echo("Reading one input per line from standard input; "
                           "end with Ctrl-D (or give TEXT arguments or "
                           "--input FILE).", err=True)
            lines = iter_lines(input_file or "-", input_file or "<stdin>")
        task.options.update(options)
        records = task.predict_stream(lines)
        count = write_records(records, output_format,
                              lambda r: task.format_record(r, output_format))
        if input_file and input_file != "-":
            LOG.info("Predicted %s inputs from %s", f"{count:,}",
                     input_file, extra={"progress": True})

    predict.help = (
        f"Predict with a saved {name} model.\n\nInputs are the TEXT "
        f"arguments, or one per line from --input FILE or standard input.\n\n"
        f"\b\nExamples:\n    nlpseq {name} predict \"{cls.predict_example}\"\n"
        f"    nlpseq {name} predict --input inputs.txt --format jsonl")
    for setting in cls.predict_settings:
        predict = setting_option(setting)(predict)

    # export ------------------------------------------------------------------
    @group.command("export")
    @model_dir_option(cls)
    @click.option("--output", type=click.Path(file_okay=False),
                  help="base folder [default: <model-dir>/export]")
    @click.option("--version", type=click.IntRange(min=1),
                  help="version number [default: next free]")
    @click.option("--format", "export_format",
                  type=click.Choice(format_names()),
                  default="savedmodel", show_default=True,
                  help=" or ".join(EXPORTERS.get(name).help
                                   for name in format_names()))
    def export(model_dir, output, version, export_format, **limits):
        exporter = check_format(export_format)  # (before loading the model)
        check_limits(cls, exporter, limits)
        task = load(cls, model_dir)
        path = task.export(output, version, format=export_format, **limits)
        click.echo(exporter.describe(task, path))

    export.help = (
        f"Export a saved {name} model as a TensorFlow Serving SavedModel "
        f"(<output>/<version>/saved_model.pb), taking raw strings; or, with "
        f"--format onnx, as <output>/<version>/model.onnx (token ids in) "
        f"beside preprocessor.json (see docs/onnx.md)."
        + (" The SavedModel refuses a request that asks for more work than "
           "the --max-... options allow (see docs/serving.md)."
           if cls.export_settings else "") + "\n\n\b\n"
        f"Examples:\n    nlpseq {name} export --model-dir {default_dir}\n"
        f"    nlpseq {name} export --model-dir {default_dir} --format onnx")
    for setting in cls.export_settings:
        export = setting_option(setting)(export)
    # report ------------------------------------------------------------------
    @group.command("report")
    @model_dir_option(cls)
    @click.option("--data", metavar="SPEC",
                  help="data for the evaluation sections [default: the "
                       "validation data the model was trained with]")
    @click.option("--output", type=click.Path(dir_okay=False),
                  help="the HTML file [default: <model-dir>/report.html]")
    def report(model_dir, data, output):
        data = data_spec(data)
        task = load(cls, model_dir)
        path = task.report(data, output)
        click.echo(f"Wrote {path}")

    report.help = (
        f"Write the HTML report of a saved {name} model: one "
        f"self-contained, offline file with its settings, data, training "
        f"curves and evaluation (see docs/report.md). Training writes it "
        f"into the model folder too.\n\n{spec_help(cls)}\n\n\b\n"
        f"Examples:\n    nlpseq {name} report --model-dir {default_dir}\n"
        f"    nlpseq {name} report --model-dir {default_dir} --data "
        f"{cls.data_example.replace('train', 'valid')} --output report.html")
    for command in cls.commands:
        group.add_command(FAMILY_COMMANDS.get(command)(cls))
    return group


def run_training(cls, config_file, model_dir, resume, overwrite, flags):
    """``nlpseq <app> train`` (and ``distill``): the settings of the
    flags and ``--config``, then :meth:`Task.train`."""
    flags.update(data=data_spec(flags.get("data")),
                 valid=data_spec(flags.get("valid"), "--valid"))
    # (Task.train starts TensorFlow once the data is read and checked)
    config = cls.effective_config(flags, config_path(config_file))
    return cls.train(config, model_dir, resume=resume,
                     epochs=flags.get("epochs") if resume else None,
                     overwrite=overwrite)


def training_options(cls, function, suffix="", without=()):
    """``function`` with the options of a training command: a flag per
    setting (but those named in ``without``), ``--resume``,
    ``--overwrite``, ``--model-dir`` (default
    ``saved_models/<app><suffix>``), ``--config``."""
    for setting in reversed(cls.all_settings()):
        if setting.flag and setting.name not in without:
            function = setting_option(setting)(function)
    function = click.option("--resume", is_flag=True,
                            help="continue the interrupted run in "
                                 "--model-dir from its last "
                                 "checkpoint")(function)
    function = click.option("--overwrite", is_flag=True,
                            help="replace another app's model in "
                                 "--model-dir, or discard the interrupted "
                                 "run there")(function)
    function = model_dir_option(cls, suffix)(function)
    packaged = configs(cls.name)
    return click.option(
        "--config", "config_file", type=click.Path(dir_okay=False),
        help="TOML or YAML file of settings, or the name of a packaged one"
             + (f" ({', '.join(packaged)})" if packaged else ""))(function)


def write_records(records, output_format, format_text, out=None):
    """Write prediction records to ``out`` (stdout) as they come; returns
    how many."""
    out = out or click.get_text_stream("stdout")
    count = 0
    if output_format == "json":
        out.write("[")
        for count, record in enumerate(records, start=1):
            out.write(("," if count > 1 else "") + "\n  "
                      + strict_json(record, ensure_ascii=False))
        out.write("\n]\n")
        return count
    writer = None
    for count, record in enumerate(records, start=1):
        if output_format == "jsonl":
            out.write(strict_json(record, ensure_ascii=False) + "\n")
        elif output_format == "csv":
            flat = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v)
                    for k, v in record.items()}
            if writer is None:
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=list(flat),
                                        lineterminator="\n")
                writer.writeheader()
            writer.writerow(flat)
            out.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
        else:
            out.write(format_text(record) + "\n")
        out.flush()
    return count


__all__ = ["build_command_group", "check_options", "load",
           "model_dir_option", "setting_option", "write_records"]
