"""External HTTP load generators for ``bench/serving.py``: Debian's ``hey``
and ``wrk``, each run as a subprocess against the server with keep-alive
connections, its summary parsed into the benchmark's row (reviews/s, p50 /
p99 latency in ms, errors).

Only the standard library: the parsers are tested without TensorFlow
(``tests/test_bench_serving.py``).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

#: The generators ``--tool auto`` tries, in order.
TOOLS = ("hey", "wrk")
#: Seconds a request may take before the generator counts it an error.
REQUEST_TIMEOUT = 30
#: Milliseconds per unit of wrk's durations.
WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0,
             "h": 3_600_000.0}
#: The Lua script that makes wrk POST the JSON body of a file.
WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open({path}, "rb"))
wrk.body = file:read("*a")
file:close()
"""


def choose(tool):
    """``(name, note)``: the generator to run for ``--tool`` (``auto``:
    ``hey``, else ``wrk``), or ``None`` and why none runs."""
    if tool == "none":
        return None, "no external load generator (--tool none)"
    names = TOOLS if tool == "auto" else (tool,)
    for name in names:
        if shutil.which(name):
            return name, None
    return None, (f"skipped the external load generator: "
                  f"{' or '.join(names)} is not installed (Debian: "
                  f"apt-get install {' '.join(names)})")


def command(tool, url, body_file, clients, seconds, folder):
    """The command line of ``tool`` for ``clients`` keep-alive connections
    POSTing the JSON of ``body_file`` to ``url`` for ``seconds`` (wrk's Lua
    script is written into ``folder``)."""
    seconds = max(1, round(seconds))
    if tool == "hey":
        return ["hey", "-z", f"{seconds}s", "-c", str(clients),
                "-t", str(REQUEST_TIMEOUT), "-m", "POST",
                "-T", "application/json", "-D", str(body_file), url]
    script = Path(folder) / "post.lua"
    script.write_text(WRK_SCRIPT.format(path=json.dumps(str(body_file))))
    threads = max(1, min(clients, os.cpu_count() or 1))
    return ["wrk", "-t", str(threads), "-c", str(clients), "-d",
            f"{seconds}s", "--timeout", f"{REQUEST_TIMEOUT}s", "--latency",
            "-s", str(script), url]


def sections(text):
    """``{heading: [lines]}`` of hey's output (a heading: a line that ends
    with ``:``, not indented)."""
    found, heading = {}, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and not line[:1].isspace():
            heading = stripped[:-1]
            found[heading] = []
        elif heading is not None and stripped:
            found[heading].append(stripped)
    return found


def parse_hey(text):
    """The figures of ``hey``'s summary: ``{"seconds", "ok", "errors",
    "p50_ms", "p99_ms"}``; ``ok`` counts the 200 answers, ``errors`` the
    others and the failed requests; a percentile hey left out is
    ``None``."""
    parts = sections(text)
    total = re.search(r"Total:\s+([\d.]+) secs", text)
    if not total or "Status code distribution" not in parts:
        raise ValueError("no summary in hey's output")
    codes = {}
    for line in parts["Status code distribution"]:
        code, count = re.fullmatch(r"\[(\d+)\]\s+(\d+) responses",
                                   line).groups()
        codes[int(code)] = int(count)
    failed = sum(int(re.match(r"\[(\d+)\]", line).group(1))
                 for line in parts.get("Error distribution", []))
    percentiles = {}
    for line in parts.get("Latency distribution", []):
        found = re.fullmatch(r"(\d+)% in ([\d.]+) secs", line)
        if found and int(found.group(1)):  # (hey may print a "0% in 0")
            percentiles[int(found.group(1))] = round(
                float(found.group(2)) * 1000, 3)
    ok = codes.get(200, 0)
    return {"seconds": float(total.group(1)), "ok": ok,
            "errors": sum(codes.values()) - ok + failed,
            "p50_ms": percentiles.get(50), "p99_ms": percentiles.get(99)}


def wrk_ms(value, unit):
    return round(float(value) * WRK_UNITS[unit], 3)


def parse_wrk(text):
    """The figures of ``wrk --latency``'s summary, as :func:`parse_hey`'s;
    ``errors`` counts the non-2xx/3xx answers and the socket errors
    (connect, read, write, timeout); no answer, no percentiles."""
    units = "|".join(WRK_UNITS)
    done = re.search(rf"(\d+) requests in ([\d.]+)({units})\b", text)
    if not done:
        raise ValueError("no summary in wrk's output")
    requests = int(done.group(1))
    rejected = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    rejected = int(rejected.group(1)) if rejected else 0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), "
                        r"write (\d+), timeout (\d+)", text)
    failed = sum(int(n) for n in sockets.groups()) if sockets else 0
    percentiles = {int(p): wrk_ms(value, unit) for p, value, unit in
                   re.findall(rf"^\s+(\d+)%\s+([\d.]+)({units})\s*$", text,
                              re.M)} if requests else {}
    return {"seconds": wrk_ms(*done.group(2, 3)) / 1000,
            "ok": requests - rejected, "errors": rejected + failed,
            "p50_ms": percentiles.get(50), "p99_ms": percentiles.get(99)}


PARSERS = {"hey": parse_hey, "wrk": parse_wrk}


def run(tool, url, body_file, clients, seconds, folder):
    """One run of ``tool`` at ``clients`` connections: its row
    (``clients``, ``reviews_per_s``: answers 200 per second, ``p50_ms``,
    ``p99_ms``, ``errors``, ``requests``), or ``{"clients", "failed"}``."""
    line = command(tool, url, body_file, clients, seconds, folder)
    output = ""
    try:
        done = subprocess.run(line, capture_output=True, text=True,
                              timeout=seconds + 120)
        output = done.stdout + done.stderr
        figures = PARSERS[tool](done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        return {"clients": clients,
                "failed": f"{error} {output.strip()[-300:]}".strip()}
    return {"clients": clients,
            "reviews_per_s": round(figures["ok"] / figures["seconds"], 1),
            "p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"],
            "errors": figures["errors"],
            "requests": figures["ok"] + figures["errors"]}


def markdown_table(rows):
    """The rows (``generator``, ``clients``, ``reviews_per_s``, ``ratio``,
    ``p50_ms``, ``p99_ms``, ``errors``) as a Markdown table."""
    def figure(value, digits):
        return "–" if value is None else f"{value:,.{digits}f}"

    lines = ["| load generator | clients | reviews/s | ratio to in process "
             "| p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "failed" in row:
            lines.append(f"| {row['generator']} | {row['clients']} | "
                         f"failed: {row['failed']} | | | | |")
            continue
        lines.append(
            f"| {row['generator']} | {row['clients']} | "
            f"{figure(row['reviews_per_s'], 0)} | {figure(row['ratio'], 2)} "
            f"| {figure(row['p50_ms'], 1)} | {figure(row['p99_ms'], 1)} | "
            f"{row['errors']} |")
    return "\n".join(lines)
