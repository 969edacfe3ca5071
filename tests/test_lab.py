"""The lab (``nlpseq lab``) and the cells' tracing API.

The measured facts of docs/lab.md, with fixed seeds and sizes that run in
seconds: the vanishing gradient of a simple RNN against an LSTM, the
long-range memory task where the simple RNN is at chance and the gated
cells are not, and the traced gate values against a NumPy recomputation of
the SPEC's equations.
"""

import json
import math
import re

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from layer_helpers import (
    MASKS,
    assert_close,
    build_layer,
    random_inputs,
    random_states,
    reference_cell,
    to_numpy,
)

import nlpseq
from nlpseq import lab
from nlpseq import layers as nl
from nlpseq.cli import cli

# -- the tracing API ------------------------------------------------------------


def reference_values(ref, x, states):
    """Every named value of a reference cell of the SPEC's equations
    (``layer_helpers``), step by step: ``{name: [batch, time, units]}``."""
    states = [np.asarray(s, np.float64) for s in states]
    out = {}
    for t in range(x.shape[1]):
        _, states = ref.step(x[:, t], states)
        for name, value in ref.values.items():
            out.setdefault(name, []).append(value)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


# 128 units: one recurrent product per gate (the LSTM caches the gates'
# values); 5: one fused product (it caches pre-activations).
TRACE_CASES = [
    ("lstm", {}, 5), ("lstm", {}, 128), ("gru", {}, 5), ("gru", {}, 128),
    ("gru", {"reset_after": True}, 5), ("gru", {"reset_gate": False}, 5),
    ("gru", {"reset_gate": False}, 128), ("rnn", {}, 5),
]


@pytest.mark.parametrize("cell, kwargs, units", TRACE_CASES)
def test_trace_equals_numpy_recomputation_of_the_spec(cell, kwargs, units):
    layer_class = {"lstm": nl.LSTM, "gru": nl.GRU, "rnn": nl.SimpleRNN}[cell]
    layer = build_layer(layer_class, units=units, **kwargs)
    x = random_inputs(1)
    states = random_states(layer)
    outputs, values = layer.trace(x, initial_state=states)
    expected = reference_values(reference_cell(layer),
                                x.astype(np.float64), states)
    assert list(values) == list(layer.cell.trace_names)
    assert sorted(values) == sorted(expected)
    for name in expected:
        assert_close(values[name], expected[name], atol=2e-5)
    # the outputs are the hidden states, and the same as the fast loop's
    assert_close(outputs, expected["h"], atol=2e-5)
    fast = layer_class(units, return_sequences=True, **kwargs)
    fast.build((None, None, x.shape[-1]))
    fast.set_weights(layer.get_weights())
    assert_close(outputs, fast(x, initial_state=states), atol=2e-5)


def test_trace_with_mask_and_go_backwards_matches_the_layer():
    layer = build_layer(nl.LSTM, go_backwards=True, return_sequences=True,
                        return_state=True)
    x, mask = random_inputs(2), MASKS["mixed"]
    outputs, values = layer.trace(x, mask=mask)
    expected, h, c = to_numpy(layer(x, mask=mask))
    # the layer returns its outputs in processing order, trace in input order
    assert_close(outputs[:, ::-1][mask[:, ::-1]], expected[mask[:, ::-1]])
    first = [np.flatnonzero(row)[0] for row in mask]  # processed last
    for row, t in enumerate(first):
        assert_close(values["h"][row, t], h[row])
        assert_close(values["c"][row, t], c[row])
    # masked steps: zeros
    assert np.all(values["forget"][~mask] == 0.0)
    assert np.all(values["forget"][mask] > 0.0)


def test_trace_does_not_touch_the_fast_path():
    # the loop never calls the tracing methods
    layer = build_layer(nl.GRU, return_sequences=True)
    x = random_inputs(3)
    before = to_numpy(layer(x))
    calls = []
    original = nl.GRUCell.step_values
    try:
        nl.GRUCell.step_values = lambda *a: calls.append(1) or original(*a)
        assert_close(layer(x), before, atol=0)
        assert not calls
        layer.trace(x)
        assert calls
    finally:
        nl.GRUCell.step_values = original


# -- gradients ------------------------------------------------------------------


@pytest.fixture(scope="module")
def gradient_ratios():
    return {cell: lab.gradient_norms(cell, length=52, seed=0)["relative"][50]
            for cell in ("rnn", "lstm")}


def test_simple_rnn_gradient_vanishes_by_distance_50(gradient_ratios):
    # tanh, Keras' default initialisers (orthogonal recurrent kernel), unit
    # variance inputs: measured 3.6e-9
    assert gradient_ratios["rnn"] < 1e-3


def test_lstm_gradient_survives_far_longer(gradient_ratios):
    # LSTM, forget bias 1: measured 2.0e-5 at distance 50, ~5,000 times the
    # simple RNN's; but not above 1e-3 (see docs/lab.md: at initialisation
    # the cell path decays by f ~ sigmoid(1) ~ 0.73 per step)
    assert gradient_ratios["lstm"] > 1000 * gradient_ratios["rnn"]
    assert gradient_ratios["lstm"] > 1e-6


# -- memory ---------------------------------------------------------------------


def test_memory_examples_depend_on_the_first_word_only():
    ids, answers = lab.memory_examples(5, 50, seed=0)
    assert ids.shape == (50, 9)
    words = [lab.memory_sentence(row).split() for row in ids]
    for sentence, answer in zip(words, answers):
        assert sentence[0] == lab.SUBJECTS[answer]
        assert sentence[1:3] == ["wanted", "more"] and sentence[-1] == "for"
        assert all(w in lab.FILLERS for w in sentence[3:-1])


@pytest.mark.slow  # (trains three models: 10 s on 2 cores)
def test_gated_cells_hold_the_subject_where_the_simple_rnn_is_at_chance():
    gap = 20
    accuracy = {cell: lab.memory_accuracy(cell, gap, epochs=8, seed=0)
                for cell in ("rnn", "lstm", "gru")}
    assert accuracy["rnn"] < 0.45, accuracy  # chance: 1/3
    assert accuracy["lstm"] >= 0.95, accuracy
    assert accuracy["gru"] >= 0.95, accuracy


# -- the commands ---------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def check_outputs(folder, name):
    import matplotlib.image

    image = matplotlib.image.imread(folder / f"{name}.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return json.loads((folder / f"{name}.json").read_text())


@pytest.mark.parametrize("command", ["gradients", "memory", "gates",
                                     "hello"])
def test_help_has_an_example(command):
    result = run("lab", command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"nlpseq lab {command}" in result.output


def test_lab_gradients_command(tmp_path):
    result = run("lab", "gradients", "--cell", "rnn", "--cell", "lstm",
                 "--length", "25", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "distance" in result.output and "lstm" in result.output
    data = check_outputs(tmp_path, "gradients")
    assert [r["cell"] for r in data["results"]] == ["rnn", "lstm"]
    assert len(data["results"][0]["norm"]) == 25


def test_lab_memory_command(tmp_path):
    result = run("lab", "memory", "--cell", "gru", "--max-gap", "2",
                 "--gaps", "2", "--epochs", "1", "--examples", "64",
                 "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = check_outputs(tmp_path, "memory")
    assert data["gaps"] == [0, 2]
    assert len(data["accuracy"]["gru"]) == 2
    assert all(0.0 <= a <= 1.0 for a in data["accuracy"]["gru"])


def test_lab_hello_command(tmp_path):
    result = run("lab", "hello", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = check_outputs(tmp_path, "hello")
    assert data["predicted"] == "ello"
    assert [r["input"] for r in data["rows"]] == list("hell")
    assert "predicted 'ello'" in result.output


@pytest.fixture(scope="module")
def lstm_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab") / "sentiment"
    nlpseq.train("sentiment", model_dir=folder, cell="lstm", units=4,
                 embedding_dim=4, batch_size=16, epochs=1, seed=2)
    return folder


def test_lab_gates_command(tmp_path, lstm_model):
    text = "krish likes pizza but his friend likes burger"
    result = run("lab", "gates", "--model-dir", str(lstm_model), text,
                 "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "forget" in result.output and "friend" in result.output
    data = check_outputs(tmp_path, "gates")
    assert data["tokens"] == text.split()
    values = next(iter(data["directions"].values()))
    assert set(values) == {"input", "forget", "candidate", "output", "c",
                           "h"}
    forget = np.array(values["forget"])
    assert forget.shape == (len(text.split()), 4)
    assert np.all((forget > 0) & (forget < 1))


def test_lab_gates_model_dir_missing_is_one_error_line(tmp_path):
    result = CliRunner().invoke(cli, ["lab", "gates", "--model-dir",
                                      str(tmp_path / "none"), "text"])
    assert result.exit_code == 1
    assert result.output.startswith("Error:")
    assert len(result.output.strip().splitlines()) == 1


def test_lab_gates_matches_the_models_own_layer(lstm_model):
    # the traced hidden states are what the model's layer computes
    results = lab.gates(lstm_model, "a good film")
    task, layer, feeder = lab.load_recurrent_layer(lstm_model)
    direction = lab._directions(layer)[0][1]
    ids = np.array(task.encode_texts(["a good film"]), "int32")
    sequence = keras.ops.convert_to_numpy(feeder(ids))
    values = next(iter(results["directions"].values()))
    fast = nl.LSTM(direction.units, return_sequences=True)
    fast.build(sequence.shape)
    fast.set_weights(direction.get_weights())
    assert_close(np.array(values["h"]), to_numpy(fast(sequence))[0],
                 atol=1e-5)


def test_lab_gradients_of_a_trained_model(tmp_path, lstm_model):
    result = run("lab", "gradients", "--model-dir", str(lstm_model),
                 "--length", "12", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    (data,) = check_outputs(tmp_path, "gradients")["results"]
    assert data["cell"] == "lstm" and data["units"] == 4
    assert data["source"].startswith("lstm, trained")
    assert len(data["norm"]) == 12 and data["relative"][1] == 1.0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "101"])
def test_lab_refuses_non_finite_or_out_of_range_numbers(tmp_path, value):
    result = run("lab", "gradients", "--input-scale", value, "--output",
                 str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--input-scale'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(nlpseq.errors.NlpseqError, match="--input-scale must "
                       "be a finite number from 0 to 100"):
        lab.gradient_norms(input_scale=float(value))


def test_every_json_nlpseq_writes_is_strict(tmp_path):
    """NaN and infinities become null: ``json.loads`` with a hook that
    refuses the bare constants reads every file back."""
    from nlpseq.folder import strict_json, write_json_atomic

    value = {"a": float("nan"), "b": [1.0, float("inf"), {"c": -math.inf}],
             "d": (2, "x")}
    write_json_atomic(tmp_path / "x.json", value)

    def refuse(constant):
        raise AssertionError(f"bare {constant} in the JSON")

    for text in ((tmp_path / "x.json").read_text(), strict_json(value)):
        assert json.loads(text, parse_constant=refuse) == {
            "a": None, "b": [1.0, None, {"c": None}], "d": [2, "x"]}


@pytest.mark.parametrize("call, message", [
    (lambda: lab.gradient_norms(length=math.nan),
     "lab gradients: length is float; expected an integer"),
    (lambda: lab.gradient_norms(units=0),
     "lab gradients: units is 0; expected at least 1"),
    (lambda: lab.gradient_norms(seed=-1),
     "lab gradients: seed is -1; expected at least 0"),
    (lambda: lab.memory_accuracy("gru", 2, learning_rate=math.inf),
     "lab memory: learning_rate must be a finite number above 0, got inf"),
    (lambda: lab.memory_accuracy("gru", -1),
     "lab memory: gap is -1; expected at least 0"),
    (lambda: lab.hello(steps=True),
     "lab hello: steps is bool; expected an integer"),
    (lambda: lab.hello(learning_rate=math.nan),
     "lab hello: learning_rate must be a finite number above 0, got nan"),
])
def test_lab_functions_refuse_bad_numbers(call, message):
    with pytest.raises(nlpseq.errors.NlpseqError, match=re.escape(message)):
        call()
