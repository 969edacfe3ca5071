"""The training of a task: :class:`Trainer`.

A :class:`~nlpseq.tasks.base.Task` is what a model family declares and what
a loaded model does; a :class:`Trainer` runs one training of it into a model
folder, in steps:

- :meth:`Trainer.train`: take the folder's writer lock and check what the
  run would replace (:class:`~nlpseq.folder.ModelFolder`); a fresh run that
  fails removes its staging folder unless it left a checkpoint;
- :meth:`Trainer.prepare`: the settings of a resumed run (:meth:`resumed`)
  or of an ``--init-from`` language model
  (:meth:`~nlpseq.transfer.Source.adopt`), and the data, read and checked
  before TensorFlow starts and before anything on disk changes;
- :meth:`Trainer.run`: the preprocessor (fitted, taken from the language
  model, or the interrupted run's), then :meth:`build_or_resume`
  (build, copy the transferred weights, :meth:`compile`, or load the last
  checkpoint), :meth:`fit` (length-bucketed batches, :meth:`callbacks`)
  and :meth:`publish` (evaluate, save, swap the folder in).

``Task.train`` is ``Trainer.train`` for its class; the family hooks it calls
(``read_data``, ``encode``, ``build_model``, ``prepare_model``,
``compile_arguments``, ``evaluate_data``...) are the task's.
"""

from __future__ import annotations

import json

from nlpseq.errors import NlpseqError
from nlpseq.folder import (
    CONFIG,
    MODEL,
    PREPROCESSOR,
    ModelFolder,
    fault_point,
    folder_config,
    write_json_atomic,
)
from nlpseq.log import LOG


class Trainer:
    """Trains ``task`` (a :class:`~nlpseq.tasks.base.Task` with its
    configuration; its preprocessor and model are set by :meth:`run`)."""

    def __init__(self, task):
        self.task = task
        self.config = task.config
        #: The ``--init-from`` or ``--teacher`` source of a fresh run.
        self.source = None
        #: ``--unlabelled``'s texts (a student's; read by
        #: :meth:`training_data`).
        self.unlabelled = []

    # -- the run -------------------------------------------------------------

    @classmethod
    def train(cls, task_class, config, model_dir, resume=False, epochs=None,
              verbose=None, overwrite=False):
        """Train a model of ``task_class`` and publish it in ``model_dir``
        (see :meth:`nlpseq.tasks.base.Task.train`).

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
                return cls.run(task_class, config, own, resume, epochs,
                               verbose)
        folder.check_training(task_class.name, resume, overwrite)
        with folder.lock():
            folder.check_training(task_class.name, resume, overwrite,
                                  locked=True)
            try:
                return cls.run(task_class, config, folder, resume, epochs,
                               verbose)
            except BaseException:
                if not resume:
                    folder.discard_failed()
                raise

    @classmethod
    def prepare(cls, task_class, config, folder, resume, epochs):
        """``(trainer, state, train, valid)``: the run's settings (an
        interrupted run's own, or adopted from the ``trainer.source`` of an
        ``--init-from`` :class:`~nlpseq.transfer.Source` or a ``--teacher``
        :class:`~nlpseq.distillation.Teacher`), its checkpoint state when
        resuming, and its data, read and checked. Nothing on disk changes
        and TensorFlow is not started."""
        state = source = None
        if resume:
            staging = folder.start(resume=True)  # (changes nothing on disk)
            config, state = cls.resumed(task_class, staging, epochs, config)
        elif config.get("teacher"):
            from nlpseq.distillation import Teacher

            source = Teacher(config["teacher"])
            source.check_folder(folder.path)
            config = source.adopt(config, task_class)
        elif config.get("init_from"):
            from nlpseq.transfer import Source

            source = Source(config["init_from"])
            config = source.adopt(config, task_class)
        trainer = cls(task_class(config))
        trainer.source = source
        train, valid = trainer.training_data()
        return trainer, state, train, valid

    @classmethod
    def run(cls, task_class, config, folder, resume, epochs, verbose):
        """The steps of :meth:`train`, the folder's lock held."""
        from nlpseq import distribute

        trainer, state, train, valid = cls.prepare(
            task_class, config, folder, resume, epochs)
        task, config, source = trainer.task, trainer.config, trainer.source
        strategy = distribute.start(config)
        import keras

        if source is not None:
            from nlpseq.tasks import load

            source.load(load)
        staging = folder.start(resume=resume)
        keras.utils.set_random_seed(config["seed"])
        trainer.set_preprocessor(staging, resume, source, train)
        with distribute.scope(strategy):
            trainer.build_or_resume(staging / "checkpoints", resume, source)
            seconds = trainer.fit(train, valid, staging, state, verbose,
                                  folder)
        if strategy is not None:
            distribute.local_model(task, trainer.compile)
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
        trainer.publish(folder, staging, valid, seconds)
        return task

    def training_data(self):
        """The ``(train, valid)`` data of the configuration: ``--data``
        (or the app's built-in sample), and ``--valid``, the sample's own
        validation file or a held-out ``--valid-split`` of the data."""
        config, task = self.config, self.task
        spec = config["data"] or str(task.default_data)
        train = task.read_data(spec, "train")
        valid_spec, shown = config["valid"], config["valid"]
        if valid_spec is None and config["data"] is None and \
                task.default_valid is not None:
            valid_spec = str(task.default_valid)
            shown = "the built-in validation sample"
        if valid_spec:
            valid = task.read_data(valid_spec, "valid")
        else:
            train, valid = task.split_data(train, config["valid_split"])
        LOG.info("Training data: %s from %s", task.describe_data(train),
                 config["data"] or "the built-in sample")
        LOG.info("Validation data: %s from %s", task.describe_data(valid),
                 shown or "a held-out part of the training data")
        if config.get("unlabelled"):
            from nlpseq.distillation import read_unlabelled

            self.unlabelled = read_unlabelled(config)
        return train, valid

    def set_preprocessor(self, staging, resume, source, train):
        """The interrupted run's preprocessor, or one fitted on ``train``
        (or taken from the language model ``source``), saved in
        ``staging`` with the run's ``config.json``."""
        task, config = self.task, self.config
        preprocessor_class = type(task).preprocessor_class
        if resume:
            task.preprocessor = preprocessor_class.load(
                staging / PREPROCESSOR, config)
            return
        task.preprocessor = (
            preprocessor_class.fit(train, config) if source is None
            else source.make_preprocessor(preprocessor_class, train, config))
        task.preprocessor.save(staging / PREPROCESSOR)
        write_json_atomic(staging / CONFIG, folder_config(
            task.name, type(task), config))

    @staticmethod
    def resumed(task_class, staging, epochs, given=None):
        """The configuration and state of the interrupted run in
        ``staging``.

        Raises:
            NlpseqError: a run of another app, or settings in ``given`` (a
                :class:`~nlpseq.config.Config` of the settings given) other
                than ``epochs`` that differ from the run's own.
        """
        saved = json.loads((staging / CONFIG).read_text("utf-8"))
        if saved.get("app") != task_class.name:
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
        path = staging / "checkpoints" / "state.json"
        try:
            state = json.loads(path.read_text("utf-8"))
            problem = None if isinstance(state, dict) and isinstance(
                state.get("epochs_done"), int) else "not a run state"
        except (OSError, ValueError) as error:
            problem = type(error).__name__
        if problem:
            raise NlpseqError(f"--resume: cannot read {path} ({problem}); "
                              "start the run again without --resume")
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

        return layer_groups(self.task)

    # -- the model -----------------------------------------------------------

    def compile(self):
        """Compile the task's model: Adam (or the recipe's
        :class:`~nlpseq.schedules.GroupedAdam` over the layer groups) with
        clipping and weight averaging, the family's loss and metrics."""
        import keras

        from nlpseq.schedules import GroupedAdam

        task, config = self.task, self.config
        average = config["weight_average"]
        groups = self.layer_groups()
        options = {"groups": groups} if groups else {}
        optimizer = (GroupedAdam if groups else keras.optimizers.Adam)(
            config["learning_rate"],
            global_clipnorm=config["clip_norm"] or None,
            use_ema=average > 0, ema_momentum=average, **options)
        # (under mixed_float16 Keras wraps the optimizer in a
        # LossScaleOptimizer: the model was built under that policy)
        jit_compile = config.get("jit_compile", False)
        task.model.compile(optimizer=optimizer, jit_compile=jit_compile,
                           **task.compile_arguments())
        if jit_compile:
            self.explain_xla_failure()

    def explain_xla_failure(self):
        """Make XLA's refusal to compile the training step (at its first
        call) one :class:`NlpseqError` naming the app."""
        import tensorflow as tf

        name = self.task.name
        model = self.task.model
        make = model.make_train_function
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
                        f"of the {name} app ({reason}); train without "
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

    def build_or_resume(self, checkpoints, resume, source=None):
        """Build and compile the model; start it from ``source`` (an
        ``--init-from`` :class:`~nlpseq.transfer.Source`), or when resuming,
        load the last checkpoint's weights and optimizer state into it."""
        from nlpseq.training import LAST

        task = self.task
        task.model = task.build_in_precision()
        if source is not None:
            source.copy_into(task)
        self.compile()
        if resume:
            task.model.optimizer.build(task.model.trainable_variables)
            try:
                task.model.load_weights(checkpoints / LAST)
            except Exception as error:  # noqa: BLE001 (a damaged file)
                raise NlpseqError(
                    f"--resume: cannot read {checkpoints / LAST} "
                    f"({type(error).__name__}); start the run again "
                    "without --resume") from None

    # -- the schedule and the callbacks --------------------------------------

    def lr_schedule(self):
        """``step`` or ``slanted`` (``auto``: slanted with ``--init-from``)."""
        schedule = self.config.get("lr_schedule", "step")
        if schedule == "auto":
            return "slanted" if self.config.get("init_from") else "step"
        return schedule

    def recipe(self, steps_per_epoch):
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

    def monitor(self, state=None):
        """``(name in the epoch's logs, "min" or "max")`` of what picks the
        kept epoch (``--monitor``); a resumed run keeps its own."""
        if state is not None and state.get("monitor"):
            return state["monitor"], state.get("mode", "min")
        metric = self.config.get("monitor", "loss")
        return ("val_loss", "min") if metric == "loss" else (
            f"val_{metric}", "max")

    def callbacks(self, staging, run_state, resume, steps_per_epoch,
                  verbose=2, valid=None):
        """The Keras callbacks of a run: per-epoch reseeding, the learning
        rate, weight averaging, the task's validation metric
        (``--monitor``), checkpoints and early stopping (``run_state``),
        the CSV history, TensorBoard, progress lines."""
        import keras

        from nlpseq.training import (
            EpochSeeds,
            Progress,
            ValidationMetric,
            restore_ema_swap,
        )

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
        recipe = self.recipe(steps_per_epoch)
        schedule = [keras.callbacks.LearningRateScheduler(
            lambda epoch, _: rate * decay ** max(0, epoch + 1 - after))]
        if recipe is not None:
            schedule = ([recipe] if self.lr_schedule() == "slanted"
                        else schedule + [recipe])
        measure = [] if valid is None or run_state.monitor in (
            "val_loss", "loss") else [ValidationMetric(
                self.task, valid, run_state.monitor.removeprefix("val_"))]
        return [
            EpochSeeds(config["seed"]),
            *schedule,
            *averaging,
            # (the metric on the weights the epoch is validated with,
            # before the history writes the epoch's row, which is before the
            # checkpoint: a run cut off between the two trims the row)
            *measure,
            keras.callbacks.CSVLogger(str(staging / "history.csv"),
                                      append=resume),
            run_state,
            keras.callbacks.TensorBoard(str(staging / "logs")),
            # (a progress bar shows it otherwise)
            *([Progress(steps_per_epoch)] if verbose != 1 else []),
        ]

    # -- fitting and publishing ----------------------------------------------

    def training_arrays(self, train, staging):
        """``(x, y)``: the encoded training data; a student's targets are
        its teacher's probabilities, of the ``--unlabelled`` texts too
        (:func:`~nlpseq.distillation.soft_targets`)."""
        task = self.task
        x, y = task.encode(train)
        if not self.config.get("teacher"):
            return x, y
        from nlpseq.distillation import TARGETS, Teacher, soft_targets
        from nlpseq.tasks import load

        # (a resumed run needs the teacher only without its kept targets)
        teacher = self.source or (lambda: Teacher(self.config["teacher"]))
        texts = list(train.texts) + list(self.unlabelled)
        return (x + task.encode_texts(self.unlabelled),
                soft_targets(teacher, texts, staging / TARGETS, load))

    def batches(self, train, valid, first_epoch, staging):
        """``(x_train, y_train, train_batches, valid_batches)``: the encoded
        data in length-bucketed, padded batches."""
        from nlpseq.training import padded_batches

        config, task = self.config, self.task
        x_train, y_train = self.training_arrays(train, staging)
        x_valid, y_valid = task.encode(valid)
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
        return x_train, y_train, train_batches, valid_batches

    def fit(self, train, valid, staging, state, verbose, folder):
        """Run the remaining epochs; the seconds the epochs took."""
        import sys

        from nlpseq.training import (
            RunState,
            average_epochs,
            batches_per_epoch,
            kept_checkpoint,
            kept_epoch,
            trim_history,
        )

        config, task = self.config, self.task
        checkpoints = staging / "checkpoints"
        first_epoch = state["epochs_done"] if state else 0
        if state is not None:
            trim_history(staging / "history.csv", first_epoch)
        if state is not None and (state["stopped_early"]
                                  or first_epoch >= config["epochs"]):
            # (the average, when asked for, sets every weight)
            if not (config.get("average_last") and average_epochs(
                    task.model, checkpoints, kept_epoch(state, config["keep"]),
                    config["average_last"])):
                task.model.load_weights(kept_checkpoint(checkpoints,
                                                        config["keep"]))
            return state.get("training_seconds", 0.0)
        x_train, y_train, train_batches, valid_batches = self.batches(
            train, valid, first_epoch, staging)
        if state is None:
            task.prepare_model(x_train, y_train)
        monitor, mode = self.monitor(state)
        run_state = RunState(checkpoints, patience=config["patience"],
                             keep=config["keep"], state=state,
                             monitor=monitor, mode=mode,
                             average_last=config.get("average_last"))
        if verbose is None:
            verbose = 1 if sys.stdout.isatty() else 2
        LOG.info("Training %d..%d of %d epochs; checkpoints in %s",
                 first_epoch + 1, config["epochs"], config["epochs"],
                 checkpoints)
        steps = batches_per_epoch(len(x_train), config["batch_size"])
        self.fit_epochs(
            train_batches, valid_batches, first_epoch, steps,
            self.callbacks(staging, run_state, state is not None, steps,
                           verbose, valid), verbose, run_state, folder)
        LOG.info("%s", run_state.summary())
        return run_state.seconds

    def fit_epochs(self, train_batches, valid_batches, first_epoch, steps,
                   callbacks, verbose, run_state, folder):
        """``model.fit`` (or :func:`nlpseq.distribute.fit` under a
        strategy) over the epochs from ``first_epoch``; an interruption or
        a loss that is not finite is one :class:`NlpseqError`."""
        config, task = self.config, self.task
        fit = task.model.fit
        if config["distribute"] != "none":
            import functools

            from nlpseq import distribute

            fit = functools.partial(distribute.fit, task.model)
        try:
            fit(train_batches, validation_data=valid_batches,
                epochs=config["epochs"], initial_epoch=first_epoch,
                steps_per_epoch=steps, callbacks=callbacks,
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
                f"interrupted; {previous}; continue with: nlpseq {task.name} "
                f"train --model-dir {folder} --resume") from None
        if run_state.non_finite is not None:
            epoch, name, value = run_state.non_finite
            raise NlpseqError(
                f"training stopped: the {name} became {value} in epoch "
                f"{epoch + 1}; nothing was published (the previous model in "
                f"{folder} is untouched); try a lower --learning-rate or a "
                "--clip-norm")

    def publish(self, folder, staging, valid, seconds):
        """Evaluate on the validation data, save, swap the folder in."""
        task = self.task
        metrics = task.evaluate_data(valid)
        metrics["training_seconds"] = round(seconds, 1)
        metrics["parameters"] = int(task.model.count_params())
        task.model.save(staging / MODEL)
        metrics["model_bytes"] = (staging / MODEL).stat().st_size
        write_json_atomic(staging / "metrics.json", metrics)
        # (the model is final: the report changes nothing of it, and an
        # error in it is a warning, never a failed training)
        from nlpseq.report import report_after_training

        report_after_training(task, folder, staging, valid, metrics)
        fault_point("before-publish")
        folder.publish()
        task.folder = folder
        LOG.info("Saved %s (%s; %s parameters, trained in %.0f s)", folder,
                 task.headline(metrics), f"{metrics['parameters']:,}",
                 seconds)
        task.metrics = metrics


__all__ = ["Trainer"]
