"""``nlpseq serve``: serve exported models over TensorFlow Serving's REST
and gRPC APIs (:mod:`nlpseq.server`).

Every option also answers to TensorFlow Serving's flag name where it has
one (``--rest_api_port=8501``, ``--model_config_file=...``,
``--enable_batching``...), so its command lines run unchanged.
"""

from __future__ import annotations

import logging
import math

import click

from nlpseq.errors import NlpseqError

HELP = {"help_option_names": ["-h", "--help"]}
#: A boolean option TensorFlow Serving's way: ``--flag``, ``--flag=true``
#: or ``--flag=false``.
SWITCH = {"type": click.BOOL, "is_flag": False, "flag_value": True,
          "default": None}


def _positive(name, value, zero=False):
    if value < 0 or (value == 0 and not zero):
        raise NlpseqError(f"{name} {value}: expected a number above 0")
    return value


def _seconds(name, value, zero=False):
    if not (math.isfinite(value) and (value > 0 or (zero and value == 0))):
        raise NlpseqError(f"{name} {value}: expected a number of seconds"
                          f"{', 0 or more' if zero else ' above 0'}")
    return value


@click.command(context_settings=HELP)
@click.option("--model", "models", multiple=True, metavar="NAME=BASE_PATH",
              help="a model to serve: its name and the folder of its "
                   "numbered versions (repeatable)")
@click.option("--model-name", "--model_name", metavar="NAME",
              help="with --model-base-path: one model to serve "
                   "(TensorFlow Serving's flags; both are ignored when "
                   "--model-config-file is given) [default: default]")
@click.option("--model-base-path", "--model_base_path", metavar="PATH",
              help="the folder of the numbered versions of --model-name")
@click.option("--model-config-file", "--model_config_file",
              type=click.Path(dir_okay=False),
              help="TensorFlow Serving's model config file (text "
                   "model_config_list), instead of --model")
@click.option("--model-config-file-poll-wait-seconds",
              "--model_config_file_poll_wait_seconds", type=float,
              default=0.0, show_default=True,
              help="re-read --model-config-file this often and apply its "
                   "changes (0: read once)")
@click.option("--allow-version-labels-for-unavailable-models",
              "--allow_version_labels_for_unavailable_models", "allow_labels",
              **SWITCH,
              help="take version labels that name versions not available "
                   "(else such a config is refused)")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="the address to listen on (0.0.0.0: every interface)")
@click.option("--rest-port", "--rest_api_port", "rest_port", type=int,
              default=8501, show_default=True, help="the REST API's port")
@click.option("--grpc-port", "--port", "grpc_port", type=int, default=8500,
              show_default=True, help="the gRPC API's port (0: no gRPC)")
@click.option("--poll-seconds", "--file-system-poll-wait-seconds",
              "--file_system_poll_wait_seconds", "poll_seconds", type=float,
              default=1.0, show_default=True,
              help="how often the base paths are looked at for new or "
                   "removed versions")
@click.option("--enable-batching", "--enable_batching", "batching", **SWITCH,
              help="merge concurrent requests into batches [default: true]")
@click.option("--no-batching", is_flag=True,
              help="run each request on its own (--enable_batching=false)")
@click.option("--batching-parameters-file", "--batching_parameters_file",
              type=click.Path(dir_okay=False),
              help="TensorFlow Serving's batching parameters file (text "
                   "BatchingParameters)")
@click.option("--max-batch-size", type=int,
              help="the most rows merged into one model call [default: 64]")
@click.option("--batch-timeout-micros", type=int,
              help="how long a request waits for others to share its batch "
                   "[default: 2000]")
@click.option("--max-enqueued-batches", type=int,
              help="the batches that may wait per signature; beyond, "
                   "requests are refused (HTTP 503) [default: 32]")
@click.option("--rest-api-timeout-in-ms", "--rest_api_timeout_in_ms",
              "timeout_ms", type=int, default=30000, show_default=True,
              help="a REST request's time; one still queued then is "
                   "answered DEADLINE_EXCEEDED (HTTP 504) (0: no limit)")
@click.option("--enable-metrics", is_flag=True,
              help="serve Prometheus metrics at "
                   "/monitoring/prometheus/metrics")
@click.option("--monitoring-config-file", "--monitoring_config_file",
              type=click.Path(dir_okay=False),
              help="TensorFlow Serving's monitoring config file: "
                   "prometheus_config { enable: true path: ... }")
@click.option("--max-body-bytes", type=int, default=8 << 20,
              show_default=True, help="the largest REST request body taken")
@click.option("--shutdown-grace-seconds", type=float, default=5.0,
              show_default=True,
              help="at SIGTERM or Ctrl-C, how long the requests queued or "
                   "running get to finish; then they are answered "
                   "UNAVAILABLE and the server exits")
@click.option("--log-requests/--no-log-requests", default=True,
              show_default=True, help="print a line per request")
def serve(**options):
    """Serve exported models with TensorFlow Serving's REST and gRPC APIs.

    Each base path holds numbered versions (as `nlpseq <app> export`
    writes them); the newest is served, a new version is loaded without a
    restart, and concurrent requests are batched. SIGTERM or Ctrl-C stops
    the server once the requests in flight are answered, or after
    --shutdown-grace-seconds, answering the rest UNAVAILABLE. TensorFlow
    Serving's flag names work too (--port, --rest_api_port, --model_name,
    --model_base_path, --model_config_file, --enable_batching...).

    \b
    Examples:
        nlpseq serve --model sentiment=saved_models/sentiment/export
        curl -d '{"instances": ["a fine film"]}' \\
            localhost:8501/v1/models/sentiment:predict
        nlpseq serve --model-config-file models.config --grpc-port 0
        nlpseq serve --port=8500 --rest_api_port=8501 \\
            --model_name=sentiment \\
            --model_base_path=saved_models/sentiment/export
    """
    from nlpseq import server

    o = options
    configs, config_file = _models(o)
    _check_ports(o["rest_port"], o["grpc_port"])
    _seconds("--poll-seconds", o["poll_seconds"])
    _seconds("--shutdown-grace-seconds", o["shutdown_grace_seconds"],
             zero=True)
    _seconds("--model-config-file-poll-wait-seconds",
             o["model_config_file_poll_wait_seconds"], zero=True)
    _positive("--max-body-bytes", o["max_body_bytes"])
    _positive("--rest-api-timeout-in-ms", o["timeout_ms"], zero=True)
    batching, ignored = _batching(o)
    metrics_path = _metrics_path(o)
    # (per-request lines stay cheap: formatted only when logged)
    logging.getLogger("nlpseq.server").setLevel(logging.INFO)
    log = logging.getLogger("nlpseq.server")
    if ignored:
        log.warning("%s: %s left aside (nlpseq runs one batch at a time per "
                    "signature, unpadded)", o["batching_parameters_file"],
                    ", ".join(ignored))
    server.serve(configs, host=o["host"], rest_port=o["rest_port"],
                 grpc_port=o["grpc_port"], poll_seconds=o["poll_seconds"],
                 batching=batching, max_body_bytes=o["max_body_bytes"],
                 log_requests=o["log_requests"],
                 shutdown_grace_seconds=o["shutdown_grace_seconds"],
                 timeout_ms=o["timeout_ms"], metrics_path=metrics_path,
                 config_file=config_file,
                 check_labels=not o["allow_labels"])
    # Every request is answered and every model unloaded: end now rather
    # than wait seconds for TensorFlow's and gRPC's teardown at exit.
    server.end_process()


def _models(o):
    """The :class:`~nlpseq.server.ModelConfig` s to serve, and the model
    config file to watch (``(path, seconds)`` or ``None``)."""
    from nlpseq import server
    from nlpseq.server.config_files import check_models

    if o["model_config_file"] and o["model_base_path"]:
        # (TensorFlow Serving's meaning: its Docker image always passes
        # --model_name and --model_base_path, and a config file wins)
        logging.getLogger("nlpseq.server").warning(
            "--model-config-file given: --model-name and --model-base-path "
            "are ignored")
        o = dict(o, model_name=None, model_base_path=None)
    given = [name for name, used in (
        ("--model", o["models"]), ("--model-base-path", o["model_base_path"]),
        ("--model-config-file", o["model_config_file"])) if used]
    if len(given) > 1:
        raise NlpseqError(f"give one of --model, --model-base-path or "
                          f"--model-config-file, not {' and '.join(given)}")
    if o["model_name"] is not None and not o["model_base_path"]:
        raise NlpseqError(f"--model-name {o['model_name']}: give its "
                          "--model-base-path too")
    configs = [server.parse_model_flag(m) for m in o["models"]]
    if o["model_base_path"]:
        configs = [server.parse_model_flag(
            f"{o['model_name'] or 'default'}={o['model_base_path']}")]
    config_file = None
    if o["model_config_file"]:
        configs = server.read_model_config_file(
            o["model_config_file"], check=not o["allow_labels"])
        if o["model_config_file_poll_wait_seconds"] > 0:
            config_file = (o["model_config_file"],
                           o["model_config_file_poll_wait_seconds"])
    elif o["model_config_file_poll_wait_seconds"] > 0:
        raise NlpseqError("--model-config-file-poll-wait-seconds needs "
                          "--model-config-file")
    if not configs:
        raise NlpseqError("no models to serve: give --model NAME=BASE_PATH "
                          "or --model-config-file FILE")
    check_models(configs)
    return configs, config_file


def _check_ports(rest_port, grpc_port):
    for option, port in (("--rest-port", rest_port), ("--grpc-port",
                                                      grpc_port)):
        if not 0 <= port <= 65535 or (port == 0 and option == "--rest-port"):
            raise NlpseqError(f"{option} {port}: expected a port number "
                              "(1-65535)")
    if rest_port == grpc_port:
        raise NlpseqError(f"--rest-port {rest_port} and --grpc-port "
                          f"{grpc_port}: the two APIs need two ports (or "
                          "--grpc-port 0: no gRPC)")


def _batching(o):
    """The :class:`~nlpseq.server.BatchingOptions`: the defaults, the
    batching parameters file over them, the options over both; and the
    file's fields left aside."""
    from nlpseq import server
    from nlpseq.server.config_files import read_batching_parameters

    options, ignored = server.BatchingOptions(), []
    if o["batching_parameters_file"]:
        options, ignored = read_batching_parameters(
            o["batching_parameters_file"], options)
    for name, field, zero in (
            ("--max-batch-size", "max_batch_size", False),
            ("--batch-timeout-micros", "timeout_micros", True),
            ("--max-enqueued-batches", "max_enqueued_batches", False)):
        value = o[field if field != "timeout_micros" else
                  "batch_timeout_micros"]
        if value is not None:
            setattr(options, field, _positive(name, value, zero))
    if o["no_batching"] and o["batching"]:
        raise NlpseqError("--no-batching and --enable-batching: give one")
    options.enabled = not o["no_batching"] and o["batching"] is not False
    return options, ignored


def _metrics_path(o):
    """Where the Prometheus metrics are served, or ``None``."""
    from nlpseq.server.monitoring import METRICS_PATH, read_monitoring_config

    path = METRICS_PATH if o["enable_metrics"] else None
    if o["monitoring_config_file"]:
        path = read_monitoring_config(o["monitoring_config_file"]) or path
    return path

