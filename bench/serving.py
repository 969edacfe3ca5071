"""Load test of ``nlpseq serve``: a sentiment model over REST.

One run:

1. trains a sentiment model of the IMDB benchmark's size (LSTM, 64 units,
   one epoch on ``--train-reviews`` IMDB training reviews: its weights do
   not matter here, only its size) and exports it, or exports the model
   of ``--model-dir``;
2. measures the exported SavedModel in this process, fed raw IMDB
   validation reviews in batches of ``--batch`` (the in-process reference);
3. starts ``nlpseq serve`` on a free localhost port (another process), and
   runs ``--clients`` concurrent keep-alive clients for ``--seconds``
   seconds, each sending one review per request, the next as soon as the
   answer is back;
4. runs an independent load generator (``--tool``: Debian's ``hey``, else
   ``wrk``, when installed; skipped with a note when not) against the same
   server at ``--tool-clients`` 1, 16 and 64 keep-alive connections for
   ``--tool-seconds`` each, every request one review (the same one: the
   review of median length);
5. prints throughput (reviews/s), p50 / p99 latency, errors, and the ratio
   of the server's throughput to the in-process one, for its own clients
   and for each run of the generator (a Markdown table); with
   ``--soak-seconds``, keeps the load on that long and reports the
   server's resident memory (RSS) against its value after the first
   minute.

Requests go to 127.0.0.1 only, and every loop is bounded in time and in
count (``--max-requests``).

    python bench/serving.py
    python bench/serving.py --seconds 20 --clients 16
    python bench/serving.py --soak-seconds 600
    python bench/serving.py --tool wrk --tool-clients 1,16,64,256
    python bench/serving.py --model-dir saved_models/imdb_transfer
"""

import argparse
import asyncio
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from nlpseq.runtime import configure_environment

configure_environment()  # the settings nlpseq's commands run with

import _loadgen  # noqa: E402
import pandas as pd  # noqa: E402
from _results import write_result  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" \
    / "imdb"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_and_export(data, folder, reviews, max_length):
    """A sentiment model of the IMDB benchmark's size, exported."""
    import nlpseq

    subset = folder / "train.csv"
    frame = pd.read_csv(data / "train.csv.gz").sample(reviews,
                                                     random_state=0)
    frame.to_csv(subset, index=False)
    task = nlpseq.train("sentiment", data=str(subset), model_dir=folder /
                        "model", cell="lstm", units=64, embedding_dim=64,
                        max_length=max_length, batch_size=32, epochs=1, seed=0,
                        valid_split=0.1)
    return task.export(folder / "export")


def in_process(version, texts, batch, repeats=3):
    """Reviews/s of the SavedModel's ``serving_default`` in this process,
    requests of ``batch`` raw reviews (median of ``repeats`` passes after a
    warm-up pass)."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    requests = [tf.constant(texts[i:i + batch])
                for i in range(0, len(texts), batch)]
    times = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        for request in requests:
            serve(text=request)
        if repeat:
            times.append(time.perf_counter() - start)
    return len(texts) / statistics.median(times)


def start_server(base, port, log):
    command = [sys.executable, "-m", "nlpseq", "serve", "--model",
               f"sentiment={base}", "--rest-port", str(port),
               "--grpc-port", "0", "--no-log-requests"]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"nlpseq serve exited with {server.returncode}"
                             f"; see {log.name}")
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("nlpseq serve was not ready within 180 s")


def rss_bytes(pid):
    """Resident memory of process ``pid`` (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def client(port, bodies, offset, stop_at, budget, latencies, errors):
    """One keep-alive HTTP/1.1 connection: a request, its answer, the
    next, until ``stop_at`` or until ``budget`` (shared) runs out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = offset
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            body = bodies[index % len(bodies)]
            index += 1
            start = time.perf_counter()
            writer.write(
                b"POST /v1/models/sentiment:predict HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200") or \
                    b'"predictions"' not in answer:
                errors.append(head.split(b"\r\n", 1)[0].decode()
                              + " " + answer[:200].decode("utf-8", "replace"))
    except (OSError, asyncio.IncompleteReadError) as error:
        errors.append(f"connection: {error}")
    finally:
        writer.close()


async def load(port, bodies, clients, seconds, max_requests, on_tick=None):
    latencies, errors, budget = [], [], [max_requests]
    start = time.perf_counter()
    stop_at = start + seconds
    tasks = [asyncio.create_task(client(
        port, bodies, n * 997, stop_at, budget, latencies, errors))
        for n in range(clients)]
    while not all(task.done() for task in tasks):
        await asyncio.sleep(1.0)
        if on_tick:
            on_tick(time.perf_counter() - start)
    await asyncio.gather(*tasks)
    return latencies, errors, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--model-dir", help="serve this sentiment model "
                        "folder's export (e.g. the IMDB model of "
                        "docs/transfer.md, with its cascade) instead of "
                        "training the small one")
    parser.add_argument("--train-reviews", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=100,
                        help="the model's max_length: tokens read of a "
                        "review")
    parser.add_argument("--reviews", type=int, default=5000,
                        help="validation reviews sent (cycled)")
    parser.add_argument("--batch", type=int, default=32,
                        help="reviews per call of the in-process reference")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--soak-seconds", type=float, default=0,
                        help="also keep the load on this long and report "
                        "the server's memory")
    parser.add_argument("--max-requests", type=int, default=5_000_000,
                        help="stop after this many requests in any case")
    parser.add_argument("--tool", choices=("auto", "hey", "wrk", "none"),
                        default="auto", help="the independent load "
                        "generator (auto: hey if installed, else wrk, else "
                        "none)")
    parser.add_argument("--tool-clients", type=client_counts,
                        default=(1, 16, 64), help="its keep-alive "
                        "connections, one run each (comma-separated)")
    parser.add_argument("--tool-seconds", type=float, default=10,
                        help="the length of each of its runs")
    parser.add_argument("--output", default=str(
        Path(__file__).parent / "results" / "serving.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    if not (data / "valid.csv.gz").is_file():
        print(f"skipped: the IMDB data is not in {data}")
        return 0
    with gzip.open(data / "valid.csv.gz", "rt") as file:
        texts = pd.read_csv(file)["text"].head(args.reviews).tolist()
    bodies = [json.dumps({"instances": [text]}).encode() for text in texts]

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.model_dir:
            import nlpseq

            version = nlpseq.load(args.model_dir).export(folder / "export")
        else:
            version = train_and_export(data, folder, args.train_reviews,
                                       args.max_length)
        reference = in_process(version, texts, args.batch)
        print(f"in process: {reference:,.0f} reviews/s "
              f"(SavedModel, requests of {args.batch})")
        port = free_port()
        with open(folder / "server.log", "w") as log:
            server = start_server(version.parent, port, log)
            try:
                # warm-up: every request shape the batcher will see
                asyncio.run(load(port, bodies, args.clients, 5, 20_000))
                latencies, errors, elapsed = asyncio.run(load(
                    port, bodies, args.clients, args.seconds,
                    args.max_requests))
                generator = run_generator(port, texts, folder, args)
                soak = None
                if args.soak_seconds:
                    soak = run_soak(server.pid, port, bodies, args)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    code = server.wait(60)
                except subprocess.TimeoutExpired:
                    server.kill()
                    code = "killed after 60 s"
        if not latencies:
            raise SystemExit(f"no request was answered; see {log.name}")
        throughput = len(latencies) / elapsed
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        ratio = throughput / reference
        print(f"server: {throughput:,.0f} reviews/s, {args.clients} clients"
              f" x {elapsed:.0f} s, one review per request; p50 {p50:.1f} ms"
              f", p99 {p99:.1f} ms; {len(errors)} errors; "
              f"ratio to in process {ratio:.2f}; exit code {code}")
        for error in errors[:5]:
            print(f"  error: {error}")
        own = {"generator": "bench/serving.py", "clients": args.clients,
               "reviews_per_s": throughput, "ratio": ratio, "p50_ms": p50,
               "p99_ms": p99, "errors": len(errors)}
        generator = with_ratios(generator, reference)
        print(_loadgen.markdown_table([own] + generator.get("rows", [])))
        figures = {
            "in_process_reviews_per_s": round(reference, 1),
            "server_reviews_per_s": round(throughput, 1),
            "ratio": round(ratio, 3),
            "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
            "requests": len(latencies), "errors": len(errors),
            "server_exit_code": code,
            "load_generator": generator,
        }
        if soak:
            figures["soak"] = soak
        write_result("serving", args, **figures)
    return 0


def client_counts(text):
    """``--tool-clients``: comma-separated positive counts."""
    try:
        counts = tuple(int(n) for n in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive numbers of clients, such as "
            f"1,16,64; got {text!r}")
    return counts


def run_generator(port, texts, folder, args):
    """``--tool`` against the server at each of ``--tool-clients``:
    ``{"tool", "seconds", "body_chars", "rows"}``, or ``{"skipped"}`` with
    the note printed."""
    tool, note = _loadgen.choose(args.tool)
    if tool is None:
        print(note)
        return {"skipped": note}
    review = sorted(texts, key=len)[len(texts) // 2]
    body = folder / "body.json"
    body.write_text(json.dumps({"instances": [review]}))
    url = f"http://127.0.0.1:{port}/v1/models/sentiment:predict"
    rows = []
    for clients in args.tool_clients:
        row = _loadgen.run(tool, url, body, clients, args.tool_seconds,
                           folder)
        rows.append({"generator": tool, **row})
        print(f"{tool}, {clients} clients: " + (
            f"failed: {row['failed']}" if "failed" in row else
            f"{row['reviews_per_s']:,.0f} reviews/s, p50 {row['p50_ms']} ms,"
            f" p99 {row['p99_ms']} ms, {row['errors']} errors"))
    return {"tool": tool, "seconds": args.tool_seconds,
            "body_chars": len(review), "rows": rows}


def with_ratios(generator, reference):
    """The generator's rows with their ``ratio`` to the in-process
    reviews/s."""
    rows = [row if "failed" in row else
            dict(row, ratio=round(row["reviews_per_s"] / reference, 3))
            for row in generator.get("rows", [])]
    return dict(generator, rows=rows) if rows else generator


def run_soak(pid, port, bodies, args):
    """The load kept on for ``--soak-seconds``; the server's RSS sampled
    every 10 s, compared with its value after the first minute."""
    samples = []
    last = [0.0]

    def on_tick(elapsed):
        if elapsed - last[0] >= 10:
            last[0] = elapsed
            samples.append((round(elapsed), rss_bytes(pid)))

    latencies, errors, elapsed = asyncio.run(load(
        port, bodies, args.clients, args.soak_seconds, args.max_requests,
        on_tick))
    after_minute = next((rss for t, rss in samples if t >= 60),
                        samples[0][1] if samples else 0)
    highest = max((rss for _, rss in samples), default=0)
    final = samples[-1][1] if samples else 0
    soak = {
        "seconds": round(elapsed), "requests": len(latencies),
        "errors": len(errors),
        "reviews_per_s": round(len(latencies) / elapsed, 1),
        "rss_after_first_minute_mb": round(after_minute / 2**20, 1),
        "rss_highest_mb": round(highest / 2**20, 1),
        "rss_final_mb": round(final / 2**20, 1),
        "highest_over_first_minute": round(highest / after_minute, 3)
        if after_minute else None,
        "samples": samples,
    }
    print(f"soak: {elapsed:.0f} s, {soak['reviews_per_s']:,.0f} reviews/s,"
          f" {len(errors)} errors; RSS after the first minute "
          f"{soak['rss_after_first_minute_mb']} MB, highest "
          f"{soak['rss_highest_mb']} MB, final {soak['rss_final_mb']} MB "
          f"(highest / first minute {soak['highest_over_first_minute']})")
    return soak


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
