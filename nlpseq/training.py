"""Batching, checkpoints, early stopping and resuming: the training loop's parts.

- :func:`padded_batches` groups token-id sequences of similar length into
  batches padded to their longest member (little padding, fast epochs), in an
  order that depends only on the seed and the epoch, so an interrupted run
  that resumes at epoch ``k`` sees exactly the batches it would have seen.
- :class:`RunState` is the callback that, after every epoch, writes the
  checkpoint (model + optimizer), the best weights and the run's state, stops
  early when the validation loss stops improving, and restores the best
  weights at the end.
- :class:`EpochSeeds` makes the random draws of dropout depend, like the
  batch order, only on the seed and the epoch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nlpseq.folder import (
    fault_point,
    recover_folder,
    replace_folder,
    write_json_atomic,
    write_text_atomic,
)

STATE = "state.json"
LAST = "last.keras"
BEST = "best.weights.h5"
#: An epoch's weights kept for ``--average-last`` (epochs from 1).
EPOCH_WEIGHTS = "epoch-{}.weights.h5"


def pad(sequences, dtype="int32", width=None):
    """Right-pad a list of 1-D arrays with 0 to a ``[n, width]`` array."""
    width = max([len(s) for s in sequences] + [1]) if width is None else width
    out = np.zeros((len(sequences), width), dtype=dtype)
    for row, sequence in enumerate(sequences):
        out[row, :len(sequence)] = sequence[:width]
    return out


def bucket_width(length, smallest=8):
    """The smallest of 8, 12, 16, 24, 32, 48, ... (``2^k`` and
    ``1.5 * 2^k``, from ``smallest``) that holds ``length``: padding to these
    widths gives a batch at most 1.5 times the longest item's length, and a
    few dozen shapes in all (XLA compiles a step once per shape)."""
    width = smallest
    while width < length:
        # (2^k -> 1.5 * 2^k -> 2^(k+1))
        power_of_two = width & (width - 1) == 0
        width += width // 2 if power_of_two else width // 3
    return width


def _longest(lengths, buckets):
    longest = max(list(lengths) + [1])
    return bucket_width(longest) if buckets else longest


def pad_features(items, buckets=False):
    """Pad a batch of one example's features: 1-D arrays to ``[n, time]``,
    2-D ``[time, k]`` arrays (e.g. the characters of each word) to ``[n,
    time, k]``; a tuple of features feature by feature. With ``buckets``,
    each padded axis is :func:`bucket_width` of its longest item."""
    if isinstance(items[0], tuple):
        return tuple(pad_features([item[k] for item in items], buckets)
                     for k in range(len(items[0])))
    if np.ndim(items[0]) == 1:
        return pad(items, width=_longest(map(len, items), buckets))
    steps = _longest([len(i) for i in items], buckets)
    width = _longest([i.shape[1] for i in items], buckets)
    out = np.zeros((len(items), steps, width), dtype="int32")
    for row, item in enumerate(items):
        out[row, :item.shape[0], :item.shape[1]] = item
    return out


def _spec(example):
    if isinstance(example, tuple):
        return tuple(_spec(part) for part in example)
    return tf.TensorSpec((None,) * (np.ndim(example) + 1), tf.int32)


def batch_order(lengths, batch_size, seed, epoch, shuffle=True):
    """Index batches: similar lengths together, batch order shuffled.

    Texts are shuffled, cut into pools of 50 batches, sorted by length within
    each pool and cut into batches; then the batches are shuffled. Without
    ``shuffle`` the texts are simply sorted by length.
    """
    n = len(lengths)
    lengths = np.asarray(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    pool = batch_size * 50
    batches = []
    for start in range(0, n, pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size]
                    for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padded_batches(inputs, targets, batch_size, seed=0, first_epoch=0,
                   epochs=1, shuffle=True, pad_targets=False, buckets=False):
    """A ``tf.data.Dataset`` of ``(ids, targets)`` batches for ``epochs``.

    Args:
        inputs: list of 1-D int arrays (token ids), or of tuples of
            features (1-D, or 2-D ``[time, k]``; see :func:`pad_features`).
        targets: array ``[n]`` (one label per text) or, with ``pad_targets``,
            a list of 1-D arrays (one label per token, or a target sequence
            of its own length), padded with 0 to the longest of the batch.
        batch_size: texts per batch.
        seed, first_epoch, epochs: the batches of epochs ``first_epoch`` to
            ``first_epoch + epochs - 1``, one after the other (``fit`` is
            given ``steps_per_epoch``).
        shuffle: the training order; without it, each epoch is one pass
            sorted by length.
        buckets: pad every variable axis to :func:`bucket_width` of its
            longest item instead of to the longest item (fewer shapes, for
            ``--jit-compile``); the padding is masked.
    """
    lengths = [len(x[0]) if isinstance(x, tuple) else len(x)
               for x in inputs]
    targets_array = None if pad_targets else np.asarray(targets)
    if targets_array is not None and targets_array.ndim > 1:
        # (targets of one fixed width, e.g. a language model's windows: the
        # inputs are as wide, and padding them further would misalign them)
        buckets = False

    def generate():
        for epoch in range(first_epoch, first_epoch + epochs):
            for index in batch_order(lengths, batch_size, seed, epoch,
                                     shuffle):
                x = pad_features([inputs[i] for i in index], buckets)
                if pad_targets:
                    y = [targets[i] for i in index]
                    y = pad(y, width=_longest(map(len, y), buckets))
                else:
                    y = targets_array[index]
                yield x, y

    target_shape = (None, None) if pad_targets else (None,) + (
        targets_array.shape[1:])
    target_dtype = tf.int32 if pad_targets else tf.as_dtype(
        targets_array.dtype)
    signature = (_spec(inputs[0]) if len(inputs) else
                 tf.TensorSpec((None, None), tf.int32),
                 tf.TensorSpec(target_shape, target_dtype))
    count = epochs * (batches_per_epoch(len(inputs), batch_size) if shuffle
                      else math.ceil(len(inputs) / batch_size))
    # (The known length lets ``fit`` run one iterator across the epochs.)
    return tf.data.Dataset.from_generator(
        generate, output_signature=signature).apply(
            tf.data.experimental.assert_cardinality(count)).prefetch(2)


def batches_per_epoch(n, batch_size):
    """How many batches :func:`batch_order` makes of ``n`` texts."""
    pool = batch_size * 50
    full, rest = divmod(n, pool)
    return full * 50 + math.ceil(rest / batch_size)


class EpochSeeds(keras.callbacks.Callback):
    """Reseed every random generator of the model at each epoch's start.

    Generator ``i`` starts epoch ``e`` from the state ``[seed * 1000003 + i,
    e * 2**32]`` (its draws then count up the second number), so the dropout
    masks of an epoch depend only on ``(seed, epoch)``: a run resumed at epoch
    ``e`` draws exactly what the uninterrupted run drew.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables
                  if v.name == "seed_generator_state"]
        for i, state in enumerate(states):
            state.assign(np.array([self.seed * 1000003 + i, epoch << 32],
                                  dtype=state.dtype))


class Progress(keras.callbacks.Callback):
    """A log line every ``interval`` seconds within an epoch: its step, the
    mean training loss so far and the time left in the epoch (for logs and
    pipes, where Keras prints a line per epoch only).

    Args:
        steps: training batches per epoch.
        interval: seconds between two lines.
    """

    def __init__(self, steps, interval=60.0, clock=time.monotonic):
        super().__init__()
        self.steps = int(steps)
        self.interval = float(interval)
        self.clock = clock
        self.epoch = 0
        self.started = self.last = 0.0
        self.first = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.started = self.last = self.clock()
        self.first = None

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        done = batch + 1
        if self.first is None:
            # (the first batch also traces the step: the time left follows
            # the steps after it)
            self.first = (now, done)
            return
        if now - self.last < self.interval or done >= self.steps:
            return
        self.last = now
        since, first = self.first
        left = (now - since) / (done - first) * (self.steps - done)
        loss = (logs or {}).get("loss")
        shown = f", loss {float(loss):.4f}" if loss is not None else ""
        import logging

        logging.getLogger("nlpseq").info(
            "Epoch %d: step %d/%d (%d%%)%s, about %s left in the epoch",
            self.epoch + 1, done, self.steps, 100 * done // self.steps,
            shown, _duration(left))


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunState(keras.callbacks.Callback):
    """Checkpoint every epoch, stop early, keep the best weights, resume.

    An epoch's checkpoint (``last.keras``, ``best.weights.h5`` and
    ``state.json``) is one unit: the three files are written into a new
    folder that replaces ``checkpoints/`` whole (:func:`replace_folder`), so
    a crash leaves the last epoch's or the one before, never a mix. An epoch
    whose loss (or validation loss) is not finite is not checkpointed:
    training stops, and :attr:`non_finite` says why.

    Args:
        folder: the ``checkpoints/`` folder.
        patience: epochs without improvement of the monitored loss before
            stopping; 0 never stops early.
        monitor: ``"val_loss"`` (or ``"loss"`` without validation data), or
            a validation metric in the epoch's logs (``"val_f1"``,
            :class:`ValidationMetric`).
        mode: ``"min"``: lower is better (a loss); ``"max"``: higher is
            better (a metric; of epochs with the same value, the one with
            the lower ``val_loss`` is better: F1 often plateaus at its
            best while the loss still falls).
        keep: ``"best"`` ends training on the weights of the epoch with the
            best monitored value, ``"last"`` on those of the last epoch.
        state: a state read by :func:`read_state` when resuming.
        average_last: ends training on the mean of the weights of this
            many epochs up to the kept one (checkpoint averaging): each
            epoch's weights join the checkpoint, as long as they can be
            among them (:func:`averaged_epochs`).
    """

    def __init__(self, folder, patience=2, monitor="val_loss", keep="best",
                 state=None, mode="min", average_last=None):
        super().__init__()
        self.average_last = average_last
        #: The epochs whose mean the model ended on (``average_last``).
        self.averaged = None
        if mode not in ("min", "max"):
            raise ValueError(f"Received an invalid value for argument "
                             f"`mode`, expected 'min' or 'max', got {mode!r}.")
        self.mode = mode
        if keep not in ("best", "last"):
            raise ValueError(
                f"Received an invalid value for argument `keep`, expected "
                f"'best' or 'last', got {keep!r}.")
        self.keep = keep
        self.folder = Path(folder)
        recover_folder(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        #: ``(epoch, name, value)`` of a loss that was not finite, or None.
        self.non_finite = None
        self.patience = patience
        self.monitor = monitor
        state = state or {}
        # (an infinity is written as null: state.json is strict JSON)
        self.best = state.get("best")
        if self.best is None:
            self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = state.get("best_epoch", -1)
        self.best_loss = state.get("best_loss")
        if self.best_loss is None:
            self.best_loss = math.inf
        self.wait = state.get("wait", 0)
        self.stopped_early = state.get("stopped_early", False)
        #: Seconds spent in epochs, over every part of a resumed run.
        self.seconds = state.get("training_seconds", 0.0)
        self.epochs_done = state.get("epochs_done", 0)
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        if epoch > 0:
            fault_point("epoch")

    def on_epoch_end(self, epoch, logs=None):
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
        logs = logs or {}
        for name in ("loss", "val_loss"):
            value = logs.get(name)
            if value is not None and not math.isfinite(float(value)):
                # (like keras.callbacks.TerminateOnNaN, and no checkpoint)
                self.non_finite = (epoch, name, float(value))
                self.model.stop_training = True
                return
        current = logs.get(self.monitor)
        loss = logs.get("val_loss", math.inf)
        improved = current is not None and math.isfinite(current) and (
            current < self.best if self.mode == "min" else
            current > self.best or (current == self.best and
                                    loss < self.best_loss))
        if improved:
            self.best, self.best_epoch, self.wait = float(current), epoch, 0
            self.best_loss = float(loss)
        else:
            self.wait += 1
        self.epochs_done = epoch + 1
        if self.patience and self.wait >= self.patience:
            self.model.stop_training = True
            self.stopped_early = True
        state = {
            "epochs_done": epoch + 1, "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best, "best_epoch": self.best_epoch,
            "best_loss": self.best_loss,
            "wait": self.wait, "stopped_early": self.stopped_early,
            "training_seconds": round(self.seconds, 1),
        }

        def fill(new):
            if improved:
                self.model.save_weights(new / BEST)
            elif (self.folder / BEST).is_file():
                _link_or_copy(self.folder / BEST, new / BEST)
            if self.average_last:
                self._keep_epoch_weights(new, epoch + 1)
            fault_point("checkpoint-files")
            self.model.save(new / LAST)
            write_json_atomic(new / STATE, state)

        replace_folder(self.folder, fill)

    def _keep_epoch_weights(self, new, done):
        """Into the new checkpoint ``new``: this epoch's weights, and those
        of the epochs before that may still be averaged (the last
        ``average_last`` ones, and those ending at the best epoch)."""
        n = self.average_last
        wanted = set(range(done - n + 1, done + 1))
        if self.best_epoch >= 0:
            wanted |= set(range(self.best_epoch + 2 - n, self.best_epoch + 2))
        for number in sorted(wanted - {done}):
            old = self.folder / EPOCH_WEIGHTS.format(number)
            if old.is_file():
                _link_or_copy(old, new / EPOCH_WEIGHTS.format(number))
        self.model.save_weights(new / EPOCH_WEIGHTS.format(done))

    def kept_epoch(self):
        """The epoch (from 1) whose weights training ends on."""
        return kept_epoch({"best_epoch": self.best_epoch,
                           "epochs_done": self.epochs_done}, self.keep)

    def on_train_end(self, logs=None):
        # (the average sets every weight; with keep="last" the model
        # already holds the last epoch)
        if self.average_last and self.epochs_done:
            self.averaged = average_epochs(self.model, self.folder,
                                           self.kept_epoch(),
                                           self.average_last)
        if not self.averaged and self.keep == "best" and \
                (self.folder / BEST).is_file():
            self.model.load_weights(self.folder / BEST)

    def summary(self) -> str:
        """One line: why training stopped and which epoch's weights were
        kept (epochs counted from 1, as Keras prints them)."""
        total = (getattr(self, "params", None) or {}).get("epochs")
        if self.stopped_early and (total is None or self.epochs_done < total):
            better = "lower" if self.mode == "min" else "higher"
            why = (f"Stopped early after epoch {self.epochs_done}: no "
                   f"{better} {self.monitor} for {self.patience} epoch(s)")
        else:
            why = f"Trained {self.epochs_done} epoch(s)"
        averaged = self.averaged
        mean = "" if not averaged else (
            f"; the weights are the mean of epochs {averaged[0]}-"
            f"{averaged[-1]} (--average-last {self.average_last})")
        if self.keep == "last" or self.best_epoch < 0:
            return f"{why}; kept the last epoch ({self.epochs_done}){mean}"
        best = "lowest" if self.mode == "min" else "highest"
        return (f"{why}; kept epoch {self.best_epoch + 1}, the {best} "
                f"{self.monitor} ({self.best:.4f}){mean}")


def kept_epoch(state, keep):
    """The epoch (from 1) a run's ``state`` ends on with ``keep``."""
    if keep == "best" and state.get("best_epoch", -1) >= 0:
        return state["best_epoch"] + 1
    return state.get("epochs_done", 0)


def average_epochs(model, folder, kept, n):
    """Set ``model``'s weights to the mean of those of the ``n`` epochs up
    to epoch ``kept`` (from 1) kept in the checkpoint ``folder`` (fewer
    when training ran fewer); their numbers. Weights that are not floats
    (a random generator's state) keep the kept epoch's values."""
    import numpy as np

    epochs = [e for e in range(max(1, kept - n + 1), kept + 1)
              if (Path(folder) / EPOCH_WEIGHTS.format(e)).is_file()]
    if not epochs:
        return []
    sums = None
    for number in epochs:
        model.load_weights(Path(folder) / EPOCH_WEIGHTS.format(number))
        values = model.get_weights()
        if sums is None:
            sums = [np.array(v, np.float64) if np.issubdtype(
                v.dtype, np.floating) else v for v in values]
        else:
            sums = [s + v if np.issubdtype(v.dtype, np.floating) else v
                    for s, v in zip(sums, values)]
    model.set_weights([
        (s / len(epochs)).astype(v.dtype) if np.issubdtype(
            v.dtype, np.floating) else v for s, v in zip(sums, values)])
    return epochs


class ValidationMetric(keras.callbacks.Callback):
    """Puts the task's own metric on the validation data into each epoch's
    logs, as ``val_<name>`` (``--monitor``): ``task.evaluate_data(valid)``
    on the weights the epoch ends with (the average, with
    ``--weight-average``), before the checkpoint and the history see the
    logs."""

    def __init__(self, task, valid, name):
        super().__init__()
        self.task, self.valid, self.name = task, valid, name

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            value = self.task.evaluate_data(self.valid).get(self.name)
            logs[f"val_{self.name}"] = float("nan") if value is None \
                else float(value)


def _link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def trim_history(path, epochs_done):
    """Drop the rows of ``history.csv`` for epochs after the checkpoint's
    (``epochs_done`` epochs): an epoch cut off after its row was written
    runs again when the run resumes, and is listed once."""
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not lines:
        return
    header = next(csv.reader(lines[:1]))
    if "epoch" not in header:
        return
    column = header.index("epoch")
    kept = lines[:1]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        try:
            if int(row[column]) >= epochs_done:
                continue
        except (IndexError, ValueError):
            continue
        kept.append(line)
    if kept != lines:
        write_text_atomic(path, "".join(kept))


def restore_ema_swap(swap, resumed):
    """A ``SwapEMAWeights(swap_on_epoch=True)`` callback ready for a run.

    A checkpoint is saved while the model holds the averaged weights (the
    raw ones are in the optimizer), so a resumed run starts in that swapped
    state; Keras' callback keeps that fact in a private attribute, which is
    set here, in one place.
    """
    swap._ema_weights_in_model = bool(resumed)
    return swap


def kept_checkpoint(folder, keep) -> Path:
    """The checkpoint in ``folder`` whose weights a run keeps (``keep``:
    ``"best"`` or ``"last"``)."""
    return Path(folder) / (BEST if keep == "best" else LAST)


def read_state(folder) -> dict:
    """The state written by :class:`RunState` in ``folder``."""
    return json.loads((Path(folder) / STATE).read_text(encoding="utf-8"))
