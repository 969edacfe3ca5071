"""The HTML report of a trained model: one self-contained, offline file.

``nlpseq <app> report`` and :meth:`nlpseq.tasks.base.Task.report` write it,
and training writes ``report.html`` into the model folder (in the staging
folder, so it is part of the atomic publish). It holds the run's settings
and data summary (``config.json``, ``metrics.json``, the preprocessor's
sizes), the training curves of ``history.csv`` (loss, metrics and learning
rate per epoch, the kept epoch marked) and a part per model family, drawn
from data (``--data``, or the validation data the model was trained with):

- classifier: confusion matrix, per-class precision/recall/F1, the most
  confident mistakes, the histogram of predicted probabilities;
- tagger: per-type precision/recall/F1, a confusion of entity types, sample
  sentences with gold and predicted entities highlighted by type;
- language model: perplexity per epoch, top-k accuracy, sample generations
  with each strategy (greedy, sample, beam);
- sequence-to-sequence: BLEU and chrF, sample translations with their
  references, attention heatmaps.

Images are PNGs drawn by matplotlib (its object API: no pyplot, no global
backend change) and embedded as ``data:`` URIs; tables are pandas
``DataFrame.to_html``. The page needs no network and no JavaScript.

The family parts use the families' public methods only
(``predict_probabilities``, ``predict_tags``, ``generate``,
``translate_lines``, ``attention_matrix``, ``evaluate_data``), never layers
looked up by name.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from nlpseq.errors import NlpseqError
from nlpseq.log import LOG

#: The report's file in a model folder.
REPORT = "report.html"
#: Rows of example tables (mistakes, sentences, generations...).
SAMPLES = 8

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 margin:0;color:#1f2328;background:#f6f8fa;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em 3em}
header{background:#24292f;color:#fff;padding:1.2em 2em}
header h1{margin:0;font-size:1.6em} header p{margin:.3em 0 0;color:#d0d7de}
nav{background:#fff;border-bottom:1px solid #d0d7de;padding:.5em 2em;
 font-size:.92em} nav a{margin-right:1em;color:#0969da;text-decoration:none}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;
 padding:1em 1.5em;margin:1.2em 0}
h2{margin:.2em 0 .6em;font-size:1.25em;border-bottom:1px solid #eaeef2;
 padding-bottom:.3em} h3{font-size:1.05em;margin:1em 0 .4em}
table{border-collapse:collapse;font-size:.9em;margin:.4em 0}
th,td{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;
 vertical-align:top} th{background:#f6f8fa}
td.num,table.dataframe td{font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
.note{color:#57606a;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.5em 1em;
 min-width:8em} .card b{display:block;font-size:1.35em}
.card span{color:#57606a;font-size:.85em}
.ent{border-radius:4px;padding:0 .25em;margin:0 .05em}
.ent sub{font-size:.7em;font-weight:bold;margin-left:.2em}
.tokens{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
.bad{color:#cf222e;font-weight:bold} .good{color:#1a7f37;font-weight:bold}
.figures{display:flex;flex-wrap:wrap;gap:1em}
"""

#: Background colours of entity types (pastel, readable under black text).
PALETTE = ("#ffd8a8", "#a5d8ff", "#b2f2bb", "#eebefa", "#ffec99",
           "#99e9f2", "#fcc2d7", "#d0bfff", "#c3fae8", "#e9ecef")


# -- small HTML helpers --------------------------------------------------------

def escape(value) -> str:
    return html.escape(str(value), quote=True)


def figure_html(figure, alt) -> str:
    """A matplotlib figure as an ``<img>`` with a ``data:`` URI (PNG)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def new_figure(width=6.0, height=3.5):
    """A matplotlib figure without pyplot (no backend change).

    Raises:
        NlpseqError: matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise NlpseqError("the report needs matplotlib: pip install "
                          "matplotlib") from None
    return Figure(figsize=(width, height))


def table_html(frame, **options) -> str:
    """A pandas DataFrame as an HTML table (escaped)."""
    options.setdefault("index", False)
    options.setdefault("border", 0)
    return frame.to_html(escape=True, na_rep="", float_format=_number,
                         **options)


def _number(value):
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def note(text) -> str:
    return f'<p class="note">{escape(text)}</p>'


def cards(items) -> str:
    """Headline numbers, ``[(label, value)]``."""
    shown = "".join(
        f'<div class="card"><b>{escape(_shown(value))}</b>'
        f"<span>{escape(label)}</span></div>" for label, value in items
        if value is not None)
    return f'<div class="cards">{shown}</div>' if shown else ""


def _shown(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def heatmap(matrix, rows, columns, title, xlabel, ylabel, counts=True,
            colorbar=False, cmap="Blues", limits=(None, None)):
    """A matrix drawn as a heatmap (``<img>``), with its values written in
    the cells when ``counts``."""
    matrix = np.asarray(matrix, dtype=float)
    width = min(14.0, 2.5 + 0.55 * max(len(columns), 1))
    height = min(12.0, 1.8 + 0.4 * max(len(rows), 1))
    figure = new_figure(width, height)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap=cmap, aspect="auto", vmin=limits[0],
                        vmax=limits[1])
    axes.set_xticks(range(len(columns)), [str(c) for c in columns],
                    rotation=45 if len(columns) > 3 else 0,
                    ha="right" if len(columns) > 3 else "center")
    axes.set_yticks(range(len(rows)), [str(r) for r in rows])
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if counts and matrix.size and matrix.size <= 400:
        top = matrix.max() or 1.0
        for (i, j), value in np.ndenumerate(matrix):
            axes.text(j, i, f"{value:.0f}", ha="center", va="center",
                      fontsize=8, color="white" if value > top / 2
                      else "black")
    if colorbar:
        figure.colorbar(image, ax=axes)
    return figure_html(figure, title)


# -- reading the model folder ---------------------------------------------------

def first_line(error):
    """The first line of an error's message, at most 80 characters."""
    return (str(error).strip().splitlines() or [""])[0][:80]


def damaged(path, problem):
    """Warn that the file ``path`` is left out of the report."""
    LOG.warning("%s: %s; the report is written without it", path, problem)


def _read_json(path, warn=True):
    """The JSON object in ``path``: ``None`` when absent, or (with a
    warning naming the file) when damaged or not an object."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        if warn:
            damaged(path, f"not readable JSON ({first_line(error)})")
        return None
    if not isinstance(value, dict):
        if warn:
            damaged(path, f"a JSON {type(value).__name__}, not an object")
        return None
    return value


def read_history(folder, warn=False):
    """``history.csv`` as a pandas DataFrame of numbers (``None`` when
    absent or damaged; ``warn``: with a warning naming the file)."""
    import pandas as pd

    path = Path(folder) / "history.csv"
    if not path.is_file():
        return None
    problem = None
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError) as error:  # (empty, binary, cut short)
        frame, problem = None, f"not a CSV table ({first_line(error)})"
    if frame is not None and (frame.empty or "epoch" not in frame):
        frame, problem = None, "no 'epoch' column or no rows"
    if frame is not None:
        numbers = frame.apply(pd.to_numeric, errors="coerce")
        bad = numbers.isna() & frame.notna()
        if bad.any().any():
            row = int(bad.any(axis=1).to_numpy().argmax())
            column = bad.columns[bad.iloc[row].to_numpy().argmax()]
            frame, problem = None, (f"line {row + 2}: {column} is "
                                    f"{str(frame[column].iloc[row])!r}, "
                                    "not a number")
        else:
            frame = numbers
    if problem and warn:
        damaged(path, problem)
    return frame


def kept_epoch(folder, config, history):
    """The epoch (counted from 0, as in ``history.csv``) whose weights the
    model holds: RunState's best epoch with ``keep = best``, else the last
    one."""
    state = _read_json(Path(folder) / "checkpoints" / "state.json") or {}
    best, done = state.get("best_epoch"), state.get("epochs_done")
    if config.get("keep", "best") == "best" and isinstance(best, int) and \
            best >= 0:
        return best
    if isinstance(done, int) and done > 0:
        return done - 1
    if history is not None:
        return int(history["epoch"].max())
    return None


# -- the data the family parts read ---------------------------------------------

def report_data(task, data=None):
    """``(data, description)`` for the family part: ``data`` given (a SPEC
    or data already read), else the validation data the model was trained
    with when it can be found: the ``valid`` setting, the app's built-in
    validation sample, or the held-out part of the training data
    (``valid_split``, split again as training did). ``(None, why)`` when
    none is found.

    Raises:
        NlpseqError: a ``data`` SPEC that cannot be read.
    """
    if data is not None:
        if isinstance(data, (str, Path)):
            return task.read_data(str(data), "evaluate"), f"--data {data}"
        return data, "the data given"
    config = task.config
    try:
        if config.get("valid"):
            return (task.read_data(str(config["valid"]), "valid"),
                    f"the validation data ({config['valid']})")
        if config.get("data") is None and task.default_valid is not None:
            return (task.read_data(str(task.default_valid), "valid"),
                    "the built-in validation sample "
                    f"({Path(task.default_valid).name})")
        spec = config.get("data") or (str(task.default_data)
                                      if task.default_data else None)
        if spec:
            train = task.read_data(str(spec), "train")
            _, valid = task.split_data(train, config["valid_split"])
            return valid, (f"the held-out part of {spec} (valid_split "
                           f"{config['valid_split']}, split as in training)")
    except (NlpseqError, OSError) as error:
        return None, (f"the validation data could not be read ({error}); "
                      "give --data")
    return None, "no validation data is known; give --data"


# -- the report ------------------------------------------------------------------

def write_report(task, folder=None, data=None, output=None, metrics=None,
                 data_description=None, title=None):
    """Write the HTML report of ``task`` and return its path.

    Args:
        task: a trained or loaded task.
        folder: the folder holding its files (``config.json``,
            ``metrics.json``, ``history.csv``...; default: the task's model
            folder).
        data: a data SPEC or data as read by ``read_data`` for the family
            part (default: the validation data, see :func:`report_data`).
        output: the HTML file (default: ``<folder>/report.html``).
        metrics: the metrics of ``data`` when known (training's, of the
            validation data), to reuse rather than compute again; by
            default ``metrics.json``'s when ``data`` is the validation
            data.
        data_description: what ``data`` is, when data already read is
            given.
        title: the model folder's name in the heading (default:
            ``folder``'s).

    Raises:
        NlpseqError: no folder to read, unreadable ``--data``, an output
            that cannot be written, or matplotlib missing.
    """
    from nlpseq import inputs
    from nlpseq.folder import write_text_atomic

    output = inputs.path_argument("report", "output", output)
    if isinstance(data, inputs.SPEC_LIKE):
        data = inputs.path_argument("report", "data", data)
    if folder is None:
        if task.folder is None:
            raise NlpseqError("report: the model has no model folder (load "
                              "it with nlpseq.load or train it first)")
        folder = task.folder.path
    folder = Path(folder)
    new_figure()  # (matplotlib is there, before any work)
    output = Path(output) if output else folder / REPORT
    if output.is_dir():
        raise NlpseqError(f"--output {output}: a folder; give a file name")
    if not output.parent.is_dir():
        raise NlpseqError(f"--output {output}: no folder {output.parent}")
    saved = _read_json(folder / "metrics.json") or {}
    explicit = data is not None and data_description is None
    found, described = report_data(task, data)
    described = data_description or described
    if metrics is None and not explicit:
        metrics = saved or None
    page = render(task, folder, saved, found, described,
                  metrics if found is not None else None, title)
    try:
        if task.folder is not None and output.parent.resolve() == \
                task.folder.path.resolve():
            # (not while a new model is swapped in for the folder)
            with task.folder.export_lock():
                write_text_atomic(output, page)
        else:
            write_text_atomic(output, page)
    except OSError as error:
        raise NlpseqError(f"--output {output}: {error}") from None
    return output


def render(task, folder, saved_metrics, data, described, metrics=None,
           title=None):
    """The report's HTML text."""
    config_file = _read_json(folder / "config.json") or {}
    config = dict(task.config)
    history = read_history(folder, warn=True)
    kept = kept_epoch(folder, config, history)
    sections = [
        ("summary", "Summary", summary_html(task, saved_metrics, kept)),
        ("settings", "Settings", settings_html(config_file, config)),
        ("data", "Data", data_html(task, config, data, described)),
        ("training", "Training curves", training_html(history, kept)),
    ]
    if data is None:
        sections.append((f"{task.family}-skipped", "Evaluation",
                         note(f"The evaluation sections are skipped: "
                              f"{described}.")))
    else:
        sections += task.report_sections(data, described, metrics, history)
    nav = "".join(f'<a href="#{escape(i)}">{escape(t)}</a>'
                  for i, t, _ in sections)
    body = "".join(f'<section id="{escape(i)}"><h2>{escape(t)}</h2>{h}'
                   "</section>" for i, t, h in sections)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    version = config_file.get("nlpseq_version", "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">"
        f"<title>nlpseq report: {escape(task.name)}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>nlpseq report: {escape(task.name)} "
        f"({escape(task.family)})</h1><p>{escape(title or folder)} &middot; "
        f"nlpseq {escape(version)} &middot; written {escape(when)}</p>"
        f"</header><nav>{nav}</nav><main>{body}</main></body></html>\n")


def summary_html(task, metrics, kept):
    headline = ""
    if metrics:
        try:
            headline = task.headline(metrics)
        except (KeyError, TypeError, ValueError):
            headline = ""
    items = [(k.replace("_", " "), metrics.get(k)) for k in (
        "accuracy", "macro_f1", "f1", "precision", "recall", "perplexity",
        "top5_accuracy", "bleu", "chrf") if isinstance(metrics.get(k),
                                                       (int, float))]
    items += [("parameters", metrics.get("parameters")),
              ("training seconds", metrics.get("training_seconds"))]
    if kept is not None:
        items.append(("kept epoch", kept + 1))
    text = f"<p>{escape(headline)}</p>" if headline else ""
    scalars = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    table = ""
    if scalars:
        import pandas as pd

        table = ("<h3>metrics.json (validation)</h3>" + table_html(
            pd.DataFrame({"metric": list(scalars),
                          "value": [_shown(v) for v in scalars.values()]})))
    return (text + cards(items) + table) or note("No metrics.json.")


def settings_html(config_file, config):
    import pandas as pd

    rows = [(k, "" if v is None else json.dumps(v) if isinstance(
        v, (list, dict, bool)) else str(v)) for k, v in sorted(config.items())]
    head = cards([("app", config_file.get("app")),
                  ("nlpseq version", config_file.get("nlpseq_version"))])
    third = math.ceil(len(rows) / 3) or 1
    tables = "".join(
        table_html(pd.DataFrame(rows[i:i + third],
                                columns=["setting", "value"]))
        for i in range(0, len(rows), third))
    return head + f'<div class="figures">{tables}</div>'


def data_html(task, config, data, described):
    import pandas as pd

    rows = [("training data", config.get("data") or "the built-in sample"),
            ("validation data", config.get("valid") or (
                "the built-in validation sample" if config.get("data") is None
                and task.default_valid is not None else
                f"a held-out part (valid_split {config.get('valid_split')})"
            ))]
    if data is not None:
        rows.append(("report data", f"{described}: "
                     f"{task.describe_data(data)}"))
    else:
        rows.append(("report data", described))
    sizes = []
    if task.preprocessor is not None:
        try:
            state = task.preprocessor.get_config()
        except Exception:  # noqa: BLE001 (a description only)
            state = {}
        for key, value in state.items():
            if isinstance(value, (list, dict)):
                shown = (", ".join(map(str, value)) if isinstance(value, list)
                         and len(value) <= 12 and all(
                             isinstance(v, str) for v in value) else "")
                sizes.append((key.replace("_", " "), len(value), shown))
            elif isinstance(value, (str, int, float)):
                sizes.append((key.replace("_", " "), value, ""))
    html_text = table_html(pd.DataFrame(rows, columns=["", "source"]))
    if sizes:
        html_text += "<h3>Preprocessor (preprocessor.json)</h3>" + table_html(
            pd.DataFrame(sizes, columns=["entry", "size", "entries"]))
    return html_text


def training_html(history, kept):
    """Loss, metrics and learning rate per epoch (``history.csv``)."""
    if history is None:
        return note("No training curves: no readable history.csv.")
    epochs = history["epoch"].astype(int) + 1
    columns = [c for c in history.columns if c != "epoch"]
    metrics = [c for c in columns if not c.startswith("val_")
               and c not in ("loss", "learning_rate", "lr")]
    # (and the validation metrics of --monitor, which have no training
    # counterpart: val_f1)
    metrics += [c[4:] for c in columns if c.startswith("val_")
                and c != "val_loss" and c[4:] not in columns]
    panels = [("loss", ["loss", "val_loss"])]
    panels += [(m, [m, f"val_{m}"]) for m in metrics]
    rate = "learning_rate" if "learning_rate" in history else (
        "lr" if "lr" in history else None)
    if rate:
        panels.append(("learning rate", [rate]))
    figure = new_figure(4.2 * len(panels), 3.2)
    from matplotlib.ticker import MaxNLocator

    axes_list = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, (title, names) in zip(axes_list, panels):
        for name in names:
            if name in history:
                axes.plot(epochs, history[name], marker="o", markersize=3,
                          label="validation" if name.startswith("val_")
                          else "training")
        if kept is not None:
            axes.axvline(kept + 1, color="#cf222e", linestyle="--",
                         linewidth=1, label=f"kept (epoch {kept + 1})")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        # (whole epochs only, also on a run of two or three)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "learning rate" and history[rate].min() > 0 and \
                history[rate].max() > history[rate].min() * 10:
            axes.set_yscale("log")
        else:
            axes.ticklabel_format(axis="y", useOffset=False)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.tight_layout()
    shown = history.copy()
    shown["epoch"] = epochs
    kept_text = (f"The model holds the weights of epoch {kept + 1} (marked)."
                 if kept is not None else "")
    return (figure_html(figure, "training curves") + note(kept_text)
            + "<h3>history.csv</h3>" + table_html(shown))


# -- classifier ------------------------------------------------------------------

def classifier_sections(task, data, described, metrics, history):
    """Confusion matrix, per-class P/R/F1, most confident mistakes, the
    probability histogram."""
    import pandas as pd

    from nlpseq.data import encode_labels
    from nlpseq.metrics import classification_report

    names = task.class_names
    gold = encode_labels(data.labels, names, source=data.source)
    probabilities = task.predict_probabilities(list(data.texts))
    predicted = np.argmax(probabilities, axis=-1)
    scores = classification_report(gold, predicted, names)
    head = cards([("accuracy", scores["accuracy"]),
                  ("macro F1", scores["macro_f1"]),
                  ("texts", scores["count"])]) + note(f"On {described}.")
    cascade = task.preprocessor.cascade
    if cascade:
        text = (f"Cascade: the n-gram model decides alone where its margin "
                f"is above {cascade['threshold']:.4f}")
        if "texts" in cascade:  # (chosen by nlpseq <app> cascade)
            text += (
                f", chosen on {cascade['data']} ({cascade['texts']:,} texts)"
                f": {100 * cascade['decided_alone']:.1f} % of them decided "
                f"alone, accuracy {100 * cascade['accuracy']:.2f} % against "
                f"{100 * cascade['full_accuracy']:.2f} % for the whole model "
                f"(tolerance {cascade['tolerance']:g} point)")
        head += note(text + ". The figures above are the cascade's.")
    confusion = heatmap(scores["confusion_matrix"], names, names,
                        "confusion matrix", "predicted", "true")
    per_class = pd.DataFrame(
        [(n, c["precision"], c["recall"], c["f1"], c["support"])
         for n, c in scores["per_class"].items()],
        columns=["class", "precision", "recall", "F1", "support"])
    confidence = probabilities[np.arange(len(predicted)), predicted]
    wrong = np.flatnonzero(predicted != gold)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:SAMPLES]
    if len(wrong):
        mistakes = table_html(pd.DataFrame(
            [(_cut(data.texts[i]), names[gold[i]], names[predicted[i]],
              float(confidence[i])) for i in wrong],
            columns=["text", "true", "predicted", "probability"]))
    else:
        mistakes = note("No mistakes on this data.")
    figure = new_figure(6, 3.2)
    axes = figure.subplots()
    bins = np.linspace(1.0 / len(names) if len(names) > 1 else 0, 1, 21)
    correct = predicted == gold
    axes.hist([confidence[correct], confidence[~correct]], bins=bins,
              stacked=True, color=["#1a7f37", "#cf222e"],
              label=["correct", "wrong"])
    axes.set_xlabel("probability of the predicted class")
    axes.set_ylabel("texts")
    axes.set_title("predicted probabilities")
    axes.legend()
    return [
        ("confusion", "Confusion matrix", head + confusion),
        ("per-class", "Per-class precision, recall and F1",
         table_html(per_class)),
        ("mistakes", "Most confident mistakes", mistakes),
        ("probabilities", "Probability histogram",
         figure_html(figure, "probability histogram")),
    ]


def _cut(text, limit=200):
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- tagger ----------------------------------------------------------------------

def tagger_sections(task, data, described, metrics, history):
    """Per-type P/R/F1, a confusion of entity types, sentences with gold and
    predicted entities highlighted."""
    import pandas as pd

    from nlpseq.tagging import convert, entity_scores, entity_types, spans

    tokens = [list(t) for t in data.tokens]
    predicted = task.predict_tags(tokens)
    gold = [convert(tags, task.config["tag_scheme"]) for tags in data.tags]
    scores = entity_scores(gold, predicted)
    head = cards([("F1", scores["f1"]), ("precision", scores["precision"]),
                  ("recall", scores["recall"]),
                  ("token accuracy", scores["accuracy"]),
                  ("entities", scores["entities"])]) + note(
        f"On {described}; percent, as conlleval reports them.")
    per_type = pd.DataFrame(
        [(k, v["precision"], v["recall"], v["f1"], v["support"])
         for k, v in scores["per_type"].items()],
        columns=["type", "precision", "recall", "F1", "support"])
    types = sorted(set(entity_types(task.tags)) | set(scores["per_type"]))
    none = "(none)"
    labels = types + [none]
    index = {t: i for i, t in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), int)
    for g, p in zip(gold, predicted):
        gold_spans = {(s, e): k for k, s, e in spans(g)}
        predicted_spans = {(s, e): k for k, s, e in spans(p)}
        for where, kind in gold_spans.items():
            matrix[index[kind], index[predicted_spans.get(where, none)]] += 1
        for where, kind in predicted_spans.items():
            if where not in gold_spans:
                matrix[index[none], index[kind]] += 1
    confusion = heatmap(matrix, labels, labels, "entity types (exact spans)",
                        "predicted", "gold") + note(
        "Rows: gold entities, columns: the predicted entity with the same "
        "span; (none): a gold entity not found, or a predicted one that is "
        "not gold.")
    colours = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}
    legend = " ".join(
        f'<span class="ent" style="background:{colours[t]}">{escape(t)}'
        "</span>" for t in types)
    chosen = _sample_sentences(gold, predicted)
    rows = []
    for i in chosen:
        ok = gold[i] == predicted[i]
        mark = ('<span class="good">&#10003;</span>' if ok else
                '<span class="bad">&#10007;</span>')
        rows.append(
            f"<tr><td>{mark}</td><td>gold</td><td class=\"tokens\">"
            f"{_highlight(tokens[i], gold[i], colours)}</td></tr>"
            f"<tr><td></td><td>predicted</td><td class=\"tokens\">"
            f"{_highlight(tokens[i], predicted[i], colours)}</td></tr>")
    sentences = (f"<p>Types: {legend}</p><table><tr><th></th><th></th>"
                 f"<th>sentence</th></tr>{''.join(rows)}</table>"
                 if rows else note("No sentences."))
    return [
        ("per-type", "Per-type precision, recall and F1",
         head + table_html(per_type)),
        ("entity-confusion", "Confusion of entity types", confusion),
        ("entities", "Sample sentences", sentences),
    ]


def _sample_sentences(gold, predicted):
    """Up to :data:`SAMPLES` sentences with entities, half of them with
    mistakes when there are some, in their order."""
    with_entities = [i for i, g in enumerate(gold)
                     if any(t != "O" for t in g) or any(
                         t != "O" for t in predicted[i])]
    wrong = [i for i in with_entities if gold[i] != predicted[i]]
    chosen = wrong[:SAMPLES // 2]
    for i in with_entities:
        if len(chosen) >= SAMPLES:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)


def _highlight(tokens, tags, colours):
    """The tokens as HTML, each entity a span coloured by its type."""
    from nlpseq.tagging import spans

    starts = {s: (k, e) for k, s, e in spans(tags)}
    parts, i = [], 0
    while i < len(tokens):
        if i in starts:
            kind, end = starts[i]
            colour = colours.get(kind, PALETTE[-1])
            inner = " ".join(escape(t) for t in tokens[i:end])
            parts.append(f'<span class="ent" style="background:{colour}">'
                         f"{inner}<sub>{escape(kind)}</sub></span>")
            i = end
        else:
            parts.append(escape(tokens[i]))
            i += 1
    return " ".join(parts)


# -- language model --------------------------------------------------------------

#: The strategies of the sample generations, with their options.
STRATEGIES = (("greedy", {}), ("sample", {"temperature": 1.0, "top_k": 0,
                                          "seed": 0}),
              ("beam", {"beam_width": 4}))


def language_model_sections(task, data, described, metrics, history):
    """Perplexity per epoch, top-k accuracy, sample generations."""
    import pandas as pd

    sections = []
    if history is not None and "loss" in history:
        epochs = history["epoch"].astype(int) + 1
        frame = pd.DataFrame({"epoch": epochs})
        figure = new_figure(6, 3.2)
        axes = figure.subplots()
        for name, label in (("loss", "training"), ("val_loss",
                                                   "validation")):
            if name in history:
                values = np.exp(np.minimum(history[name].astype(float), 50))
                frame[f"{label} perplexity"] = values
                axes.plot(epochs, values, marker="o", markersize=3,
                          label=label)
        axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel("perplexity (exp of the loss)")
        axes.set_title("perplexity per epoch")
        axes.grid(alpha=0.3)
        axes.legend()
        sections.append(("perplexity", "Perplexity per epoch",
                         figure_html(figure, "perplexity per epoch")
                         + note("exp of the per-token loss of the training "
                                "windows (history.csv); per piece for a "
                                "model of word pieces.")
                         + table_html(frame)))
    if not metrics or "top5_accuracy" not in metrics:
        metrics = task.evaluate_data(data)
    rows = [("perplexity", metrics.get("perplexity")),
            ("top-1 accuracy", metrics.get("top1_accuracy")),
            ("top-5 accuracy", metrics.get("top5_accuracy")),
            ("tokens", metrics.get("tokens"))]
    if "bits_per_character" in metrics:
        rows.append(("bits per character", metrics["bits_per_character"]))
    token = "token"
    if "word_perplexity" in metrics:  # (word pieces: the above per piece)
        token = "piece"
        rows[0] = ("perplexity per piece", metrics["perplexity"])
        rows[3] = ("pieces", metrics["tokens"])
        rows += [("perplexity per word", metrics["word_perplexity"]),
                 ("words", metrics["words"])]
    sections.append(("top-k", "Top-k accuracy", cards(rows) + note(
        f"Next-{token} accuracy on {described}: the right {token} is the "
        "most likely one (top-1) or among the five most likely (top-5).")))
    generations = []
    for prompt in _prompts(task, data):
        for strategy, options in STRATEGIES:
            text, _ = task.generate(prompt, length=12, strategy=strategy,
                                    **options)
            generations.append((prompt, strategy, text.replace("\n", " / ")))
    table = table_html(pd.DataFrame(
        generations, columns=["prompt", "strategy", "continuation"])) \
        if generations else note("No prompts.")
    sections.append(("generations", "Sample generations", table + note(
        "12 tokens after the first words of lines of the data; sample: "
        "temperature 1, seed 0; beam: width 4; / marks a line end.")))
    return sections


def _prompts(task, data, count=3):
    lines = [line for line in data.lines if line.strip()][:count]
    if task.level == "char":
        return [line[:8] for line in lines]
    return [" ".join(line.split()[:2]) for line in lines]


# -- sequence to sequence --------------------------------------------------------

def seq2seq_sections(task, data, described, metrics, history):
    """BLEU and chrF, sample translations with references, attention
    heatmaps."""
    import pandas as pd

    if not metrics or "bleu" not in metrics:
        metrics = task.evaluate_data(data)
    scores = cards([("BLEU", metrics.get("bleu")),
                    ("chrF", metrics.get("chrf")),
                    ("greedy BLEU", metrics.get("greedy_bleu")),
                    ("greedy chrF", metrics.get("greedy_chrf")),
                    ("sentences", metrics.get("sentences"))])
    signature = metrics.get("bleu_signature")
    scores += note(
        f"sacreBLEU on {described}, beam search (width "
        f"{metrics.get('beam_width')}); {signature or ''}. BLEU and chrF "
        "are computed on the final model, not per epoch (history.csv holds "
        "the losses).")
    sources = list(data.sources[:SAMPLES])
    translations, _ = task.translate_lines(sources, n_best=1) if sources \
        else ([], [])
    samples = table_html(pd.DataFrame(
        [(s, r, t[0]) for s, r, t in zip(sources, data.targets,
                                         translations)],
        columns=["source", "reference", "translation"]))
    if task.config.get("attention", "luong") == "none":
        attention = note("The model has no attention (attention = none).")
    else:
        images = []
        for line in sources[:3]:
            source, target, weights = task.attention_matrix(line)
            weights = np.asarray(weights, dtype=float)
            if not weights.size:
                continue
            images.append(heatmap(
                weights, target, source, _cut(line, 60), "source words",
                "output words", counts=False, colorbar=True,
                cmap="viridis", limits=(0.0, 1.0)))
        attention = (f'<div class="figures">{"".join(images)}</div>'
                     + note("The attention weights of greedy decoding: each "
                            "row is an output word, each column a source "
                            "word.")) if images else note("No sentences.")
    return [
        ("scores", "BLEU and chrF", scores),
        ("translations", "Sample translations", samples),
        ("attention", "Attention", attention),
    ]


def report_after_training(task, folder, staging, valid, metrics):
    """Training's report, ``report.html`` in the staging folder of the
    model folder ``folder``; an error is a warning, never a failed
    training."""
    try:
        write_report(task, staging, valid, staging / REPORT, metrics=metrics,
                     data_description="the validation data",
                     title=folder)
    except Exception as error:  # noqa: BLE001 (a report never fails training)
        LOG.warning("the report could not be written (%s: %s); the model "
                    "is saved without it", type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "")
        Path(staging / REPORT).unlink(missing_ok=True)


__all__ = ["REPORT", "classifier_sections", "language_model_sections",
           "seq2seq_sections", "tagger_sections", "report_after_training",
           "report_data", "write_report"]
