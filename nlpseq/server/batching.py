"""Dynamic batching: concurrent requests to one signature run as one call.

A :class:`Batcher` serves one signature of one model version: a queue and a
worker thread. The worker takes the first waiting request, waits up to the
batch timeout for more (or until ``max_batch_size`` rows wait), and runs
them as one batch: their inputs concatenated along the first dimension, the
outputs cut back into each request's rows. Only a signature whose inputs
and outputs all have a free first (batch) dimension and fixed other
dimensions is merged, since only then can a request's rows not change its
answer; the others run one request at a time, still through the worker, so
the work a signature does at once stays bounded.

The queue is bounded: at most ``max_batch_size * max_enqueued_batches``
rows (one request per batch when not merged) wait; a request beyond that is
refused at once with UNAVAILABLE ("the batch queue is full", HTTP 503), as
TensorFlow Serving's batch scheduler refuses it, and the queue never grows.

A request may carry a deadline (``--rest-api-timeout-in-ms``, the gRPC
call's deadline): one whose deadline has passed when its batch is formed is
dropped from the queue unrun and answered DEADLINE_EXCEEDED, and one whose
client has gone (its future cancelled) is dropped without an answer, so
that abandoned work never holds up the requests behind it.

Requests get a :class:`concurrent.futures.Future`, which both the REST
server's event loop and the gRPC server's threads can wait on. Each batch's
outputs are converted to NumPy once, and to Python values (for JSON) once,
when a request of the batch asked for them.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

import numpy as np

from nlpseq.server.codec import CODE_NAMES, ServingError, to_python

LOG = logging.getLogger("nlpseq.server")


@dataclass
class BatchingOptions:
    """The batching settings (``nlpseq serve``'s options)."""

    enabled: bool = True
    max_batch_size: int = 64
    timeout_micros: int = 2000
    max_enqueued_batches: int = 32


class Closed(ServingError):
    """The batcher's version is being unloaded."""


class Result:
    """A request's outputs: rows ``start:stop`` of its batch's outputs
    (all of them when the request ran alone)."""

    __slots__ = ("arrays", "columns", "start", "stop", "alone")

    def __init__(self, arrays, columns, start, stop, alone):
        self.arrays = arrays
        self.columns = columns
        self.start = start
        self.stop = stop
        self.alone = alone

    def array(self, name):
        """The output ``name`` as a NumPy array."""
        array = self.arrays[name]
        return array if self.alone else array[self.start:self.stop]

    def values(self, name):
        """The output ``name`` as Python values (nested lists)."""
        values = self.columns[name]
        return values if self.alone else values[self.start:self.stop]


class _Task:
    __slots__ = ("inputs", "rows", "python", "future", "enqueued",
                 "deadline")

    def __init__(self, inputs, rows, python, deadline):
        self.inputs = inputs
        self.rows = rows
        self.python = python
        self.future = Future()
        self.enqueued = time.monotonic()
        self.deadline = deadline


def expired(deadline):
    """The DEADLINE_EXCEEDED answer of a request whose ``deadline``
    (``time.monotonic()`` seconds) passed before it ran."""
    return ServingError("DEADLINE_EXCEEDED", "Deadline exceeded: the request "
                        "waited past its deadline and was not run")


class Batcher:
    """The queue and worker thread of one signature.

    Args:
        run: ``run({name: array}) -> {name: array}``, the signature.
        label: how the signature is named in messages.
        merge: merge concurrent requests (else one request per call).
        options: the :class:`BatchingOptions`.
    """

    def __init__(self, run, label, merge, options, monitor=None):
        self.run = run
        #: Where the batches are counted (a
        #: :class:`~nlpseq.server.monitoring.SignatureMonitor`), or ``None``.
        self.monitor = monitor
        self.label = label
        self.merge = merge and options.enabled
        self.max_rows = max(1, options.max_batch_size)
        self.timeout = max(0, options.timeout_micros) / 1e6
        self.max_batches = max(1, options.max_enqueued_batches)
        self.capacity = (self.max_rows * self.max_batches if self.merge
                         else self.max_batches)
        self._queue = collections.deque()
        self._waiting = 0  # rows waiting (requests when not merged)
        self._condition = threading.Condition(threading.Lock())
        self._closed = False
        #: Counters: batches run, requests and rows in them, largest batch.
        self.batches = self.requests = self.rows = self.largest = 0
        #: The requests of the batch the model is running now.
        self._running = []
        self._thread = threading.Thread(target=self._work, daemon=True,
                                        name=f"batcher {label}")
        self._thread.start()

    def submit(self, inputs, rows, python=False, deadline=None):
        """Queue a request (``{name: array}`` of ``rows`` rows); its
        :class:`Result`'s future. With ``python``, the batch's outputs are
        also converted to Python values. A request still queued at its
        ``deadline`` (``time.monotonic()`` seconds) is dropped, its future
        answered DEADLINE_EXCEEDED; cancel the future to drop it
        unanswered (a client that has gone).

        Raises:
            ServingError: UNAVAILABLE when the queue is full or the
                signature is being unloaded.
        """
        task = _Task(inputs, rows, python, deadline)
        size = rows if self.merge else 1
        with self._condition:
            if self._closed:
                raise Closed("UNAVAILABLE", f"{self.label} is being "
                             "unloaded; retry the request")
            if self._waiting and self._waiting + size > self.capacity:
                unit = "rows" if self.merge else "requests"
                raise ServingError(
                    "UNAVAILABLE",
                    f"the batch queue is full: {self._waiting} {unit} wait "
                    f"for {self.label}, at most {self.capacity}; retry later")
            wake = not self._queue or (
                self.merge and self._waiting < self.max_rows
                <= self._waiting + size)
            self._queue.append(task)
            self._waiting += size
            if wake:
                self._condition.notify()
        return task.future

    def close(self, wait=True):
        """Stop taking requests; the worker finishes those queued, then
        ends."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        if wait and self._thread is not threading.current_thread():
            self._thread.join()

    def abort(self, error):
        """Answer every queued request and those the model is running now
        with ``error`` (a :class:`ServingError`), and take no more; the
        model call in flight, if any, runs on, its result dropped. Returns
        whether a model call was in flight."""
        with self._condition:
            self._closed = True
            tasks = list(self._queue) + list(self._running)
            self._queue.clear()
            self._waiting = 0
            busy = bool(self._running)
            self._condition.notify()
        for task in tasks:
            _settle(task.future, error=error)
        return busy

    def stats(self):
        return {"batches": self.batches, "requests": self.requests,
                "rows": self.rows, "largest_batch": self.largest,
                "queued": self._waiting, "merges": self.merge}

    # -- the worker ------------------------------------------------------------

    def _next_batch(self):
        """The next requests to run together (``None``: closed and done)."""
        with self._condition:
            while not self._queue:
                if self._closed:
                    return None
                self._condition.wait()
            if not self.merge:
                self._waiting -= 1
                return [self._queue.popleft()]
            deadline = self._queue[0].enqueued + self.timeout
            while self._waiting < self.max_rows and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            tasks = [self._queue.popleft()]
            rows = tasks[0].rows
            while self._queue and rows + self._queue[0].rows <= self.max_rows:
                tasks.append(self._queue.popleft())
                rows += tasks[-1].rows
            self._waiting -= rows
            return tasks

    def _work(self):
        while True:
            tasks = self._next_batch()
            if tasks is None:
                return
            tasks = self._live(tasks)
            if tasks:
                with self._condition:
                    self._running = tasks
                try:
                    self._run(tasks)
                finally:
                    with self._condition:
                        self._running = []

    def _live(self, tasks):
        """``tasks`` less those cancelled (their client has gone) and those
        past their deadline (answered DEADLINE_EXCEEDED), now running."""
        now, live = time.monotonic(), []
        for task in tasks:
            if task.deadline is not None and now >= task.deadline:
                _settle(task.future, error=expired(task.deadline))
                dropped = "deadline"
            elif task.future.set_running_or_notify_cancel():
                live.append(task)
                continue
            else:
                dropped = "cancelled"
            if self.monitor is not None:
                self.monitor.dropped(dropped)
        return live

    def _run(self, tasks):
        started = time.monotonic()
        try:
            if len(tasks) == 1:
                inputs = tasks[0].inputs
            else:
                inputs = {name: np.concatenate([t.inputs[name] for t in tasks])
                          for name in tasks[0].inputs}
            arrays = self.run(inputs)
            rows = sum(t.rows for t in tasks)
            if len(tasks) > 1:
                for name, array in arrays.items():
                    if not array.ndim or array.shape[0] != rows:
                        raise ServingError(
                            "INTERNAL", f"{self.label}: output '{name}' has "
                            f"shape {list(array.shape)} for a batch of "
                            f"{rows} rows")
            columns = None
            if any(t.python for t in tasks):
                columns = {name: to_python(name, array)
                           for name, array in arrays.items()}
        except Exception as error:  # noqa: BLE001 (each request gets it)
            if not isinstance(error, ServingError):
                error = failure(error)
            for task in tasks:
                _settle(task.future, error=error)
            return
        self.batches += 1
        self.requests += len(tasks)
        self.rows += rows
        self.largest = max(self.largest, rows)
        if self.monitor is not None:
            self.monitor.batch(rows, tasks, started)
        start = 0
        for task in tasks:
            _settle(task.future, Result(arrays, columns, start,
                                        start + task.rows, len(tasks) == 1))
            start += task.rows


#: Lines the Python runtime of TensorFlow adds around an op's error message
#: (TensorFlow Serving's C++ runtime answers the op's message alone).
_DECORATION = re.compile(r"^(Graph execution error:|Detected at node |"
                         r"<stack traces unavailable>|  File )")


def op_message(message):
    """An op's error message as TensorFlow Serving gives it: without the
    Python runtime's preamble and its ``[Op:...]`` suffix."""
    lines = [line for line in message.strip().splitlines()
             if line.strip() and not _DECORATION.match(line)]
    text = "\n".join(lines) or message.strip()
    return re.sub(r" \[Op:[^\]]*\]$", "", text)


def _settle(future, result=None, error=None):
    """Set ``future``'s result or exception, unless a shutdown answered it
    first (:meth:`Batcher.abort`)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


def failure(error):
    """An exception of a model call as a :class:`ServingError`: a
    TensorFlow error keeps its status code and message."""
    code = getattr(error, "error_code", None)
    message = getattr(error, "message", None) or str(error)
    if isinstance(code, int) and 0 < code < len(CODE_NAMES):
        return ServingError(CODE_NAMES[code], op_message(message))
    LOG.error("model call failed: %s: %s", type(error).__name__, error)
    return ServingError("INTERNAL", f"{type(error).__name__}: {error}")
