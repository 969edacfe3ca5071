"""The life cycle every app shares: train, evaluate, predict, export.

An app (``apps/sentiment.py``...) is a :class:`Pipeline` subclass that says
what is particular to it: its settings, how it reads data, how it builds its
vocabulary and model, how it reports and serves. Everything else lives here,
once: merging the configuration, the model folder and its atomic
publication, checkpoints and resuming, early stopping, TensorBoard logs,
loading a model folder, streaming prediction, and the export to TensorFlow
Serving's layout. :meth:`Pipeline.command` turns a pipeline into its
``nlpseq <app> ...`` command group.

Data flow::

    CLI flags + config file + defaults --merge--> config
    data SPEC --app reader--> texts, labels --TextEncoder--> token ids
    token ids --padded_batches--> model.fit (RunState: checkpoints/)
    .<name>.training/ --publish--> saved_models/<name>/
    saved_models/<name>/ --load--> Pipeline --export--> <out>/<version>/
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import shutil
import sys
from pathlib import Path

import click

from nlpseq.config import Setting, merge, read_config_file
from nlpseq.errors import NlpseqError
from nlpseq.folder import (
    CONFIG,
    MODEL,
    ModelFolder,
    folder_config,
    write_json_atomic,
)

#: Settings of every app: data, training loop, reproducibility.
COMMON_SETTINGS = (
    Setting("data", str, None, "training data SPEC (default: the built-in "
            "sample)"),
    Setting("valid", str, None, "validation data SPEC (default: split off "
            "--valid-split of the training data)"),
    Setting("valid_split", float, 0.1, "fraction of the training data held "
            "out for validation when --valid is not given", minimum=0.0,
            maximum=0.9, exclusive_minimum=True),
    Setting("epochs", int, 10, "maximum number of epochs", minimum=1),
    Setting("batch_size", int, 32, "texts per batch", minimum=1),
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
    Setting("clip_norm", float, 5.0, "clip gradients to this global norm (0: "
            "no clipping)", minimum=0.0),
    Setting("patience", int, 2, "stop after this many epochs without a "
            "better validation loss (0: never stop early)", minimum=0),
    Setting("keep", str, "best", "the weights the model keeps: those of the "
            "epoch with the lowest validation loss, or of the last epoch",
            choices=("best", "last")),
    Setting("seed", int, 0, "random seed (data order, initial weights, "
            "dropout)", minimum=0),
)

FORMATS = ("text", "json", "jsonl", "csv")


class Pipeline:
    """Base of the application pipelines.

    Subclasses set :attr:`name`, :attr:`settings` and :attr:`default_data`
    and implement the hooks marked *app hook*.

    Attributes:
        config: the effective configuration.
        model: the Keras model (token ids in), once built or loaded.
    """

    #: The app's command name (``nlpseq <name> ...``).
    name = None
    #: The app's own settings (added to :data:`COMMON_SETTINGS`).
    settings = ()
    #: Path of the data used when ``--data`` is not given.
    default_data = None
    #: Extra files of the model folder written by :meth:`save_artifacts`.
    artifact_files = ()
    #: Options of ``predict`` (:class:`Setting`), read into :attr:`options`.
    predict_settings = ()
    #: The app's own defaults of common settings (``{"epochs": 20}``).
    common_defaults = {}
    #: ``predict --format`` choices; those beyond json, jsonl and csv are
    #: written by :meth:`format_record`.
    output_formats = FORMATS

    def __init__(self, config):
        self.config = config
        self.model = None
        #: The ``predict`` options (defaults until the command sets them).
        self.options = {s.name: s.default for s in self.predict_settings}

    # -- app hooks -----------------------------------------------------------

    def read_data(self, spec, role):
        """*App hook*: read a data SPEC (``role``: train, valid, evaluate)."""
        raise NotImplementedError

    def split_data(self, data, fraction):
        """*App hook*: ``(train, valid)`` parts of ``data``."""
        raise NotImplementedError

    @staticmethod
    def held_out_cut(count, fraction, source, unit):
        """Where a split of ``count`` examples holding out ``fraction`` for
        validation cuts (the last part validates).

        Raises:
            NlpseqError: too few examples to keep some on both sides.
        """
        held = max(1, int(round(count * fraction)))
        if held >= count:
            raise NlpseqError(
                f"{source}: {count} {unit} are too few to hold out "
                f"--valid-split {fraction} for validation")
        return count - held

    def describe_data(self, data) -> str:
        """*App hook*: a short description for progress output."""
        return f"{len(data)} examples"

    def prepare(self, train):
        """*App hook*: learn what the model needs from the training data
        (vocabulary, class names)."""
        raise NotImplementedError

    def folder_entries(self) -> dict:
        """*App hook*: what ``config.json`` records besides the config."""
        return {}

    def save_artifacts(self, path):
        """*App hook*: write the app's files (vocabulary...) into ``path``."""

    def load_artifacts(self, path, entries):
        """*App hook*: read them back (``entries``: ``config.json``)."""

    def encode(self, data):
        """*App hook*: ``(inputs, targets)`` for :func:`padded_batches`."""
        raise NotImplementedError

    def build_model(self):
        """*App hook*: the Keras model (uncompiled)."""
        raise NotImplementedError

    def compile_arguments(self) -> dict:
        """*App hook*: ``loss`` and ``metrics`` for ``model.compile``."""
        raise NotImplementedError

    def evaluate_data(self, data) -> dict:
        """*App hook*: the metrics of the model on ``data``."""
        raise NotImplementedError

    def format_metrics(self, metrics) -> str:
        """*App hook*: metrics as readable text."""
        return json.dumps(metrics, indent=2)

    def headline(self, metrics) -> str:
        """*App hook*: one line summing up validation metrics."""
        return ""

    def predict_lines(self, lines):
        """*App hook*: records (dicts) for a list of input lines."""
        raise NotImplementedError

    def format_record(self, record, output_format="text") -> str:
        """*App hook*: a record as text (``--format text``, or another of
        :attr:`output_formats`)."""
        return json.dumps(record, ensure_ascii=False)

    def serving_layers(self):
        """*App hook*: layers the serving function uses besides the model
        (e.g. the text encoder), for the export to track."""
        return []

    def serving_function(self):
        """*App hook*: ``(function, input_signature)`` of the serving
        endpoint; the function maps raw inputs to a dict of named outputs."""
        raise NotImplementedError

    def serving_functions(self) -> dict:
        """*App hook*: the exported signatures, ``{name: (function,
        input_signature)}``; by default :meth:`serving_function` as
        ``serving_default``."""
        return {"serving_default": self.serving_function()}

    @classmethod
    def add_commands(cls, group):
        """*App hook*: add app-specific commands to ``nlpseq <app>``."""

    # -- configuration -------------------------------------------------------

    @classmethod
    def all_settings(cls):
        common = tuple(
            dataclasses.replace(s, default=cls.common_defaults[s.name])
            if s.name in cls.common_defaults else s for s in COMMON_SETTINGS)
        return common + tuple(cls.settings)

    @classmethod
    def effective_config(cls, flags=None, config_file=None) -> dict:
        """Defaults < ``config_file`` < ``flags``, checked."""
        file_values = read_config_file(config_file) if config_file else None
        return merge(cls.all_settings(), file_values, flags,
                     source=str(config_file), section=cls.name)

    # -- training ------------------------------------------------------------

    def _data(self, echo):
        config = self.config
        train_spec = config["data"] or str(self.default_data)
        train = self.read_data(train_spec, "train")
        if config["valid"]:
            valid = self.read_data(config["valid"], "valid")
        else:
            train, valid = self.split_data(train, config["valid_split"])
        echo(f"Training data: {self.describe_data(train)} from "
             f"{config['data'] or 'the built-in sample'}")
        echo(f"Validation data: {self.describe_data(valid)} from "
             f"{config['valid'] or 'a held-out part of the training data'}")
        return train, valid

    @classmethod
    def train(cls, config, model_dir, resume=False, epochs=None,
              echo=click.echo, verbose=None):
        """Train a model and publish it in ``model_dir``.

        With ``resume``, the interrupted run in ``model_dir``'s staging folder
        continues from its last checkpoint, with its own saved settings;
        ``epochs``, if given, changes its number of epochs.

        Returns:
            The trained pipeline.
        """
        import keras

        from nlpseq.training import (
            LAST,
            EpochSeeds,
            RunState,
            batches_per_epoch,
            kept_checkpoint,
            padded_batches,
            read_state,
        )

        folder = ModelFolder(model_dir)
        staging = folder.start(resume=resume)
        state = None
        if resume:
            saved = json.loads((staging / CONFIG).read_text("utf-8"))
            if saved.get("app") != cls.name:
                raise NlpseqError(
                    f"--resume: {staging} holds a run of the "
                    f"'{saved.get('app')}' app")
            config = dict(saved["config"],
                          epochs=epochs or saved["config"]["epochs"])
            state = read_state(staging / "checkpoints")
            echo(f"Resuming the run in {staging} after epoch "
                 f"{state['epochs_done']}")
        pipeline = cls(config)
        keras.utils.set_random_seed(config["seed"])
        train, valid = pipeline._data(echo)
        if resume:
            pipeline.load_artifacts(staging, saved)
        else:
            pipeline.prepare(train)
            pipeline.save_artifacts(staging)
            write_json_atomic(staging / CONFIG, folder_config(
                cls.name, cls, config, **pipeline.folder_entries()))
        x_train, y_train = pipeline.encode(train)
        x_valid, y_valid = pipeline.encode(valid)
        pad_targets = not hasattr(y_train, "shape")

        checkpoints = staging / "checkpoints"
        if resume:
            import nlpseq.layers  # noqa: F401 (registers the layers)
            import nlpseq.models  # noqa: F401 (and the models)

            try:
                pipeline.model = keras.saving.load_model(
                    checkpoints / LAST, compile=True)
            except Exception as error:  # noqa: BLE001 (a damaged file)
                raise NlpseqError(
                    f"--resume: cannot read {checkpoints / LAST} "
                    f"({type(error).__name__}); start the run again "
                    "without --resume") from None
        else:
            pipeline.model = pipeline.build_model()
            average = config["weight_average"]
            optimizer = keras.optimizers.Adam(
                config["learning_rate"],
                global_clipnorm=config["clip_norm"] or None,
                use_ema=average > 0, ema_momentum=average)
            pipeline.model.compile(optimizer=optimizer, jit_compile=False,
                                   **pipeline.compile_arguments())
        first_epoch = state["epochs_done"] if state else 0
        finished = state is not None and (
            state["stopped_early"] or first_epoch >= config["epochs"])
        if not finished:
            batch_size = config["batch_size"]
            remaining = config["epochs"] - first_epoch
            train_batches = padded_batches(
                x_train, y_train, batch_size, seed=config["seed"],
                first_epoch=first_epoch, epochs=remaining,
                pad_targets=pad_targets)
            valid_batches = padded_batches(
                x_valid, y_valid, batch_size, shuffle=False,
                pad_targets=pad_targets).cache()
            run_state = RunState(checkpoints, patience=config["patience"],
                                 keep=config["keep"], state=state)
            # With weight averaging, the epoch ends on the average: it is
            # validated and checkpointed, and the raw weights come back for
            # the next epoch (a checkpoint holds them in the optimizer).
            averaging = []
            if config["weight_average"]:
                swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
                # (the checkpoint was saved holding the average)
                swap._ema_weights_in_model = bool(resume)
                averaging.append(swap)
            rate, decay = config["learning_rate"], config["lr_decay"]
            after = config["lr_decay_after"]
            callbacks = [
                EpochSeeds(config["seed"]),
                keras.callbacks.LearningRateScheduler(
                    lambda epoch, _: rate * decay ** max(0, epoch + 1 - after)),
                keras.callbacks.CSVLogger(
                    str(staging / "history.csv"), append=resume),
                *averaging,
                run_state,
                keras.callbacks.TensorBoard(str(staging / "logs")),
            ]
            if verbose is None:
                verbose = 1 if sys.stdout.isatty() else 2
            echo(f"Training {first_epoch + 1}..{config['epochs']} of "
                 f"{config['epochs']} epochs; checkpoints in {checkpoints}")
            try:
                pipeline.model.fit(
                    train_batches, validation_data=valid_batches,
                    epochs=config["epochs"], initial_epoch=first_epoch,
                    steps_per_epoch=batches_per_epoch(len(x_train),
                                                      batch_size),
                    callbacks=callbacks, verbose=verbose, shuffle=False)
            except KeyboardInterrupt:
                raise NlpseqError(
                    f"interrupted; the previous model in {folder} is "
                    f"untouched; continue with: nlpseq {cls.name} train "
                    f"--model-dir {folder} --resume") from None
            # (the epochs' time, over every part of a resumed run)
            seconds = run_state.seconds
        else:
            seconds = state.get("training_seconds", 0.0)
            pipeline.model.load_weights(
                kept_checkpoint(checkpoints, config["keep"]))

        metrics = pipeline.evaluate_data(valid)
        metrics["training_seconds"] = round(seconds, 1)
        metrics["parameters"] = int(pipeline.model.count_params())
        pipeline.model.save(staging / MODEL)
        metrics["model_bytes"] = (staging / MODEL).stat().st_size
        write_json_atomic(staging / "metrics.json", metrics)
        folder.publish()
        echo(f"Saved {folder} ({pipeline.headline(metrics)}; "
             f"{metrics['parameters']:,} parameters, trained in "
             f"{seconds:.0f} s)")
        return pipeline

    # -- loading, evaluating, predicting, exporting --------------------------

    @classmethod
    def load(cls, model_dir):
        """The pipeline saved in ``model_dir``.

        Raises:
            NlpseqError: folder missing, of another app, or corrupted.
        """
        import keras

        import nlpseq.layers  # noqa: F401 (registers the layers for loading)
        import nlpseq.models  # noqa: F401 (and the models)

        folder = ModelFolder(model_dir)
        entries = folder.read_config(app=cls.name)
        model_path = folder.file(MODEL)
        for name in cls.artifact_files:
            folder.file(name)
        pipeline = cls(entries.get("config", {}))
        try:
            pipeline.config = merge(cls.all_settings(),
                                    {k: v for k, v in pipeline.config.items()
                                     if v is not None},
                                    source=str(folder.path / CONFIG))
            pipeline.load_artifacts(folder.path, entries)
            pipeline.model = keras.saving.load_model(model_path,
                                                     compile=False)
        except NlpseqError:
            raise
        except Exception as error:  # noqa: BLE001 (any damage to the files)
            reason = str(error).splitlines()[0] if str(error) else ""
            if len(reason) > 200:
                reason = reason[:197] + "..."
            raise NlpseqError(
                f"{folder}: corrupted model ({type(error).__name__}: "
                f"{reason})") from None
        pipeline.folder = folder
        return pipeline

    def predict_stream(self, lines, chunk=1024):
        """Records for an iterable of lines, ``chunk`` lines at a time."""
        lines = iter(lines)
        while True:
            block = list(itertools.islice(lines, chunk))
            if not block:
                return
            yield from self.predict_lines(block)

    def export(self, output=None, version=None):
        """Write a SavedModel for TensorFlow Serving: ``<output>/<version>/``.

        Args:
            output: the base folder (default: ``<model dir>/export``).
            version: the version number (default: one above the highest
                there, or 1).

        Returns:
            The path written.
        """
        import keras

        output = Path(output) if output else self.folder.path / "export"
        if output.exists() and not output.is_dir():
            raise NlpseqError(f"--output {output}: not a folder")
        output.mkdir(parents=True, exist_ok=True)
        if version is None:
            numbers = [int(p.name) for p in output.iterdir()
                       if p.is_dir() and p.name.isdigit()]
            version = max(numbers, default=0) + 1
        target = output / str(version)
        if target.exists():
            raise NlpseqError(
                f"--version {version}: {target} exists already; give another "
                "version number")
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        for layer in self.serving_layers():
            archive.track(layer)
        for name, (function, signature) in self.serving_functions().items():
            archive.add_endpoint(name, function, input_signature=signature)
        temporary = output / f".{version}.partial"
        if temporary.exists():
            shutil.rmtree(temporary)
        try:
            archive.write_out(str(temporary), verbose=False)
            temporary.rename(target)
        finally:
            if temporary.exists():
                shutil.rmtree(temporary)
        return target

    # -- command line --------------------------------------------------------

    @classmethod
    def command(cls) -> click.Group:
        """The ``nlpseq <app>`` command group."""
        return build_command_group(cls)


def _setting_option(setting):
    if setting.type is bool:
        flag = setting.name.replace("_", "-")
        return click.option(f"--{flag}/--no-{flag}", setting.name,
                            default=None,
                            help=f"{setting.help} [default: "
                                 f"{'yes' if setting.default else 'no'}]")
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


def _model_dir_option(required):
    return click.option(
        "--model-dir", type=click.Path(file_okay=False),
        required=required, help="the model folder")


def _load(cls, model_dir):
    from nlpseq.runtime import import_tensorflow

    import_tensorflow()
    return cls.load(model_dir)


def build_command_group(cls):
    """``nlpseq <app>`` with train / evaluate / predict / export."""
    name = cls.name
    default_dir = f"saved_models/{name}"

    @click.group(name=name, help=cls.__doc__.split("\n\n")[0],
                 context_settings={"help_option_names": ["-h", "--help"]})
    def group():
        pass

    # train ---------------------------------------------------------------
    def train(config_file, model_dir, resume, **flags):
        from nlpseq.runtime import import_tensorflow

        config = cls.effective_config(flags, config_file)
        import_tensorflow()
        cls.train(config, model_dir or default_dir, resume=resume,
                  epochs=flags.get("epochs") if resume else None)

    train.__doc__ = (
        f"Train a {name} model and save it in a model folder.\n\n"
        f"Settings come from the flags, then --config FILE (TOML or YAML), "
        f"then the defaults. Without --data it trains on the built-in "
        f"sample.\n\n\b\nExamples:\n    nlpseq {name} train\n"
        f"    nlpseq {name} train --data train.csv --epochs 5 "
        f"--model-dir saved_models/my-{name}")
    for setting in reversed(cls.all_settings()):
        if setting.flag:
            train = _setting_option(setting)(train)
    train = click.option("--resume", is_flag=True,
                         help="continue the interrupted run in --model-dir "
                              "from its last checkpoint")(train)
    train = click.option("--model-dir", type=click.Path(file_okay=False),
                         help=f"where to save the model [default: "
                              f"{default_dir}]")(train)
    train = click.option("--config", "config_file",
                         type=click.Path(dir_okay=False),
                         help="TOML or YAML file of settings")(train)
    group.command("train")(train)

    # evaluate --------------------------------------------------------------
    @group.command("evaluate")
    @_model_dir_option(required=True)
    @click.option("--data", required=True, metavar="SPEC",
                  help="labelled data to evaluate on")
    @click.option("--json", "as_json", is_flag=True,
                  help="print the metrics as JSON")
    def evaluate(model_dir, data, as_json):
        pipeline = _load(cls, model_dir)
        metrics = pipeline.evaluate_data(pipeline.read_data(data, "evaluate"))
        click.echo(json.dumps(metrics, indent=2) if as_json
                   else pipeline.format_metrics(metrics))

    evaluate.help = (f"Evaluate a saved {name} model on labelled data.\n\n\b\n"
                     f"Example:\n    nlpseq {name} evaluate --model-dir "
                     f"{default_dir} --data valid.csv")

    # predict ---------------------------------------------------------------
    @group.command("predict")
    @_model_dir_option(required=False)
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
        if texts:
            lines = iter(texts)
        else:
            lines = iter_lines(input_file or "-", input_file or "<stdin>")
        first = next(lines, None)
        if first is None:
            return  # empty input: nothing to print
        pipeline = _load(cls, model_dir or default_dir)
        pipeline.options.update(options)
        records = pipeline.predict_stream(itertools.chain([first], lines))
        write_records(records, output_format,
                      lambda r: pipeline.format_record(r, output_format))

    predict.help = (
        f"Predict with a saved {name} model.\n\nInputs are the TEXT "
        f"arguments, or one per line from --input FILE or standard input.\n\n"
        f"\b\nExamples:\n    nlpseq {name} predict \"an input\"\n"
        f"    nlpseq {name} predict --input inputs.txt --format jsonl")
    for setting in cls.predict_settings:
        predict = _setting_option(setting)(predict)

    # export ------------------------------------------------------------------
    @group.command("export")
    @_model_dir_option(required=False)
    @click.option("--output", type=click.Path(file_okay=False),
                  help="base folder [default: <model-dir>/export]")
    @click.option("--version", type=click.IntRange(min=1),
                  help="version number [default: next free]")
    def export(model_dir, output, version):
        pipeline = _load(cls, model_dir or default_dir)
        path = pipeline.export(output, version)
        names = ", ".join(pipeline.serving_functions())
        click.echo(f"Exported {path} (signatures: {names})")

    export.help = (
        f"Export a saved {name} model as a TensorFlow Serving SavedModel "
        f"(<output>/<version>/saved_model.pb), taking raw strings.\n\n\b\n"
        f"Example:\n    nlpseq {name} export --model-dir {default_dir}")
    cls.add_commands(group)
    return group


def check_options(settings, values):
    """Command options: ``None`` (not given) becomes the default, and each
    value is checked against its :class:`Setting`."""
    return merge(settings, None, values, source="options")


def write_records(records, output_format, format_text, out=None):
    """Write prediction records to ``out`` (stdout) as they come."""
    out = out or click.get_text_stream("stdout")
    if output_format == "json":
        out.write("[")
        for index, record in enumerate(records):
            out.write(("," if index else "") + "\n  "
                      + json.dumps(record, ensure_ascii=False))
        out.write("\n]\n")
        return
    writer = None
    for record in records:
        if output_format == "jsonl":
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
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
