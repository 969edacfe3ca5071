"""``nlpseq lab gradients|memory|gates|hello``: experiments on the cells.

Each command calls one function of :mod:`nlpseq.lab`, prints its table and
writes ``<name>.png`` and ``<name>.json`` into ``--output``.
"""

from __future__ import annotations

import click

from nlpseq.cli.types import FiniteFloatRange

HELP = {"help_option_names": ["-h", "--help"]}
CELLS = ("rnn", "lstm", "gru")


def output_option(function):
    return click.option(
        "--output", "output_dir", type=click.Path(file_okay=False),
        default="lab", show_default=True,
        help="folder for the PNG picture and the JSON numbers")(function)


def _written(paths):
    return "\n".join(f"wrote {p}" for p in paths)


@click.group(context_settings=HELP)
def lab():
    """Experiments on nlpseq's own cells, each a table, a PNG and a JSON.

    \b
    Examples:
        nlpseq lab gradients --cell rnn --cell lstm --length 60
        nlpseq lab memory --max-gap 20
        nlpseq lab gates --model-dir saved_models/sentiment "not good at all"
        nlpseq lab hello
    """


@lab.command()
@click.option("--cell", "cells", type=click.Choice(CELLS), multiple=True,
              help="cell(s) to measure, repeatable [default: all three]")
@click.option("--length", type=click.IntRange(2, 1000), default=60,
              show_default=True, help="steps in the sequence (T)")
@click.option("--units", type=click.IntRange(1, 1024), default=32,
              show_default=True, help="units of each fresh cell")
@click.option("--input-scale", type=FiniteFloatRange(0, 100), default=1.0,
              show_default=True,
              help="standard deviation of the random inputs")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--model-dir", type=click.Path(file_okay=False),
              help="measure a trained model's first recurrent layer "
                   "instead (fed random words of its vocabulary)")
@output_option
def gradients(cells, length, units, input_scale, seed, model_dir,
              output_dir):
    """The vanishing gradient, measured: ||dL/dh_t|| against the distance
    of step t from the loss (at the last step), relative to distance 1.

    \b
    Examples:
        nlpseq lab gradients --cell rnn --cell lstm --cell gru --length 60
        nlpseq lab gradients --model-dir saved_models/sentiment --length 80
    """
    from nlpseq import lab as experiments

    if model_dir is not None:
        results = [experiments.gradient_norms(
            length=length, seed=seed, model_dir=model_dir)]
    else:
        results = [experiments.gradient_norms(
            cell, length=length, units=units, input_scale=input_scale,
            seed=seed) for cell in (cells or CELLS)]
    marks = [d for d in (1, 5, 10, 20, 50, 100, 200, 500)
             if d < length]
    lines = ["relative gradient norm ||dL/dh_t|| / ||dL/dh at distance 1||",
             f"{'distance':>10}" + "".join(
                 f"{r['cell']:>12}" for r in results)]
    for d in marks:
        lines.append(f"{d:>10}" + "".join(
            f"{r['relative'][d]:>12.3e}" for r in results))
    paths = experiments.write_results(
        output_dir, "gradients", {"results": results},
        experiments.plot_gradients(results))
    click.echo("\n".join(lines) + "\n" + _written(paths))


@lab.command()
@click.option("--cell", "cells", type=click.Choice(CELLS), multiple=True,
              help="cell(s) to train, repeatable [default: all three]")
@click.option("--max-gap", type=click.IntRange(0, 500), default=20,
              show_default=True, help="the longest gap (filler words)")
@click.option("--gaps", type=click.IntRange(1, 50), default=5,
              show_default=True,
              help="how many gaps from 0 to --max-gap, evenly spaced")
@click.option("--examples", type=click.IntRange(16, 100000), default=512,
              show_default=True, help="training sentences per gap")
@click.option("--epochs", type=click.IntRange(1, 1000), default=12,
              show_default=True, help="epochs per gap (the same budget "
                                      "for every cell)")
@click.option("--units", type=click.IntRange(1, 1024), default=32,
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@output_option
def memory(cells, max_gap, gaps, examples, epochs, units, seed, output_dir):
    """Long-range memory: "They/He/She wanted more <gap fillers> for ->
    themselves/himself/herself", accuracy against the gap for each cell.

    Every cell trains a fresh model at every gap with the same data, budget
    and seed, and is tested on 256 new sentences (chance: 1/3).

    \b
    Examples:
        nlpseq lab memory --max-gap 20
        nlpseq lab memory --cell rnn --cell lstm --max-gap 40 --gaps 5
    """
    from nlpseq import lab as experiments

    count = min(gaps, max_gap + 1)
    points = sorted({round(i * max_gap / max(count - 1, 1))
                     for i in range(count)})
    results = experiments.memory(cells or CELLS, points, examples=examples,
                                 epochs=epochs, units=units, seed=seed)
    names = list(results["accuracy"])
    lines = [f"accuracy on 256 test sentences (chance "
             f"{results['chance']:.2f}); e.g. {results['example']}",
             f"{'gap':>5}" + "".join(f"{c:>8}" for c in names)]
    for i, gap in enumerate(results["gaps"]):
        lines.append(f"{gap:>5}" + "".join(
            f"{results['accuracy'][c][i]:>8.3f}" for c in names))
    paths = experiments.write_results(output_dir, "memory", results,
                                      experiments.plot_memory(results))
    click.echo("\n".join(lines) + "\n" + _written(paths))


@lab.command()
@click.option("--model-dir", type=click.Path(file_okay=False),
              required=True, help="a trained sentiment, topic or next-word "
                                  "model folder")
@click.argument("text")
@output_option
def gates(model_dir, text, output_dir):
    """Every gate of a trained model's first recurrent layer, token by
    token over TEXT (LSTM: input, forget, output gates, candidate and cell
    state; GRU: update and reset gates and candidate), as heatmaps. The
    table shows each gate's mean over the units.

    \b
    Example:
        nlpseq sentiment train --cell lstm
        nlpseq lab gates --model-dir saved_models/sentiment \\
            "krish likes pizza but his friend likes burger"
    """
    from nlpseq import lab as experiments

    results = experiments.gates(model_dir, text)
    rows = experiments.gate_means(results)
    names = list(rows[0][2]) if rows else []
    lines = [f"{results['layer']} ({results['cell']}): mean over the "
             "units",
             f"{'':<9}{'token':<14}" + "".join(f"{n:>10}" for n in names)]
    for label, token, means in rows:
        lines.append(f"{label:<9}{token[:13]:<14}" + "".join(
            f"{means[n]:>10.3f}" for n in names))
    paths = experiments.write_results(output_dir, "gates", results,
                                      experiments.plot_gates(results))
    click.echo("\n".join(lines) + "\n" + _written(paths))


@lab.command()
@click.option("--units", type=click.IntRange(1, 256), default=8,
              show_default=True, help="units of the Elman network")
@click.option("--steps", type=click.IntRange(1, 100000), default=150,
              show_default=True, help="training steps on 'hell' -> 'ello'")
@click.option("--seed", type=int, default=0, show_default=True)
@output_option
def hello(units, steps, seed, output_dir):
    """The character-level "hello": an Elman network reads h, e, l, l and
    learns to predict e, l, l, o; shown step by step: the input, the hidden
    state and the predicted next character.

    \b
    Example:
        nlpseq lab hello --units 8
    """
    from nlpseq import lab as experiments

    results = experiments.hello(units=units, steps=steps, seed=seed)
    lines = [f"loss {results['initial_loss']:.3f} -> {results['loss']:.3f}"
             f" after {steps} steps; predicted '{results['predicted']}' "
             f"(target '{results['target']}')",
             f"{'step':>4} {'input':>5}  {'hidden state h_t':<40}"
             f"{'next':>5} {'P(next)':>8}"]
    for row in results["rows"]:
        hidden = " ".join(f"{v:+.2f}" for v in row["hidden"][:8])
        more = " ..." if len(row["hidden"]) > 8 else ""
        lines.append(f"{row['step']:>4} {row['input']:>5}  "
                     f"{hidden + more:<40}{row['predicted']:>5} "
                     f"{row['probabilities'][row['predicted']]:>8.3f}")
    paths = experiments.write_results(output_dir, "hello", results,
                                      experiments.plot_hello(results))
    click.echo("\n".join(lines) + "\n" + _written(paths))
