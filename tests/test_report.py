"""The HTML report (nlpseq.report): written by training into the model
folder, by ``nlpseq <app> report`` and ``task.report``; self-contained
(images as data: URIs, no external URLs), with each family's sections, and
rendered by a real headless browser (Debian's chromium) without console
errors."""

import base64
import io
import logging
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from test_pipeline import CASES

import nlpseq
from nlpseq.cli import cli

#: One app of each family, and the section ids its report must hold.
FAMILY_IDS = {
    "sentiment": ["confusion", "per-class", "mistakes", "probabilities"],
    "ner": ["per-type", "entity-confusion", "entities"],
    "next-word": ["perplexity", "top-k", "generations"],
    "translation": ["scores", "translations", "attention"],
}
COMMON_IDS = ["summary", "settings", "data", "training"]
#: Images each report holds at least (training curves + the family's).
MIN_IMAGES = {"sentiment": 3, "ner": 2, "next-word": 2, "translation": 2}


def _flags(case):
    args = case.tiny
    return {args[i][2:].replace("-", "_"): args[i + 1]
            for i in range(0, len(args), 2)}


def _train(name, folder, **extra):
    case = CASES[name]
    data = case.write_train(folder)
    cls = nlpseq.api.task_class(name)
    types = {s.name: s.type for s in cls.all_settings()}
    settings = {k: types[k](v) for k, v in _flags(case).items()}
    settings.update(extra, epochs=1)
    return nlpseq.train(name, data=str(data), model_dir=folder / "model",
                        valid_split=0.25, **settings), data


@pytest.fixture(scope="module", params=list(FAMILY_IDS))
def trained(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"report-{request.param}")
    task, data = _train(request.param, folder)
    return request.param, task, data, folder / "model"


def check_report(path, name):
    """The report's sections are there, its images decode as PNGs, and it
    names no external URL."""
    import matplotlib.image

    text = path.read_text(encoding="utf-8")
    for section in COMMON_IDS + FAMILY_IDS[name]:
        assert f'<section id="{section}">' in text, section
        assert f'href="#{section}"' in text, section
    assert "<h2>Training curves</h2>" in text
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert attribute.startswith(("data:image/png;base64,", "#")), \
            attribute[:80]
    assert not re.search(r"https?://", text)
    assert "<script" not in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) >= MIN_IMAGES[name]
    for data in images:
        pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(data)),
                                         format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 50
    return text


def test_training_writes_the_report(trained):
    name, task, _, model_dir = trained
    text = check_report(model_dir / "report.html", name)
    assert "the validation data" in text
    assert "The model holds the weights of epoch 1 (marked)." in text
    if name == "sentiment":
        assert "<th>class</th>" in text and "neg" in text
    if name == "ner":  # entities highlighted by type
        assert re.search(r'<span class="ent" style="background:#[0-9a-f]{6}">'
                         r"[^<]*(<sub>|</span>)", text)
    if name == "next-word":
        for strategy in ("greedy", "sample", "beam"):
            assert f"<td>{strategy}</td>" in text


def test_report_command_with_data(trained, tmp_path):
    name, _, data, model_dir = trained
    output = tmp_path / "other.html"
    result = CliRunner().invoke(cli, [
        name, "report", "--model-dir", str(model_dir), "--data", str(data),
        "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {output}" in result.output
    text = check_report(output, name)
    assert f"--data {data}" in text


def test_report_api_defaults_to_the_validation_data(trained):
    name, _, _, model_dir = trained
    (model_dir / "report.html").unlink()
    path = nlpseq.load(model_dir).report()
    assert path == model_dir / "report.html"
    text = check_report(path, name)
    # the held-out part of the training data, split again as in training
    assert "held-out part" in text


def test_report_without_data_skips_the_evaluation(tmp_path, trained):
    name, task, data, model_dir = trained
    if name != "sentiment":
        pytest.skip("once is enough")
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    moved = tmp_path / "moved.csv"
    shutil.move(data, moved)
    try:
        path = nlpseq.load(copy).report(output=tmp_path / "r.html")
    finally:
        shutil.move(moved, data)
    text = path.read_text(encoding="utf-8")
    assert 'id="classifier-skipped"' in text and "give --data" in text
    assert '<section id="training">' in text


def test_report_errors_are_one_error_line(trained, tmp_path):
    name, _, _, model_dir = trained
    if name != "sentiment":
        pytest.skip("once is enough")
    result = CliRunner().invoke(cli, [
        name, "report", "--model-dir", str(model_dir), "--data",
        str(tmp_path / "missing.csv")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and \
        result.output.count("\n") == 1, result.output


def test_a_report_failure_only_warns(tmp_path, monkeypatch, caplog):
    from nlpseq import report

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report, "render", broken)
    with caplog.at_level(logging.WARNING, logger="nlpseq"):
        task, _ = _train("sentiment", tmp_path)
    model_dir = tmp_path / "model"
    assert (model_dir / "model.keras").is_file()
    assert (model_dir / "metrics.json").is_file()
    assert not (model_dir / "report.html").exists()
    assert "the report could not be written (RuntimeError: drawing " \
        "failed)" in caplog.text


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary found "
                    "(apt-get install -y chromium); the headless-browser "
                    "check of the report is skipped")
def test_the_report_renders_in_headless_chromium(trained, tmp_path):
    name, _, _, model_dir = trained
    command = [_chromium(), "--headless=new", "--disable-gpu",
               "--no-sandbox", "--no-first-run", "--disable-extensions",
               f"--user-data-dir={tmp_path / 'profile'}",
               "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=2000", "--dump-dom",
               (model_dir / "report.html").resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines()
               if "CONSOLE" in line or "Uncaught" in line
               or "Failed to load resource" in line]
    assert not console, console
    dom = done.stdout
    for section in COMMON_IDS + FAMILY_IDS[name]:
        assert f'<section id="{section}">' in dom, section
    assert dom.count("<img") >= MIN_IMAGES[name]


def test_training_curves_tick_whole_epochs_on_a_short_run(monkeypatch):
    import pandas as pd

    from nlpseq import report

    figures = []
    make = report.new_figure
    monkeypatch.setattr(report, "new_figure",
                        lambda *a: figures.append(make(*a)) or figures[-1])
    history = pd.DataFrame({"epoch": [0, 1], "loss": [0.9, 0.7],
                            "val_loss": [0.95, 0.8],
                            "learning_rate": [0.01, 0.01]})
    report.training_html(history, kept=1)
    (figure,) = figures
    figure.canvas.draw()
    for axes in figure.axes:
        ticks = axes.get_xticks()
        assert len(ticks) and all(float(t).is_integer() for t in ticks), \
            ticks


#: Damage done to a copy of the sentiment model folder, the warning the
#: report command prints, and the section it writes without the file.
DAMAGE = {
    "history-not-a-number": (
        "history.csv", lambda text: text.replace(
            text.splitlines()[1].split(",")[1], "oops", 1),
        "history.csv: line 2: ", "No training curves"),
    "history-random-bytes": (
        "history.csv", bytes(range(256)) * 4,
        "history.csv: ", "No training curves"),
    "history-empty": ("history.csv", b"", "history.csv: ",
                      "No training curves"),
    "metrics-a-list": ("metrics.json", b"[1, 2]",
                       "metrics.json: a JSON list, not an object", None),
    "metrics-cut-short": (
        "metrics.json", lambda text: text[:len(text) // 2],
        "metrics.json: not readable JSON", None),
    "state-wrong-types": (
        "checkpoints/state.json", b'{"best_epoch": "x", "epochs_done": []}',
        None, None),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_is_a_warning_and_a_report_without_it(
        trained, tmp_path, case):
    """Each damaged input file gives one warning naming it, exit 0 and a
    report with every other section; never a traceback or a silent
    gap."""
    name, _, _, model_dir = trained
    if name != "sentiment":
        pytest.skip("the files are the same for every family")
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    file, damage, warning, note = DAMAGE[case]
    path = folder / file
    if callable(damage):
        path.write_text(damage(path.read_text()))
    else:
        path.write_bytes(damage)
    result = CliRunner().invoke(cli, [name, "report", "--model-dir",
                                      str(folder)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.output.splitlines()
                if line.startswith("warning: ")]
    if warning is None:
        assert warnings == [], result.output
    else:
        assert len(warnings) == 1, result.output
        assert str(folder / file) + ": " in warnings[0]
        assert warning.split(": ", 1)[-1] in warnings[0], warnings
        assert "the report is written without it" in warnings[0]
    page = (folder / "report.html").read_text()
    for section in COMMON_IDS + FAMILY_IDS[name]:
        assert f'<section id="{section}">' in page, section
    if note:
        assert note in page
