"""The life cycle every task shares: train, load, evaluate, predict, export.

A model family (:mod:`~nlpseq.tasks.classifier`,
:mod:`~nlpseq.tasks.tagger`, :mod:`~nlpseq.tasks.language_model`,
:mod:`~nlpseq.tasks.seq2seq`) is a :class:`Task` subclass that says what is
its own: how it reads data, its :class:`Preprocessor` (vocabularies, labels),
its model, loss, decoding, metrics and output records, and its serving
signatures. An app (``apps/sentiment.py``...) is a short declaration over a
family: a name, defaults, sample data. Everything else lives here, once.

Data flow::

    settings --Task.train--> data --Preprocessor.fit--> preprocessor
    data --Task.encode--> ids --padded_batches--> model.fit (checkpoints/)
    .<name>.training/ --publish--> <model dir>/ (config.json,
        preprocessor.json, model.keras, metrics.json, history.csv)
    <model dir>/ --Task.load--> Task --predict / evaluate / export

Progress goes to the ``nlpseq`` logger (:mod:`logging`): quiet in a library
unless the caller configures logging, printed by the command line.
"""

from __future__ import annotations

import errno
import functools
import itertools
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from nlpseq.config import merge, read_config_file
from nlpseq.errors import NlpseqError
from nlpseq.folder import (
    CONFIG,
    MODEL,
    ModelFolder,
    fault_point,
    folder_config,
    write_json_atomic,
)
from nlpseq.tasks.settings import COMMON_SETTINGS, with_defaults

LOG = logging.getLogger("nlpseq")

#: The preprocessor's file in a model folder.
PREPROCESSOR = "preprocessor.json"
#: ``predict --format`` choices every task has.
FORMATS = ("text", "json", "jsonl", "csv")
#: What a SavedModel export says of itself, in its version folder: the app,
#: the family and the nlpseq version (TensorFlow Serving ignores
#: ``assets.extra/`` but for its warm-up file).
EXPORT_INFO = Path("assets.extra", "nlpseq.json")


class Preprocessor:
    """What a task learns from its training data besides the weights
    (vocabularies, class names, tags), saved in the model folder as one
    JSON file, :data:`PREPROCESSOR`.

    A family subclass implements :meth:`fit`, :meth:`get_config` (a
    JSON-serialisable dict) and :meth:`from_config`.
    """

    def __init__(self, config):
        #: The task's effective configuration.
        self.config = config

    @classmethod
    def fit(cls, data, config):
        """Learn from the training data ``data``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, state, config):
        raise NotImplementedError

    @staticmethod
    def require(entries, what):
        """``entries`` as a list, when it holds something; for
        :meth:`from_config`: an empty vocabulary is a damaged file.

        Raises:
            ValueError: ``empty <what>`` (:meth:`load` reports the file as
                corrupted).
        """
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"empty {what}")
        return entries

    def save(self, path):
        write_json_atomic(path, {"class": type(self).__name__,
                                 "state": self.get_config()})

    @classmethod
    def load(cls, path, config, data=None):
        """The preprocessor saved in ``path`` (or read from there already:
        ``data``, its bytes).

        Raises:
            NlpseqError: missing or damaged file.
        """
        try:
            saved = json.loads(Path(path).read_text(encoding="utf-8")
                               if data is None else data.decode("utf-8"))
            return cls.from_config(saved["state"], config)
        except NlpseqError as error:
            raise NlpseqError(f"{path}: corrupted ({error})") from None
        except FileNotFoundError:
            raise NlpseqError(f"{Path(path).parent}: corrupted (missing "
                              f"{Path(path).name})") from None
        except Exception as error:  # noqa: BLE001 (any damage to the file)
            raise NlpseqError(f"{path}: corrupted ({type(error).__name__}: "
                              f"{error})") from None


class Task:
    """Base of the model families.

    Attributes:
        config: the effective configuration.
        preprocessor: the :class:`Preprocessor`, once fitted or loaded.
        model: the Keras model (ids in), once built or loaded.
        folder: the :class:`~nlpseq.folder.ModelFolder` it was loaded from.
    """

    #: The app's command name (``nlpseq <name> ...``); set by the app.
    name = None
    #: The model family (``classifier``, ``tagger``...); set by the family.
    family = None
    #: The settings besides :data:`COMMON_SETTINGS` (family + app).
    settings = ()
    #: The app's own defaults of common settings (``{"epochs": 20}``).
    common_defaults = {}
    #: Training and validation files used when ``--data`` is not given.
    default_data = None
    default_valid = None
    #: Options of ``predict`` (:class:`~nlpseq.config.Setting`).
    predict_settings = ()
    #: ``predict --format`` choices.
    output_formats = FORMATS
    #: The family's :class:`Preprocessor` subclass.
    preprocessor_class = Preprocessor
    #: What ``--data SPEC`` reads, and an example file name, for ``--help``.
    data_help = "a data file"
    data_example = "train.csv"
    #: Example inputs of ``predict`` for ``--help``.
    predict_example = "an input"

    def __init__(self, config, preprocessor=None):
        self.config = config
        self.preprocessor = preprocessor
        self.model = None
        self.folder = None
        #: The ``predict`` options (defaults until set).
        self.options = {s.name: s.default for s in self.predict_settings}

    # -- family hooks --------------------------------------------------------

    def read_data(self, spec, role):
        """*Family hook*: read a data SPEC (``role``: train, valid,
        evaluate)."""
        raise NotImplementedError

    def split_data(self, data, fraction):
        """*Family hook*: ``(train, valid)`` parts of ``data``."""
        raise NotImplementedError

    def describe_data(self, data) -> str:
        """*Family hook*: a short description for progress output."""
        return f"{len(data)} examples"

    def encode(self, data):
        """*Family hook*: ``(inputs, targets)`` for ``padded_batches``."""
        raise NotImplementedError

    def build_model(self):
        """*Family hook*: the Keras model (uncompiled). The parts that
        decoding and serving use are kept as attributes."""
        raise NotImplementedError

    def prepare_model(self, x, y):
        """Fit what is fitted before the network trains, from the encoded
        training data (a fresh run only: a resumed one has it in its
        checkpoint). Nothing by default."""

    def compile_arguments(self) -> dict:
        """*Family hook*: ``loss`` and ``metrics`` for ``model.compile``."""
        return {}

    def evaluate_data(self, data) -> dict:
        """*Family hook*: the metrics of the model on ``data``."""
        raise NotImplementedError

    def format_metrics(self, metrics) -> str:
        """*Family hook*: metrics as readable text."""
        return json.dumps(metrics, indent=2)

    def headline(self, metrics) -> str:
        """*Family hook*: one line summing up validation metrics."""
        return ""

    def predict_lines(self, lines):
        """*Family hook*: records (dicts) for a list of input strings."""
        raise NotImplementedError

    def empty_record(self, text):
        """*Family hook*: the record of an empty or whitespace-only input
        ``text``: the family's empty result (no label, no tags, no
        translation), given without running the model; ``None`` when an
        empty input has a meaning of its own for the family and is
        predicted like any other (the language model: the tokens that
        start a line)."""
        return None

    def format_record(self, record, output_format="text") -> str:
        """*Family hook*: a record as text (``--format text``, or another of
        :attr:`output_formats`)."""
        return json.dumps(record, ensure_ascii=False)

    def serving_layers(self):
        """*Family hook*: layers the signatures use besides the model."""
        return []

    def serving_functions(self) -> dict:
        """*Family hook*: the exported signatures, ``{name: (function,
        input_signature)}``."""
        raise NotImplementedError

    def graph_functions(self) -> dict:
        """*Family hook*: the graph functions that prediction runs compiled,
        ``{name: (function, input_signature)}`` (see :meth:`graph_function`)."""
        return {}

    def graph_function(self, name):
        """The ``tf.function`` of :meth:`graph_functions`' entry ``name``,
        traced once for the current model."""
        import tensorflow as tf

        model, cache = getattr(self, "_graph_cache", (None, {}))
        if model is not self.model:
            cache = {}
            self._graph_cache = (self.model, cache)
        if name not in cache:
            function, signature = self.graph_functions()[name]
            cache[name] = tf.function(function, input_signature=signature,
                                      autograph=False)
        return cache[name]

    @classmethod
    def add_commands(cls, group):
        """*Family hook*: add commands of its own to ``nlpseq <app>``."""

    # -- configuration -------------------------------------------------------

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

    @classmethod
    def all_settings(cls):
        return with_defaults(COMMON_SETTINGS, **cls.common_defaults) + tuple(
            cls.settings)

    @classmethod
    def effective_config(cls, flags=None, config_file=None) -> dict:
        """Defaults < ``config_file`` < ``flags``, checked (a
        :class:`~nlpseq.config.Config`, which knows the settings given).

        Raises:
            NlpseqError: a bad value, or ``valid_split`` given together with
                ``valid`` (which would make the split meaningless).
        """
        file_values = read_config_file(config_file) if config_file else None
        config = merge(cls.all_settings(), file_values, flags,
                       source=str(config_file), section=cls.name)
        if "valid_split" in config.given and config["valid"] is not None:
            raise NlpseqError(
                f"{config.given['valid_split']}: valid_split "
                f"{config['valid_split']} cannot be used with --valid "
                f"{config['valid']} (the validation data is given); drop "
                "one of them")
        if "valid_split" in config.given and config["data"] is None and \
                cls.default_valid is not None:
            raise NlpseqError(
                f"{config.given['valid_split']}: the built-in sample has its "
                f"own validation file ({Path(cls.default_valid).name}); "
                "--valid-split splits the data given with --data")
        return config

    # -- training ------------------------------------------------------------

    def training_data(self):
        """The ``(train, valid)`` data of the configuration."""
        config = self.config
        spec = config["data"] or str(self.default_data)
        train = self.read_data(spec, "train")
        valid_spec, shown = config["valid"], config["valid"]
        if valid_spec is None and config["data"] is None and \
                self.default_valid is not None:
            valid_spec = str(self.default_valid)
            shown = "the built-in validation sample"
        if valid_spec:
            valid = self.read_data(valid_spec, "valid")
        else:
            train, valid = self.split_data(train, config["valid_split"])
        LOG.info("Training data: %s from %s", self.describe_data(train),
                 config["data"] or "the built-in sample")
        LOG.info("Validation data: %s from %s", self.describe_data(valid),
                 shown or "a held-out part of the training data")
        return train, valid

    @classmethod
    def train(cls, config, model_dir, resume=False, epochs=None,
              verbose=None, overwrite=False):
        """Train a model and publish it in ``model_dir``.

        With ``resume``, the interrupted run in ``model_dir``'s staging folder
        continues from its last checkpoint, with its own saved settings;
        ``epochs``, if given, changes its number of epochs.

        The folder's writer lock is held throughout (a second run into it is
        refused). Refused before anything on disk changes: a folder nlpseq
        did not write; another app's model, and an interrupted run that a
        fresh run would discard, unless ``overwrite``. A fresh run that
        fails removes its staging folder unless it left a checkpoint to
        resume from.

        Returns:
            The trained task.
        """
        from nlpseq import distribute

        folder = ModelFolder(model_dir)
        # (a resumed run keeps its own --distribute, given again or not)
        if not distribute.is_chief(config, folder.staging if resume
                                   else None):
            # (a multi-worker job's other workers write nowhere the user sees)
            with distribute.private_folder(folder, resume) as own:
                return cls._train(config, own, resume, epochs, verbose)
        folder.check_training(cls.name, resume, overwrite)
        with folder.lock():
            folder.check_training(cls.name, resume, overwrite, locked=True)
            try:
                return cls._train(config, folder, resume, epochs, verbose)
            except BaseException:
                if not resume:
                    folder.discard_failed()
                raise

    @classmethod
    def _train(cls, config, folder, resume, epochs, verbose):
        """The steps of :meth:`train`, the folder's lock held."""
        from nlpseq import distribute

        state = source = None
        if resume:
            staging = folder.start(resume=True)  # (changes nothing on disk)
            config, state = cls._resumed(staging, epochs, config)
        elif config.get("init_from"):
            from nlpseq.transfer import Source

            source = Source(config["init_from"])
            config = source.adopt(config, cls)
        task = cls(config)
        # the data is read and checked before TensorFlow starts and before
        # anything on disk changes
        train, valid = task.training_data()
        strategy = distribute.start(config)
        import keras

        if source is not None:
            source.load()
        if not resume:
            staging = folder.start()
        keras.utils.set_random_seed(config["seed"])
        if resume:
            task.preprocessor = cls.preprocessor_class.load(
                staging / PREPROCESSOR, config)
        else:
            task.preprocessor = (
                cls.preprocessor_class.fit(train, config) if source is None
                else cls.preprocessor_class.from_language_model(
                    source.preprocessor, train, config))
            task.preprocessor.save(staging / PREPROCESSOR)
            write_json_atomic(staging / CONFIG, folder_config(
                cls.name, cls, config))
        with distribute.scope(strategy):
            task._build_or_resume(staging / "checkpoints", resume, source)
            seconds = task._fit(train, valid, staging, state, verbose,
                                folder)
        if strategy is not None:
            distribute.local_model(task)
        if config["jit_compile"]:
            # (evaluation and prediction after training run on unbucketed
            # batches, without XLA)
            model = task.model
            model.jit_compile = False
            model.train_function = model.test_function = None
            model.predict_function = None
        if not distribute.is_chief(config):
            LOG.info("This worker is done; the chief publishes the model")
            return task
        task._publish(folder, staging, valid, seconds)
        return task

    @classmethod
    def _resumed(cls, staging, epochs, given=None):
        """The configuration and state of the interrupted run in
        ``staging``.

        Raises:
            NlpseqError: a run of another app, or settings in ``given`` (a
                :class:`~nlpseq.config.Config` of the settings given) other
                than ``epochs`` that differ from the run's own.
        """
        saved = json.loads((staging / CONFIG).read_text("utf-8"))
        if saved.get("app") != cls.name:
            raise NlpseqError(f"--resume: {staging} holds a run of the "
                              f"'{saved.get('app')}' app")
        changed = [
            f"{name} {given[name]!r} (from {where}; the run has "
            f"{saved['config'].get(name)!r})"
            for name, where in getattr(given, "given", {}).items()
            if name != "epochs" and given[name] != saved["config"].get(name)]
        if epochs is None and "epochs" in getattr(given, "given", {}):
            epochs = given["epochs"]  # (from a config file)
        if changed:
            raise NlpseqError(
                f"--resume: the interrupted run continues with its own "
                f"settings, but these differ: {'; '.join(changed)}; drop them"
                " (only --epochs may change), or train again without "
                "--resume")
        config = dict(saved["config"],
                      epochs=epochs or saved["config"]["epochs"])
        # (the state file of nlpseq.training.RunState, read without
        # importing TensorFlow: the settings are checked before it starts)
        state = json.loads((staging / "checkpoints" / "state.json")
                           .read_text("utf-8"))
        LOG.info("Resuming the run in %s after epoch %d", staging,
                 state["epochs_done"])
        return config, state

    def layer_groups(self):
        """The fine-tuning recipe's layer groups (lists of variables, top
        first) when it applies (``--init-from`` with
        ``--discriminative-lr`` above 1 or ``--unfreeze-every``), else
        ``None``."""
        config = self.config
        if not config.get("init_from") or (
                config.get("discriminative_lr", 1.0) == 1.0
                and not config.get("unfreeze_every")):
            return None
        from nlpseq.transfer import layer_groups

        return layer_groups(self)

    def _compile(self):
        import keras

        from nlpseq.schedules import GroupedAdam

        average = self.config["weight_average"]
        groups = self.layer_groups()
        options = {"groups": groups} if groups else {}
        optimizer = (GroupedAdam if groups else keras.optimizers.Adam)(
            self.config["learning_rate"],
            global_clipnorm=self.config["clip_norm"] or None,
            use_ema=average > 0, ema_momentum=average, **options)
        # (under mixed_float16 Keras wraps the optimizer in a
        # LossScaleOptimizer: the model was built under that policy)
        jit_compile = self.config.get("jit_compile", False)
        self.model.compile(optimizer=optimizer, jit_compile=jit_compile,
                           **self.compile_arguments())
        if jit_compile:
            self._explain_xla_failure()

    def _explain_xla_failure(self):
        """Make XLA's refusal to compile the training step (at its first
        call) one :class:`NlpseqError` naming the app."""
        import tensorflow as tf

        model, make = self.model, self.model.make_train_function
        failures = (tf.errors.InvalidArgumentError,
                    tf.errors.UnimplementedError, tf.errors.InternalError)

        def explained(function):
            def train_function(iterator):
                try:
                    return function(iterator)
                except failures as error:
                    message = str(error)
                    if "XLA" not in message and "jit" not in message:
                        raise
                    reason = message.strip().splitlines()[0][:200]
                    raise NlpseqError(
                        f"--jit-compile: XLA cannot compile the training step "
                        f"of the {self.name} app ({reason}); train without "
                        "--jit-compile") from None

            train_function.explained = True
            return train_function

        def make_train_function(force=False):
            make(force)
            function = model.train_function
            if not getattr(function, "explained", False):
                function = model.train_function = explained(function)
            return function

        model.make_train_function = make_train_function

    def build_in_precision(self):
        """:meth:`build_model` under the ``precision`` dtype policy: the
        layers compute in float16 or bfloat16 and keep float32 weights
        (the families keep their outputs and losses in float32). Keras'
        global policy is set for the build only, and restored."""
        import keras

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.config.get("precision",
                                                      "float32"))
        try:
            return self.build_model()
        finally:
            keras.config.set_dtype_policy(previous)

    def _build_or_resume(self, checkpoints, resume, source=None):
        """Build and compile the model; start it from ``source`` (an
        ``--init-from`` :class:`~nlpseq.transfer.Source`), or when resuming,
        load the last checkpoint's weights and optimizer state into it."""
        from nlpseq.training import LAST

        self.model = self.build_in_precision()
        if source is not None:
            source.copy_into(self)
        self._compile()
        if resume:
            self.model.optimizer.build(self.model.trainable_variables)
            try:
                self.model.load_weights(checkpoints / LAST)
            except Exception as error:  # noqa: BLE001 (a damaged file)
                raise NlpseqError(
                    f"--resume: cannot read {checkpoints / LAST} "
                    f"({type(error).__name__}); start the run again "
                    "without --resume") from None

    def lr_schedule(self):
        """``step`` or ``slanted`` (``auto``: slanted with ``--init-from``)."""
        schedule = self.config.get("lr_schedule", "step")
        if schedule == "auto":
            return "slanted" if self.config.get("init_from") else "step"
        return schedule

    def _recipe(self, steps_per_epoch):
        """The :class:`~nlpseq.schedules.Recipe` callback of the slanted
        schedule and the layer groups, or ``None``."""
        from nlpseq.schedules import Recipe

        config = self.config
        groups = self.layer_groups()
        slanted = self.lr_schedule() == "slanted"
        if not slanted and not groups:
            return None
        return Recipe(
            config["learning_rate"], steps_per_epoch, config["epochs"],
            slanted=(config["warmup"], config["lr_ratio"]) if slanted
            else None, groups=len(groups or [None]),
            discriminative=config.get("discriminative_lr", 1.0),
            unfreeze_every=config.get("unfreeze_every", 0.0))

    def _callbacks(self, staging, run_state, resume, steps_per_epoch,
                   verbose=2):
        import keras

        from nlpseq.training import EpochSeeds, Progress, restore_ema_swap

        config = self.config
        averaging = []
        if config["weight_average"]:
            # the epoch ends on the average: it is validated and
            # checkpointed, and the raw weights come back for the next epoch
            averaging.append(restore_ema_swap(
                keras.callbacks.SwapEMAWeights(swap_on_epoch=True),
                resumed=resume))
        rate, decay = config["learning_rate"], config["lr_decay"]
        after = config["lr_decay_after"]
        recipe = self._recipe(steps_per_epoch)
        schedule = [keras.callbacks.LearningRateScheduler(
            lambda epoch, _: rate * decay ** max(0, epoch + 1 - after))]
        if recipe is not None:
            schedule = ([recipe] if self.lr_schedule() == "slanted"
                        else schedule + [recipe])
        return [
            EpochSeeds(config["seed"]),
            *schedule,
            keras.callbacks.CSVLogger(str(staging / "history.csv"),
                                      append=resume),
            *averaging,
            run_state,
            keras.callbacks.TensorBoard(str(staging / "logs")),
            # (a progress bar shows it otherwise)
            *([Progress(steps_per_epoch)] if verbose != 1 else []),
        ]

    def _fit(self, train, valid, staging, state, verbose, folder):
        """Run the remaining epochs; the seconds the epochs took."""
        import sys

        from nlpseq.training import (
            RunState,
            batches_per_epoch,
            kept_checkpoint,
            padded_batches,
            trim_history,
        )

        config = self.config
        checkpoints = staging / "checkpoints"
        first_epoch = state["epochs_done"] if state else 0
        if state is not None:
            trim_history(staging / "history.csv", first_epoch)
        if state is not None and (state["stopped_early"]
                                  or first_epoch >= config["epochs"]):
            self.model.load_weights(kept_checkpoint(checkpoints,
                                                    config["keep"]))
            return state.get("training_seconds", 0.0)
        x_train, y_train = self.encode(train)
        x_valid, y_valid = self.encode(valid)
        pad_targets = not hasattr(y_train, "shape")
        batch_size = config["batch_size"]
        # (XLA compiles the step once per batch shape: under --jit-compile
        # the batches come in a few bucketed widths)
        buckets = bool(config["jit_compile"])
        train_batches = padded_batches(
            x_train, y_train, batch_size, seed=config["seed"],
            first_epoch=first_epoch, epochs=config["epochs"] - first_epoch,
            pad_targets=pad_targets, buckets=buckets)
        valid_batches = padded_batches(
            x_valid, y_valid, batch_size, shuffle=False,
            pad_targets=pad_targets, buckets=buckets).cache()
        if state is None:
            self.prepare_model(x_train, y_train)
        run_state = RunState(checkpoints, patience=config["patience"],
                             keep=config["keep"], state=state)
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        LOG.info("Training %d..%d of %d epochs; checkpoints in %s",
                 first_epoch + 1, config["epochs"], config["epochs"],
                 checkpoints)
        fit = self.model.fit
        if config["distribute"] != "none":
            from nlpseq import distribute

            fit = functools.partial(distribute.fit, self.model)
        try:
            fit(
                train_batches, validation_data=valid_batches,
                epochs=config["epochs"], initial_epoch=first_epoch,
                steps_per_epoch=batches_per_epoch(len(x_train), batch_size),
                callbacks=self._callbacks(
                    staging, run_state, state is not None,
                    batches_per_epoch(len(x_train), batch_size), verbose),
                verbose=verbose, shuffle=False)
        except KeyboardInterrupt:
            if not run_state.epochs_done:
                raise NlpseqError(
                    f"interrupted before the first checkpoint; the previous "
                    f"model in {folder} is untouched; nothing to resume") \
                    from None
            previous = (f"the previous model in {folder} is untouched"
                        if folder.path.exists() else
                        f"no model was published in {folder}")
            raise NlpseqError(
                f"interrupted; {previous}; continue with: nlpseq {self.name} "
                f"train --model-dir {folder} --resume") from None
        if run_state.non_finite is not None:
            epoch, name, value = run_state.non_finite
            raise NlpseqError(
                f"training stopped: the {name} became {value} in epoch "
                f"{epoch + 1}; nothing was published (the previous model in "
                f"{folder} is untouched); try a lower --learning-rate or a "
                "--clip-norm")
        LOG.info("%s", run_state.summary())
        return run_state.seconds

    def _publish(self, folder, staging, valid, seconds):
        """Evaluate on the validation data, save, swap the folder in."""
        metrics = self.evaluate_data(valid)
        metrics["training_seconds"] = round(seconds, 1)
        metrics["parameters"] = int(self.model.count_params())
        self.model.save(staging / MODEL)
        metrics["model_bytes"] = (staging / MODEL).stat().st_size
        write_json_atomic(staging / "metrics.json", metrics)
        # (the model is final: the report changes nothing of it, and an
        # error in it is a warning, never a failed training)
        from nlpseq.report import report_after_training

        report_after_training(self, folder, staging, valid, metrics)
        fault_point("before-publish")
        folder.publish()
        self.folder = folder
        LOG.info("Saved %s (%s; %s parameters, trained in %.0f s)", folder,
                 self.headline(metrics), f"{metrics['parameters']:,}",
                 seconds)
        self.metrics = metrics

    # -- loading -------------------------------------------------------------

    @classmethod
    def load(cls, model_dir):
        """The task saved in ``model_dir``.

        Raises:
            NlpseqError: folder missing, of another app, or corrupted.
        """
        import zipfile

        from nlpseq.folder import _KerasFile

        folder = ModelFolder(model_dir)
        # (one model's files, even while another one is being published)
        entries, files = folder.read(app=cls.name,
                                     names=(MODEL, PREPROCESSOR))
        try:
            config = merge(cls.all_settings(),
                           {k: v for k, v in entries.get("config", {}).items()
                            if v is not None},
                           source=str(folder.path / CONFIG))
        except NlpseqError as error:
            raise NlpseqError(f"{folder.path / CONFIG}: corrupted "
                              f"({error})") from None
        task = cls(config, cls.preprocessor_class.load(
            folder.path / PREPROCESSOR, config, files[PREPROCESSOR]))
        weights = _KerasFile(files.pop(MODEL))
        if not zipfile.is_zipfile(weights):
            raise NlpseqError(
                f"{folder}: corrupted model ({MODEL} is damaged: not a whole "
                ".keras file, e.g. cut short; train or copy the model "
                "again)")
        try:
            task.model = task.build_in_precision()
            with warnings.catch_warnings():
                # (Keras warns of each layer whose weights do not fit before
                # it raises; the error below says it once)
                warnings.simplefilter("ignore")
                task.model.load_weights(weights)
        except NlpseqError:
            raise
        except zipfile.BadZipFile as error:
            raise NlpseqError(
                f"{folder}: corrupted model ({MODEL} is damaged: {error}; "
                "train or copy the model again)") from None
        except Exception as error:  # noqa: BLE001 (any damage to the files)
            reason = str(error).splitlines()[0] if str(error) else ""
            reason = reason.rstrip(": ")
            if len(reason) > 200:
                reason = reason[:197] + "..."
            raise NlpseqError(
                f"{folder}: corrupted model ({MODEL} does not hold the "
                f"weights of this {cls.name} model: {type(error).__name__}: "
                f"{reason})") from None
        task.folder = folder
        return task

    # -- predicting, evaluating, exporting -----------------------------------

    def predict(self, texts, **options):
        """Records for ``texts`` (a list of strings; a single string is one
        text and gives one record). ``options`` are the ``predict``
        options of the task (e.g. ``top_k``)."""
        if isinstance(texts, str):
            return self.predict([texts], **options)[0]
        return list(self.predict_stream(texts, **options))

    __call__ = predict

    def predict_stream(self, lines, chunk=1024, **options):
        """Records for an iterable of strings, ``chunk`` at a time: input
        of any size in constant memory. ``options`` (the ``predict``
        options) apply to this call only."""
        if isinstance(lines, str):
            raise TypeError("predict_stream takes an iterable of strings; "
                            "use predict() for one text")
        saved = self.options
        if options:
            self.options = dict(saved, **merge(
                self.predict_settings, None, options, source="options"))
        lines = iter(lines)
        done, self._warned_empty = 0, False
        try:
            while True:
                block, error = [], None
                try:
                    for line in itertools.islice(lines, chunk):
                        block.append(line)
                except Exception as caught:  # noqa: BLE001 (re-raised below)
                    # (a bad line: what came before it is predicted first)
                    error = caught
                yield from self._predict_block(block, done)
                done += len(block)
                if error is not None:
                    raise error
                if len(block) < chunk:
                    return
        finally:
            self.options = saved

    def _predict_block(self, block, done):
        """Records of the inputs ``block`` (``done`` inputs came before
        them): empty inputs get :meth:`empty_record`, with one warning per
        call, and the others :meth:`predict_lines`."""
        empty = [index for index, line in enumerate(block)
                 if not line.strip()]
        records = {index: self.empty_record(block[index])
                   for index in empty}
        if not any(record is not None for record in records.values()):
            if block:
                yield from self.predict_lines(block)
            return
        first = next(i for i in empty if records[i] is not None)
        if not self._warned_empty:
            self._warned_empty = True
            LOG.warning("input %d is empty: its record has an empty result "
                        "(no prediction), as has every empty input",
                        done + first + 1)
        rest = [line for index, line in enumerate(block)
                if records.get(index) is None]
        predicted = iter(self.predict_lines(rest) if rest else ())
        for index in range(len(block)):
            record = records.get(index)
            yield record if record is not None else next(predicted)

    def evaluate(self, data):
        """The metrics of the model on ``data``: a data SPEC (a path,
        ``tfds:...``) or data as read by :meth:`read_data`."""
        if isinstance(data, (str, Path)):
            data = self.read_data(str(data), "evaluate")
        LOG.info("Evaluating on %s", self.describe_data(data),
                 extra={"progress": True})
        return self.evaluate_data(data)

    def report(self, data=None, output=None):
        """Write the HTML report of the model (:mod:`nlpseq.report`): one
        self-contained, offline file with the settings, data summary,
        training curves and the family's evaluation on ``data``.

        Args:
            data: a data SPEC, or data as read by :meth:`read_data`
                (default: the validation data the model was trained with,
                when it can be found; otherwise the evaluation sections are
                skipped with a note).
            output: the HTML file (default: ``<model dir>/report.html``).

        Returns:
            The path written.
        """
        from nlpseq.report import write_report

        return write_report(self, data=data, output=output)

    def export(self, output=None, version=None, format="savedmodel"):
        """Write a SavedModel for TensorFlow Serving, or the model as ONNX
        (``format="onnx"``: ``model.onnx`` and ``preprocessor.json``, see
        :mod:`nlpseq.onnx_export`), in ``<output>/<version>/``.

        Args:
            output: the base folder (default: ``<model dir>/export``).
            version: the version number (default: one above the highest
                there, or 1).
            format: ``"savedmodel"`` or ``"onnx"`` (needs the ``onnx``
                extra).

        Returns:
            The path written.
        """
        import keras

        from nlpseq.folder import EXPORT, FolderLock
        from nlpseq.onnx_export import check_format

        check_format(format)
        if output is None and self.folder is None:
            raise NlpseqError("export: give an output folder (this model "
                              "was not loaded from a model folder)")
        output = Path(output) if output else self.folder.path / EXPORT
        if output.exists() and not output.is_dir():
            raise NlpseqError(f"--output {output}: not a folder")
        # One export at a time into a base folder, and none into a model
        # folder while a new model is swapped in for it (which carries its
        # export/ versions over): the lock waits for the other one.
        if self.folder is not None and os.path.abspath(output) == \
                os.path.abspath(self.folder.path / EXPORT):
            lock = self.folder.export_lock()
        else:
            named = Path(os.path.abspath(output))
            lock = FolderLock(named.with_name(f".{named.name}.lock"),
                              output).acquire(wait=True)
        with lock:
            return self._export_locked(keras, output, version, format)

    def _export_locked(self, keras, output, version, format="savedmodel"):
        output.mkdir(parents=True, exist_ok=True)
        for stale in output.glob(".*.partial*"):  # (of a killed export)
            shutil.rmtree(stale, ignore_errors=True)
        if version is None:
            numbers = [int(p.name) for p in output.iterdir()
                       if p.is_dir() and p.name.isdigit()]
            version = max(numbers, default=0) + 1
        target = output / str(version)
        exists = NlpseqError(
            f"--version {version}: {target} exists already; give another "
            "version number")
        if target.exists():
            raise exists
        partial = Path(tempfile.mkdtemp(prefix=f".{version}.partial-",
                                        dir=output))
        temporary = partial / str(version)
        try:
            if format == "onnx":
                from nlpseq.onnx_export import write_onnx

                temporary.mkdir()
                write_onnx(self, temporary)
            else:
                self._saved_model_archive(keras).write_out(str(temporary),
                                                           verbose=False)
                self._write_export_info(temporary)
            fault_point("export")
            try:
                os.rename(temporary, target)
            except OSError as error:
                if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise exists from None
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return target

    def _write_export_info(self, folder):
        """Write :data:`EXPORT_INFO` into the SavedModel ``folder``."""
        from nlpseq import __version__

        (folder / EXPORT_INFO.parent).mkdir(exist_ok=True)
        (folder / EXPORT_INFO).write_text(json.dumps(
            {"app": self.name, "family": self.family,
             "nlpseq_version": __version__}, indent=2) + "\n",
            encoding="utf-8")

    def _saved_model_archive(self, keras):
        """The SavedModel of :meth:`export`: the model, the serving layers
        and the family's signatures."""
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        for layer in self.serving_layers():
            archive.track(layer)
        for name, (function, signature) in self.serving_functions().items():
            archive.add_endpoint(name, function, input_signature=signature)
        return archive
