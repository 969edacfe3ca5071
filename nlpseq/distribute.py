"""Training over several devices or processes with ``tf.distribute``.

``--distribute`` chooses the strategy (:func:`start`):

- ``none``: no strategy; :meth:`Trainer.fit <nlpseq.tasks.trainer.Trainer.fit>`
  runs ``model.fit``.
- ``mirrored``: one process, a replica per device (``--devices``: every GPU,
  or the CPU split into N logical devices).
- ``multi-worker``: one process per worker, as ``TF_CONFIG`` describes
  (:func:`cluster`); the chief (task 0 of ``chief``, else ``worker`` 0) alone
  writes the model folder.

Both strategies train through one loop, :func:`fit`: each global batch of
:func:`~nlpseq.training.padded_batches` (``--batch-size`` examples) is split
across the replicas, every replica runs the model's own ``train_step`` (its
compiled loss, metrics and optimizer) and the Keras callbacks are driven as
``model.fit`` drives them, so checkpoints, ``--resume``, early stopping,
learning-rate decay, weight averaging and the logs behave as in a single
process.

Resuming: every process loads the checkpoint from the chief's staging folder
(the model folder's storage must be shared); a worker other than the chief
trains in a private temporary copy (:func:`private_folder`) that is removed
when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile

from nlpseq.errors import NlpseqError
from nlpseq.folder import fault_point
from nlpseq.log import LOG

#: Seconds without a heartbeat after which the coordination service declares
#: a worker dead and every other worker's collective operations fail.
HEARTBEAT_SECONDS = 10
#: Seconds a worker waits for the others to join at start-up.
JOIN_SECONDS = 300
#: Seconds a worker that is done waits at exit for the others to be done
#: (the chief evaluates and publishes after the last epoch); a worker that
#: dies ends the wait at once.
EXIT_SECONDS = 1800


def cluster(environ=None) -> dict:
    """The job described by ``TF_CONFIG``, checked: ``{"cluster": {job:
    [address, ...]}, "task": {"type": job, "index": i}}``.

    Raises:
        NlpseqError: missing, not JSON, no ``cluster`` or ``task``, or a task
            that is not in the cluster.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise NlpseqError(
            "--distribute multi-worker: TF_CONFIG is not set; give every "
            "worker the cluster and its own task, e.g. TF_CONFIG='{\"cluster"
            "\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": "
            "{\"type\": \"worker\", \"index\": 0}}'")
    try:
        spec = json.loads(text)
    except ValueError as error:
        raise NlpseqError(f"TF_CONFIG: not valid JSON ({error})") from None
    if not isinstance(spec, dict):
        raise NlpseqError("TF_CONFIG: expected a JSON object with 'cluster' "
                          "and 'task'")
    jobs, task = spec.get("cluster"), spec.get("task")
    expected = ("(expected {\"worker\": [\"host:port\", ...]}, and "
                "optionally \"chief\": [\"host:port\"])")
    if not isinstance(jobs, dict) or not jobs:
        raise NlpseqError(f"TF_CONFIG: no 'cluster' {expected}")
    for job, addresses in jobs.items():
        if not isinstance(addresses, list) or not addresses or not all(
                isinstance(x, str) and x.strip() for x in addresses):
            raise NlpseqError(
                f"TF_CONFIG: cluster job '{job}' is {json.dumps(addresses)}; "
                f"expected a non-empty list of \"host:port\" addresses "
                f"{expected}")
    unknown = sorted(set(jobs) - {"chief", "worker"})
    if unknown:
        raise NlpseqError(f"TF_CONFIG: cluster job '{unknown[0]}' is not "
                          "one of 'chief' and 'worker'")
    if not isinstance(task, dict) or "type" not in task:
        raise NlpseqError("TF_CONFIG: no 'task' (expected {\"type\": "
                          "\"worker\", \"index\": N})")
    kind, index = task["type"], task.get("index", 0)
    if kind not in jobs:
        raise NlpseqError(f"TF_CONFIG: task type '{kind}' is not a job of "
                          f"the cluster ({', '.join(sorted(jobs))})")
    if not isinstance(index, int) or isinstance(index, bool):
        raise NlpseqError(f"TF_CONFIG: task index {json.dumps(index)} is "
                          "not an integer (expected \"index\": N, from 0)")
    if not 0 <= index < len(jobs[kind]):
        raise NlpseqError(
            f"TF_CONFIG: task index {index!r} is out of range: the cluster "
            f"has {len(jobs[kind])} '{kind}' address(es), indexes 0 to "
            f"{len(jobs[kind]) - 1}")
    return {"cluster": jobs, "task": {"type": kind, "index": index}}


def chief_task(jobs) -> tuple:
    """The chief's ``(type, index)`` in the cluster ``jobs``."""
    return ("chief", 0) if "chief" in jobs else ("worker", 0)


def is_chief(config, resumed=None) -> bool:
    """Whether this process writes the model folder: always, but for a
    multi-worker job's workers other than the chief. ``resumed``: the
    staging folder of a run being resumed, whose saved ``distribute``
    setting counts (a worker restarted with ``--resume`` alone is still
    one of the job's workers)."""
    mode = config["distribute"]
    if resumed is not None:
        try:
            saved = json.loads((resumed / "config.json").read_text("utf-8"))
            mode = saved["config"].get("distribute", mode)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # (the resume itself says what is wrong with the folder)
    if mode != "multi-worker":
        return True
    spec = cluster()
    task = spec["task"]
    return (task["type"], task["index"]) == chief_task(spec["cluster"])


def start(config):
    """Start TensorFlow (quietly) with the strategy of ``config``; the
    strategy, or ``None`` with ``--distribute none``.

    Raises:
        NlpseqError: ``--jit-compile`` with a strategy; bad ``TF_CONFIG``;
            more ``--devices`` than GPUs; or a
            process whose TensorFlow started already, too late to split the
            CPU or to join a cluster.
    """
    from nlpseq.runtime import import_tensorflow

    mode = config["distribute"]
    if config.get("devices") and mode != "mirrored":
        raise NlpseqError(f"--devices {config['devices']}: only with "
                          f"--distribute mirrored (got {mode})")
    if mode == "none":
        import_tensorflow()
        return None
    if config.get("jit_compile"):
        # (XLA compiles the replicated step for one device and fails on
        # the others' variables)
        raise NlpseqError(
            f"--jit-compile: not available with --distribute {mode} (XLA "
            "cannot compile the step replicated over devices); drop one of "
            "them")
    made = []
    if mode == "mirrored":
        import_tensorflow(lambda tf: made.append(_mirrored(
            tf, config["devices"])))
    else:
        spec = cluster()
        # (a lost worker makes TensorFlow's runtime log the failure of each
        # collective operation; the error raised says it once)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import_tensorflow(lambda tf: made.append(_multi_worker(tf, spec)))
    strategy = made[0]
    LOG.info("Distributed training (%s): %d replica(s) in sync", mode,
             strategy.num_replicas_in_sync)
    return strategy


def _mirrored(tf, count):
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if count > len(gpus):
            raise NlpseqError(f"--devices {count}: this machine has "
                              f"{len(gpus)} GPU(s)")
        names = [f"/gpu:{i}" for i in range(count or len(gpus))]
    elif count:
        _split_cpu(tf, count)
        names = [f"/cpu:{i}" for i in range(count)]
    else:
        names = ["/cpu:0"]
    return tf.distribute.MirroredStrategy(names)


def _split_cpu(tf, count):
    """Make ``count`` logical devices of the CPU."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if len(tf.config.get_logical_device_configuration(cpu) or [None]) \
            == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise NlpseqError(
            f"--devices {count}: TensorFlow has already started in this "
            "process, and the CPU can be split into logical devices only "
            "before that; train in a new process (e.g. the nlpseq command)"
        ) from None


def _multi_worker(tf, spec):
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = spec["cluster"]
    kind, index = chief_task(jobs)
    if context.context()._context_handle is not None:
        raise NlpseqError(
            "--distribute multi-worker: TensorFlow has already started in "
            "this process, and a worker must join its cluster before that; "
            "train in a new process (e.g. the nlpseq command)")
    # (TensorFlow's coordination service, configured as the strategy would,
    # with a bounded heartbeat: a dead worker fails the others' next
    # collective operation instead of hanging them)
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{kind}/replica:0/"
        f"task:{index}",
        heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
        cluster_register_timeout_in_ms=JOIN_SECONDS * 1000,
        shutdown_barrier_timeout_in_ms=EXIT_SECONDS * 1000,
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(
            name=job, num_tasks=len(jobs[job]))
            for job in ("chief", "worker") if job in jobs])
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation
        .RING)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver, communication_options=options)
    except tf.errors.OpError as error:
        raise NlpseqError(f"--distribute multi-worker: the cluster did not "
                          f"come together: {_first_line(error)}") from None


def scope(strategy):
    """``strategy.scope()``, or nothing without a strategy."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


@contextlib.contextmanager
def private_folder(folder, resume):
    """A private model folder for a worker other than the chief, removed at
    the end. With ``resume`` it holds a copy of the chief's interrupted run
    (``folder``'s staging folder, which must be readable here)."""
    from nlpseq.folder import ModelFolder

    root = tempfile.mkdtemp(prefix="nlpseq-worker-")
    try:
        own = ModelFolder(os.path.join(root, folder.path.name or "model"))
        if resume:
            if not folder.resumable():
                raise NlpseqError(
                    f"--resume: no interrupted run of {folder.path} to "
                    f"continue (looked for {folder.staging}; every worker "
                    "reads the chief's run: put the model folder on storage "
                    "they share)")
            own.staging.mkdir()
            for name in ("config.json", "preprocessor.json", "history.csv",
                         "checkpoints"):
                source = folder.staging / name
                if source.is_dir():
                    shutil.copytree(source, own.staging / name)
                elif source.is_file():
                    shutil.copy2(source, own.staging / name)
        yield own
    finally:
        shutil.rmtree(root, ignore_errors=True)


def local_model(task, compile_model):
    """Move the trained weights of ``task.model`` (built under a strategy)
    into the same model built without one and compiled by
    ``compile_model()`` (the trainer's), for evaluation, saving and
    prediction in this process alone."""
    weights = task.model.get_weights()
    task.model = task.build_in_precision()
    compile_model()
    task.model.set_weights(weights)


def fit(model, x, validation_data, epochs, initial_epoch, steps_per_epoch,
        callbacks, verbose, shuffle=False):
    """Train ``model`` (built and compiled in its strategy's scope) as
    ``model.fit(x, validation_data=..., ...)`` would: the same callbacks,
    logs and history, over the replicas of its strategy.

    Raises:
        NlpseqError: a worker of the job was lost (one line).
    """
    import tensorflow as tf

    strategy = model.distribute_strategy
    try:
        with strategy.scope():
            return _Loop(model, strategy).fit(
                x, validation_data, epochs, initial_epoch, steps_per_epoch,
                callbacks, verbose)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.InternalError) as error:
        message = _message(error)
        lost_worker = not isinstance(error, tf.errors.InternalError) or \
            "unhealthy" in message or "heartbeat" in message
        if not lost_worker or not isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        # (the coordination service names the tasks after "unhealthy")
        lost = sorted(set(re.findall(
            r"/job:(\w+)/replica:\d+/task:(\d+)",
            message.split("unhealthy", 1)[1]))) if "unhealthy" in message \
            else []
        who = ", ".join(f"{job} {task}" for job, task in lost) or "a worker"
        raise NlpseqError(
            f"training stopped: {who} of the job stopped responding "
            f"({type(error).__name__}); restart every worker with --resume "
            "to continue from the last checkpoint") from None


def _message(error):
    return getattr(error, "message", None) or str(error)


def _first_line(error):
    text = _message(error)
    line = text.strip().splitlines()[0] if text.strip() else \
        type(error).__name__
    return line if len(line) <= 300 else line[:297] + "..."


class _Loop:
    """The training loop of :func:`fit`."""

    def __init__(self, model, strategy):
        import tensorflow as tf

        self.model, self.strategy = model, strategy
        # (no XLA: start() refuses --jit-compile with a strategy)
        self.train_step = tf.function(model.train_step,
                                      reduce_retracing=True)
        self.test_step = tf.function(model.test_step, reduce_retracing=True)
        self.train_function = tf.function(self._train, reduce_retracing=True)
        self.test_function = tf.function(self._test, reduce_retracing=True)

    def _train(self, iterator):
        self.strategy.run(self.train_step, args=(next(iterator),))
        # (metric variables sum over the replicas when read here)
        return self.model.get_metrics_result()

    def _test(self, batch):
        self.strategy.run(self.test_step, args=(batch,))
        return self.model.get_metrics_result()

    def distribute(self, dataset):
        import tensorflow as tf

        options = tf.data.Options()
        options.deterministic = True
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(
            dataset.with_options(options))

    def fit(self, x, validation_data, epochs, initial_epoch, steps_per_epoch,
            callbacks, verbose):
        import keras

        model = self.model
        model._symbolic_build(data_batch=next(iter(x.take(1))))
        callbacks = keras.callbacks.CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0,
            verbose=verbose, epochs=epochs, steps=steps_per_epoch,
            model=model)
        train = iter(self.distribute(x))
        valid = self.distribute(validation_data) \
            if validation_data is not None else None
        model.stop_training = False
        callbacks.on_train_begin()
        training_logs = None
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            logs = {}
            for step in range(steps_per_epoch):
                fault_point("step")
                callbacks.on_train_batch_begin(step)
                logs = self.train_function(train)
                callbacks.on_train_batch_end(step, logs)
                if model.stop_training:
                    break
            epoch_logs = _numbers(logs)
            if valid is not None:
                epoch_logs.update({f"val_{name}": value for name, value
                                   in self.evaluate(valid, callbacks).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if model.stop_training:
                break
        if epochs > initial_epoch:
            model.optimizer.finalize_variable_values(model.trainable_weights)
        callbacks.on_train_end(logs=training_logs)
        return model.history

    def evaluate(self, dataset, callbacks):
        callbacks.on_test_begin()
        self.model.reset_metrics()
        logs = {}
        for step, batch in enumerate(dataset):
            callbacks.on_test_batch_begin(step)
            logs = self.test_function(batch)
            callbacks.on_test_batch_end(step, logs)
        logs = _numbers(logs)
        callbacks.on_test_end(logs)
        return logs


def _numbers(logs):
    return {name: float(value) for name, value in logs.items()}
