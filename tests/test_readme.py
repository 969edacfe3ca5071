"""The README's examples, run as written and in the order a reader runs
them, from a fresh directory: the Quick start's commands, the Python API
example, then serving the Quick start's export and asking it what the
Quick start's `predict` answered.

Every output line the README shows is compared with the command's output:
the words exactly, the figures to :data:`CLOSE` (they are rounded, and
another CPU may sum in another order), times not at all. The app sections'
commands (minutes of training on 2 cores) are the ``slow`` test.
"""

import hashlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Largest difference allowed between a figure the README shows and the
#: one computed.
CLOSE = 0.02
NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


def section(title):
    """The text of the README's section ``## title`` (or ``### title``)."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#{{2,3}} |\Z)", README,
                      re.S | re.M)
    assert match, f"no section {title!r} in README.md"
    return match.group(1)


def examples(text, language="bash"):
    """The ``(command, expected output lines)`` of the ``language`` blocks
    of ``text``: a command is a line starting with ``nlpseq`` (``\\``
    continues it), its output the ``# `` lines under it, as shown."""
    steps = []
    for block in re.findall(rf"```{language}\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            if line.startswith("# ") and steps:
                steps[-1][1].append(line[2:])
            elif line.strip() and not line.startswith("#"):
                steps.append((line, []))
    return steps


def argv(command):
    """The command line as Python runs it here (``nlpseq ...`` is
    ``python -m nlpseq ...``; a pipe from ``echo`` becomes its input)."""
    text, stdin = command, None
    piped = re.match(r'echo "([^"]*)" \| (.*)', command)
    if piped:
        stdin, text = piped.group(1) + "\n", piped.group(2)
    words = shlex.split(text, comments=True)
    assert words[0] == "nlpseq", command
    return [sys.executable, "-m", "nlpseq", *words[1:]], stdin


def environment():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # (as a user's shell: TensorFlow's own start-up log setting unset)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return env


def run(command, cwd):
    args, stdin = argv(command)
    result = subprocess.run(args, cwd=cwd, input=stdin, env=environment(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    return result


def pattern(shown):
    """A regular expression for an output line as the README shows it:
    figures captured, a time (``5 s``, ``0.6 s``) any time."""
    parts, last = [], 0
    for match in re.finditer(rf"({NUMBER})( s\b)?", shown):
        parts.append(re.escape(shown[last:match.start()]))
        parts.append(rf"({NUMBER})" if not match.group(2)
                     else rf"{NUMBER} s\b")
        last = match.end()
    parts.append(re.escape(shown[last:]))
    return re.compile("".join(parts).replace(r"\ ", " "))


def figures(text):
    return [float(n.replace(",", "")) for n in re.findall(NUMBER, text)]


def check_output(command, shown, output):
    """Each line of ``shown`` but ``...`` ones is a line of ``output``, its
    figures within :data:`CLOSE` of the README's."""
    lines = output.splitlines()
    for expected in shown:
        if expected.startswith("..."):
            continue
        regex = pattern(expected)
        found = [m for m in map(regex.fullmatch, lines) if m]
        assert found, (f"`{command}`: README shows\n  {expected}\n"
                       f"the command printed\n{output}")
        want = figures(re.sub(rf"{NUMBER} s\b", "", expected))
        got = [float(g.replace(",", "")) for g in found[0].groups()]
        assert got == pytest.approx(want, abs=CLOSE), (command, expected,
                                                      found[0].group(0))


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(
        p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_until(process, needle, timeout):
    """The server's output lines up to the first that contains ``needle``."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    pytest.fail(f"no {needle!r} from the server:\n" + "\n".join(lines))


@pytest.fixture()
def home(tmp_path):
    """A fresh directory with the repository's ``apps/`` in it (the README's
    commands name ``apps/data/...``), as in a clone."""
    (tmp_path / "apps").symlink_to(ROOT / "apps")
    return tmp_path


def test_quick_start_python_api_and_serving_in_order(home):
    # 1. The Quick start's commands, each with the output the README shows.
    steps = examples(section("Quick start"))
    commands = [c for c, _ in steps if c.startswith("nlpseq ")]
    assert commands[0].startswith("nlpseq sentiment train"), commands
    answers = {}
    for command, shown in steps:
        if not command.startswith("nlpseq "):
            continue  # (make install, make test: what this suite is)
        result = run(command, home)
        check_output(command, shown, result.stdout + result.stderr)
        if " predict " in command:
            answers = {line.split("\t")[2]: line.split("\t")[:2]
                       for line in result.stdout.splitlines()}
    assert "not bad at all" in answers, answers
    quick_start = digest(home / "saved_models" / "sentiment")

    # 2. The Python API example: its two prints, nothing else; its own
    # folder, the Quick start's untouched.
    code = re.search(r"```python\n(.*?)```", section("Python API"),
                     re.S).group(1)
    result = subprocess.run([sys.executable, "-c", code], cwd=home,
                            env=environment(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("[{'text': 'a good film', 'label': ")
    assert lines[1] in ("pos", "neg")
    assert (home / "saved_models/sentiment-api/export/1/saved_model.pb"
            ).is_file()
    assert digest(home / "saved_models" / "sentiment") == quick_start

    # 3. Serving the Quick start's export: "Loading", then "Ready", then
    # /readyz, then the README's request, answered as `predict` answered.
    (serve, shown), = examples(section("Export and serving"))[:1]
    assert serve.startswith("nlpseq serve --model sentiment="), serve
    rest, grpc = free_port(), free_port()
    args, _ = argv(serve)
    # (free ports, in case 8501 or 8500 is taken on this machine)
    args += ["--rest-port", str(rest), "--grpc-port", str(grpc)]
    server = subprocess.Popen(args, cwd=home, env=environment(),
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        output = read_until(server, "Ready:", timeout=180)
        printed = "\n".join(output).replace(f":{rest}", ":8501").replace(
            f":{grpc}", ":8500")
        check_output(serve, shown, printed)
        with urllib.request.urlopen(f"http://127.0.0.1:{rest}/readyz",
                                    timeout=30) as response:
            assert json.load(response) == {"status": "ready"}
        curl = re.search(r"curl -d '(.*?)' \\\n\s*localhost:8501(\S+)",
                         section("Export and serving"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{rest}{curl.group(2)}",
            data=curl.group(1).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        text = json.loads(curl.group(1))["instances"][0]
        label, probability = answers[text]
        prediction = body["predictions"][0]
        assert prediction["label"] == label
        assert max(prediction["probabilities"]) == pytest.approx(
            float(probability), abs=1e-4)
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.slow  # (the samples' full trainings: about 5 min on 2 cores)
def test_the_app_sections_commands_in_order(home):
    for title in ("Sentiment", "Topic", "Next word", "NER", "Translation"):
        for command, shown in examples(section(title)):
            result = run(command, home)
            check_output(command, shown, result.stdout + result.stderr)
