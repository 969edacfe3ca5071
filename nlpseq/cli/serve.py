"""``nlpseq serve``: serve exported models over TensorFlow Serving's REST
and gRPC APIs (:mod:`nlpseq.server`)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import click

from nlpseq.errors import NlpseqError

HELP = {"help_option_names": ["-h", "--help"]}


def _positive(name, value, zero=False):
    if value < 0 or (value == 0 and not zero):
        raise NlpseqError(f"{name} {value}: expected a number above 0")
    return value


@click.command(context_settings=HELP)
@click.option("--model", "models", multiple=True, metavar="NAME=BASE_PATH",
              help="a model to serve: its name and the folder of its "
                   "numbered versions (repeatable)")
@click.option("--model-config-file", type=click.Path(dir_okay=False),
              help="TensorFlow Serving's model config file (text "
                   "model_config_list), instead of --model")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="the address to listen on (0.0.0.0: every interface)")
@click.option("--rest-port", type=int, default=8501, show_default=True,
              help="the REST API's port")
@click.option("--grpc-port", type=int, default=8500, show_default=True,
              help="the gRPC API's port (0: no gRPC)")
@click.option("--poll-seconds", type=float, default=1.0, show_default=True,
              help="how often the base paths are looked at for new or "
                   "removed versions")
@click.option("--max-batch-size", type=int, default=64, show_default=True,
              help="the most rows merged into one model call")
@click.option("--batch-timeout-micros", type=int, default=2000,
              show_default=True,
              help="how long a request waits for others to share its batch")
@click.option("--max-enqueued-batches", type=int, default=32,
              show_default=True,
              help="the batches that may wait per signature; beyond, "
                   "requests are refused (HTTP 503)")
@click.option("--no-batching", is_flag=True,
              help="run each request on its own")
@click.option("--max-body-bytes", type=int, default=8 << 20,
              show_default=True, help="the largest REST request body taken")
@click.option("--shutdown-grace-seconds", type=float, default=5.0,
              show_default=True,
              help="at SIGTERM or Ctrl-C, how long the requests queued or "
                   "running get to finish; then they are answered "
                   "UNAVAILABLE and the server exits")
@click.option("--log-requests/--no-log-requests", default=True,
              show_default=True, help="print a line per request")
def serve(models, model_config_file, host, rest_port, grpc_port,
          poll_seconds, max_batch_size, batch_timeout_micros,
          max_enqueued_batches, no_batching, max_body_bytes,
          shutdown_grace_seconds, log_requests):
    """Serve exported models with TensorFlow Serving's REST and gRPC APIs.

    Each base path holds numbered versions (as `nlpseq <app> export`
    writes them); the newest is served, a new version is loaded without a
    restart, and concurrent requests are batched. SIGTERM or Ctrl-C stops
    the server once the requests in flight are answered, or after
    --shutdown-grace-seconds, answering the rest UNAVAILABLE.

    \b
    Examples:
        nlpseq serve --model sentiment=saved_models/sentiment/export
        curl -d '{"instances": ["a fine film"]}' \\
            localhost:8501/v1/models/sentiment:predict
        nlpseq serve --model-config-file models.config --grpc-port 0
    """
    from nlpseq import server

    if models and model_config_file:
        raise NlpseqError("give --model or --model-config-file, not both")
    configs = [server.parse_model_flag(m) for m in models]
    if model_config_file:
        configs = server.read_model_config_file(model_config_file)
    if not configs:
        raise NlpseqError("no models to serve: give --model NAME=BASE_PATH "
                          "or --model-config-file FILE")
    names = [c.name for c in configs]
    for name in names:
        if names.count(name) > 1:
            raise NlpseqError(f"--model {name}: the name is given twice")
    for config in configs:
        if not Path(config.base_path).is_dir():
            raise NlpseqError(f"model {config.name}: base path "
                              f"{config.base_path} is not a folder")
    for option, port in (("--rest-port", rest_port), ("--grpc-port",
                                                      grpc_port)):
        if not 0 <= port <= 65535 or (port == 0 and option == "--rest-port"):
            raise NlpseqError(f"{option} {port}: expected a port number "
                              "(1-65535)")
    if rest_port == grpc_port:
        raise NlpseqError(f"--rest-port {rest_port} and --grpc-port "
                          f"{grpc_port}: the two APIs need two ports (or "
                          "--grpc-port 0: no gRPC)")
    if not (poll_seconds > 0 and math.isfinite(poll_seconds)):
        raise NlpseqError(f"--poll-seconds {poll_seconds}: expected a number "
                          "above 0")
    if not (shutdown_grace_seconds >= 0 and
            math.isfinite(shutdown_grace_seconds)):
        raise NlpseqError(f"--shutdown-grace-seconds {shutdown_grace_seconds}"
                          ": expected a number of seconds, 0 or more")
    _positive("--max-batch-size", max_batch_size)
    _positive("--batch-timeout-micros", batch_timeout_micros, zero=True)
    _positive("--max-enqueued-batches", max_enqueued_batches)
    _positive("--max-body-bytes", max_body_bytes)
    # (per-request lines stay cheap: formatted only when logged)
    logging.getLogger("nlpseq.server").setLevel(logging.INFO)
    batching = server.BatchingOptions(not no_batching, max_batch_size,
                                      batch_timeout_micros,
                                      max_enqueued_batches)
    server.serve(configs, host=host, rest_port=rest_port, grpc_port=grpc_port,
                 poll_seconds=poll_seconds, batching=batching,
                 max_body_bytes=max_body_bytes, log_requests=log_requests,
                 shutdown_grace_seconds=shutdown_grace_seconds)
