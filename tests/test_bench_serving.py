"""The external load generators of ``bench/serving.py`` (``bench/_loadgen.py``):
their summaries parsed into the benchmark's row, checked on output that
``hey`` 0.1.4 and ``wrk`` 4.1.0 (Debian 12) printed against ``nlpseq
serve``'s tiny sentiment model (tabs and a line of spaces written as
escapes, one long line cut with a backslash)."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
_spec = importlib.util.spec_from_file_location("_loadgen",
                                               BENCH / "_loadgen.py")
loadgen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(loadgen)

# hey -z 2s -c 64 -m POST -T application/json -D body.json URL
HEY_64 = """
Summary:
  Total:\t2.0257 secs
  Slowest:\t0.4042 secs
  Fastest:\t0.0103 secs
  Average:\t0.0323 secs
  Requests/sec:\t1961.7548
\x20\x20
  Total data:\t393426 bytes
  Size/request:\t99 bytes

Response time histogram:
  0.010 [1]\t|
  0.050 [3708]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
  0.089 [182]\t|■■
  0.128 [8]\t|
  0.168 [3]\t|
  0.207 [8]\t|
  0.247 [0]\t|
  0.286 [0]\t|
  0.325 [0]\t|
  0.365 [0]\t|
  0.404 [64]\t|■


Latency distribution:
  10% in 0.0180 secs
  25% in 0.0199 secs
  50% in 0.0229 secs
  75% in 0.0278 secs
  90% in 0.0393 secs
  95% in 0.0588 secs
  99% in 0.3977 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0001 secs, 0.0103 secs, 0.4042 secs
  DNS-lookup:\t0.0000 secs, 0.0000 secs, 0.0000 secs
  req write:\t0.0000 secs, 0.0000 secs, 0.0190 secs
  resp wait:\t0.0319 secs, 0.0102 secs, 0.4042 secs
  resp read:\t0.0001 secs, 0.0000 secs, 0.0080 secs

Status code distribution:
  [200]\t3974 responses



"""

# hey -n 20 -c 2 ... with a body the server rejects (400)
HEY_400 = """
Summary:
  Total:\t0.0074 secs
  Slowest:\t0.0016 secs
  Fastest:\t0.0003 secs
  Average:\t0.0007 secs
  Requests/sec:\t2686.0207
\x20\x20
  Total data:\t1760 bytes
  Size/request:\t88 bytes

Response time histogram:
  0.000 [1]\t|■■■■■■■
  0.000 [3]\t|■■■■■■■■■■■■■■■■■■■■
  0.001 [6]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
  0.001 [2]\t|■■■■■■■■■■■■■
  0.001 [5]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
  0.001 [0]\t|
  0.001 [0]\t|
  0.001 [0]\t|
  0.001 [1]\t|■■■■■■■
  0.001 [0]\t|
  0.002 [2]\t|■■■■■■■■■■■■■


Latency distribution:
  10% in 0.0004 secs
  25% in 0.0005 secs
  50% in 0.0006 secs
  75% in 0.0008 secs
  90% in 0.0015 secs
  95% in 0.0016 secs
  0% in 0.0000 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0000 secs, 0.0003 secs, 0.0016 secs
  DNS-lookup:\t0.0000 secs, 0.0000 secs, 0.0000 secs
  req write:\t0.0000 secs, 0.0000 secs, 0.0001 secs
  resp wait:\t0.0005 secs, 0.0002 secs, 0.0012 secs
  resp read:\t0.0001 secs, 0.0000 secs, 0.0004 secs

Status code distribution:
  [400]\t20 responses



"""

# hey -n 4 -c 2 ... to a closed port
HEY_REFUSED = """
Summary:
  Total:\t0.0005 secs
  Slowest:\t0.0000 secs
  Fastest:\t0.0000 secs
  Average:\t NaN secs
  Requests/sec:\t7657.9207
\x20\x20

Response time histogram:


Latency distribution:

Details (average, fastest, slowest):
  DNS+dialup:\t NaN secs, 0.0000 secs, 0.0000 secs
  DNS-lookup:\t NaN secs, 0.0000 secs, 0.0000 secs
  req write:\t NaN secs, 0.0000 secs, 0.0000 secs
  resp wait:\t NaN secs, 0.0000 secs, 0.0000 secs
  resp read:\t NaN secs, 0.0000 secs, 0.0000 secs

Status code distribution:

Error distribution:
  [4]\tPost "http://127.0.0.1:1/v1/models/sentiment:predict": dial tcp \
127.0.0.1:1: connect: connection refused

"""

# wrk -t 2 -c 16 -d 3s --latency -s post.lua URL
WRK_16 = """Running 3s test @ http://127.0.0.1:18765/v1/models/sentiment:predict
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.21ms   18.10ms 153.13ms   95.97%
    Req/Sec     1.35k   199.90     1.62k    84.48%
  Latency Distribution
     50%    5.57ms
     75%    5.90ms
     90%    7.95ms
     99%  119.57ms
  7943 requests in 3.02s, 1.70MB read
Requests/sec:   2626.46
Transfer/sec:    574.54KB
"""

# wrk -t 1 -c 2 -d 1s ... with a body the server rejects (400)
WRK_400 = """Running 1s test @ http://127.0.0.1:18765/v1/models/sentiment:predict
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.06ms    2.00ms  16.41ms   89.48%
    Req/Sec     4.80k     1.81k    6.74k    60.00%
  Latency Distribution
     50%  297.00us
     75%  390.00us
     90%    3.18ms
     99%   10.12ms
  4799 requests in 1.01s, 1.02MB read
  Non-2xx or 3xx responses: 4799
Requests/sec:   4767.43
Transfer/sec:      1.01MB
"""

# wrk -t 1 -c 2 -d 2s ... to a server that closes every connection
WRK_CLOSED = """Running 2s test @ http://127.0.0.1:18766/v1/models/sentiment:predict
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 2.10s, 0.00B read
  Socket errors: connect 0, read 16278, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


def test_hey_summary():
    figures = loadgen.parse_hey(HEY_64)
    assert figures == {"seconds": 2.0257, "ok": 3974, "errors": 0,
                       "p50_ms": 22.9, "p99_ms": 397.7}
    # the answers of the histogram, all 200
    histogram = re.findall(r"^  [\d.]+ \[(\d+)\]\t", HEY_64, re.M)
    assert sum(map(int, histogram)) == figures["ok"]


def test_hey_errors_are_counted_and_missing_percentiles_are_none():
    # every answer a 400; hey printed "0% in 0.0000 secs" for the 99th
    assert loadgen.parse_hey(HEY_400) == {
        "seconds": 0.0074, "ok": 0, "errors": 20, "p50_ms": 0.6,
        "p99_ms": None}
    # no answer: the failed requests of the error distribution
    assert loadgen.parse_hey(HEY_REFUSED) == {
        "seconds": 0.0005, "ok": 0, "errors": 4, "p50_ms": None,
        "p99_ms": None}


def test_wrk_summary():
    figures = loadgen.parse_wrk(WRK_16)
    assert figures == {"seconds": 3.02, "ok": 7943, "errors": 0,
                       "p50_ms": 5.57, "p99_ms": 119.57}
    # wrk's own requests/s
    printed = float(re.search(r"Requests/sec:\s+([\d.]+)", WRK_16).group(1))
    assert figures["ok"] / figures["seconds"] == pytest.approx(printed,
                                                               rel=2e-3)


def test_wrk_errors_and_units():
    # non-2xx answers, latencies in microseconds
    assert loadgen.parse_wrk(WRK_400) == {
        "seconds": 1.01, "ok": 0, "errors": 4799, "p50_ms": 0.297,
        "p99_ms": 10.12}
    # socket errors, no answer: no percentiles
    assert loadgen.parse_wrk(WRK_CLOSED) == {
        "seconds": 2.1, "ok": 0, "errors": 16278, "p50_ms": None,
        "p99_ms": None}


@pytest.mark.parametrize("parse", [loadgen.parse_hey, loadgen.parse_wrk])
def test_output_without_a_summary_is_an_error(parse):
    # (wrk prints "unable to connect to 127.0.0.1:1 Connection refused" on
    # stderr, and nothing on stdout)
    with pytest.raises(ValueError, match="no summary"):
        parse("")


@pytest.mark.parametrize("installed, tool, chosen", [
    ({"hey", "wrk"}, "auto", "hey"), ({"wrk"}, "auto", "wrk"),
    ({"hey", "wrk"}, "wrk", "wrk"), (set(), "auto", None),
    ({"wrk"}, "hey", None), ({"hey", "wrk"}, "none", None)])
def test_choose(monkeypatch, installed, tool, chosen):
    monkeypatch.setattr(loadgen.shutil, "which",
                        lambda name: f"/usr/bin/{name}"
                        if name in installed else None)
    name, note = loadgen.choose(tool)
    assert name == chosen
    assert (note is None) == (chosen is not None)
    if chosen is None and tool != "none":
        assert "not installed" in note and "apt-get install" in note


def test_commands(tmp_path):
    body = tmp_path / "body.json"
    url = "http://127.0.0.1:8501/v1/models/sentiment:predict"
    assert loadgen.command("hey", url, body, 16, 10.0, tmp_path) == [
        "hey", "-z", "10s", "-c", "16", "-t", "30", "-m", "POST",
        "-T", "application/json", "-D", str(body), url]
    line = loadgen.command("wrk", url, body, 64, 10.0, tmp_path)
    assert line[line.index("-c") + 1] == "64"
    assert line[line.index("-d") + 1] == "10s"
    assert "--latency" in line and line[-1] == url
    script = Path(line[line.index("-s") + 1]).read_text()
    assert f"io.open({json.dumps(str(body))}, \"rb\")" in script
    assert 'wrk.method = "POST"' in script


def test_markdown_table():
    rows = [{"generator": "hey", "clients": 16, "reviews_per_s": 1234.5,
             "ratio": 0.6123, "p50_ms": 12.34, "p99_ms": None, "errors": 0},
            {"generator": "wrk", "clients": 1, "failed": "no summary"}]
    lines = loadgen.markdown_table(rows).splitlines()
    assert lines[2] == "| hey | 16 | 1,234 | 0.61 | 12.3 | – | 0 |"
    assert lines[3].startswith("| wrk | 1 | failed: no summary |")


@pytest.mark.slow
@pytest.mark.parametrize("tool", loadgen.TOOLS)
def test_a_run_against_the_server(serving, tmp_path, tool):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed")
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"instances": ["a fine film"]}))
    row = loadgen.run(tool, f"{serving.rest_url}/v1/models/sentiment:predict",
                      body, 2, 1, tmp_path)
    assert row["clients"] == 2 and row["errors"] == 0
    assert row["requests"] > 0 and row["reviews_per_s"] > 0
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    # a model the server lacks: every request an error (404)
    row = loadgen.run(tool, f"{serving.rest_url}/v1/models/none:predict",
                      body, 2, 1, tmp_path)
    assert row["reviews_per_s"] == 0 and row["errors"] == row["requests"] > 0
