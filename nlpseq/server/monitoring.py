"""The server's Prometheus metrics, at TensorFlow Serving's path
(``/monitoring/prometheus/metrics``) and, where TensorFlow Serving has a
metric for it, under its name (``/`` written ``:``, as its exporter does):

- ``:tensorflow:serving:request_count_total`` {model_name, signature_name,
  status}: the requests answered (counters end in ``_total`` as Prometheus'
  client writes them; TensorFlow Serving's own exporter leaves it out, and
  has no ``signature_name`` label);
- ``:tensorflow:serving:request_latency`` {model_name, API, entrypoint}:
  a histogram of the requests' wall time, in microseconds, with
  TensorFlow Serving's buckets (10 × 1.8^k);
- ``:tensorflow:serving:runtime_latency`` {model_name, API, runtime}: the
  model calls' wall time (``API`` is the signature here);
- ``:tensorflow:serving:batching_session:processed_batch_size`` and
  ``...:queuing_latency`` {model_name, signature_name}: the rows of each
  batch run, and how long its requests waited (microseconds);
- ``:tensorflow:cc:saved_model:load_attempt_count_total`` {model_path,
  status}: the SavedModel loads, ``success`` or ``fail``;
- nlpseq's own: ``nlpseq:serving:unload_count_total`` {model_name},
  ``nlpseq:serving:dropped_requests_total`` {model_name, signature_name,
  reason} (``deadline``: dropped unrun past its deadline; ``cancelled``:
  its client had gone), ``nlpseq:serving:queued_rows`` {model_name,
  version, signature_name} and ``nlpseq:serving:model_version_state``
  {model_name, version, state} (1 per version, read at each scrape);
- the process' memory, CPU time and open files (``process_*``).

The metrics are kept, and served, with ``--enable-metrics`` or a
``--monitoring-config-file`` whose ``prometheus_config`` enables them
(:func:`read_monitoring_config`); otherwise nothing is counted.
"""

from __future__ import annotations

import time

from nlpseq.errors import NlpseqError

#: TensorFlow Serving's default path of the Prometheus metrics.
METRICS_PATH = "/monitoring/prometheus/metrics"
#: TensorFlow Serving's latency buckets (microseconds): 10 × 1.8^k, 33 of
#: them (up to about 20 minutes).
LATENCY_BUCKETS = tuple(10 * 1.8 ** k for k in range(33))
#: Batch sizes: powers of two up to 2^14.
BATCH_BUCKETS = tuple(2 ** k for k in range(15))
#: Queueing buckets (microseconds): 100 × 1.2^k, 52 of them (about 1 s),
#: as TensorFlow Serving's batching session has them.
QUEUE_BUCKETS = tuple(100 * 1.2 ** k for k in range(52))


class Monitor:
    """The metrics of one server (a registry of their own, so that two
    servers in one process never mix their counts).

    Args:
        manager: the :class:`~nlpseq.server.manager.ModelManager` whose
            queues and versions are read at each scrape (may be set later,
            as :attr:`manager`).
    """

    def __init__(self, manager=None):
        import prometheus_client as prometheus
        from prometheus_client import CollectorRegistry, Counter, Histogram

        prometheus.disable_created_metrics()
        self.manager = manager
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            ":tensorflow:serving:request_count", "The total number of "
            "requests.", ["model_name", "signature_name", "status"],
            registry=registry)
        self.latency = Histogram(
            ":tensorflow:serving:request_latency", "Distribution of wall "
            "time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"], buckets=LATENCY_BUCKETS,
            registry=registry)
        self.runtime = Histogram(
            ":tensorflow:serving:runtime_latency", "Distribution of wall "
            "time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"], buckets=LATENCY_BUCKETS,
            registry=registry)
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "The rows of each batch run.", ["model_name", "signature_name"],
            buckets=BATCH_BUCKETS, registry=registry)
        self.queuing = Histogram(
            ":tensorflow:serving:batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing.",
            ["model_name", "signature_name"], buckets=QUEUE_BUCKETS,
            registry=registry)
        self.loads = Counter(
            ":tensorflow:cc:saved_model:load_attempt_count", "The number of "
            "times a SavedModel was loaded.", ["model_path", "status"],
            registry=registry)
        self.unloads = Counter(
            "nlpseq:serving:unload_count", "The versions unloaded.",
            ["model_name"], registry=registry)
        self.drops = Counter(
            "nlpseq:serving:dropped_requests", "Requests dropped from a "
            "queue unrun: past their deadline, or their client gone.",
            ["model_name", "signature_name", "reason"], registry=registry)
        prometheus.ProcessCollector(registry=registry)
        registry.register(_StateCollector(self))

    # -- recording ---------------------------------------------------------------

    def request(self, model, signature, status, api, entrypoint, seconds):
        """One request answered (``status``: the gRPC code name)."""
        model = model or ""
        self.requests.labels(model, signature or "", status).inc()
        self.latency.labels(model, api, entrypoint).observe(seconds * 1e6)

    def batch(self, model, signature, rows, tasks, started, ended):
        """A batch of ``rows`` rows (``tasks``, queued at their
        ``enqueued`` times) run from ``started`` to ``ended``."""
        self.batch_size.labels(model, signature).observe(rows)
        self.runtime.labels(model, signature, "TF").observe(
            (ended - started) * 1e6)
        queuing = self.queuing.labels(model, signature)
        for task in tasks:
            queuing.observe(max(0.0, started - task.enqueued) * 1e6)

    def dropped(self, model, signature, reason):
        self.drops.labels(model, signature, reason).inc()

    def loaded(self, path, ok):
        self.loads.labels(str(path), "success" if ok else "fail").inc()

    def unloaded(self, model):
        self.unloads.labels(model).inc()

    def exposition(self):
        """``(body, content type)`` of a scrape."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class SignatureMonitor:
    """What a :class:`~nlpseq.server.batching.Batcher` records: its batches
    and dropped requests, labelled with its model and signature."""

    __slots__ = ("monitor", "model", "signature")

    def __init__(self, monitor, model, signature):
        self.monitor = monitor
        self.model = model
        self.signature = signature

    def batch(self, rows, tasks, started):
        self.monitor.batch(self.model, self.signature, rows, tasks, started,
                           time.monotonic())

    def dropped(self, reason):
        self.monitor.dropped(self.model, self.signature, reason)


class _StateCollector:
    """The gauges read from the manager at each scrape: the rows queued
    per signature, and each version's state."""

    def __init__(self, monitor):
        self.monitor = monitor

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        queued = GaugeMetricFamily(
            "nlpseq:serving:queued_rows", "Rows (or requests, for a "
            "signature run one request at a time) waiting in a batch queue.",
            labels=["model_name", "version", "signature_name"])
        states = GaugeMetricFamily(
            "nlpseq:serving:model_version_state", "1 for each model version "
            "and its state (START, LOADING, AVAILABLE, UNLOADING, END).",
            labels=["model_name", "version", "state"])
        manager = self.monitor.manager
        if manager is not None:
            for model, version, name, batcher in manager.batchers():
                queued.add_metric([model, str(version), name],
                                  batcher.stats()["queued"])
            for model in list(manager.models.values()):
                for number, version in sorted(list(model.versions.items())):
                    states.add_metric([model.name, str(number),
                                       version.state], 1)
        yield queued
        yield states


def read_monitoring_config(path):
    """The metrics path a TensorFlow Serving monitoring config file (text
    ``MonitoringConfig``) enables, or ``None`` when it does not enable
    them.

    Raises:
        NlpseqError: unreadable file, a syntax error (with its line), a path
            that does not start with ``/``.
    """
    from nlpseq.server.config_files import (
        MONITORING_MESSAGES,
        parse_text_proto,
        proto_message,
    )

    config = parse_text_proto(
        path, proto_message("MonitoringConfig", MONITORING_MESSAGES),
        "--monitoring-config-file")
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    where = prometheus.path or METRICS_PATH
    if not where.startswith("/"):
        raise NlpseqError(f"{path}: prometheus_config path '{where}': "
                          "expected a path starting with /")
    return where


__all__ = ["METRICS_PATH", "Monitor", "SignatureMonitor",
           "read_monitoring_config"]
