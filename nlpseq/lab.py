"""The lab: experiments that show what nlpseq's own cells do.

Each experiment returns its numbers as a plain dict (what ``nlpseq lab``
prints as a table and writes as JSON) and has a ``plot_*`` function that
draws them into a PNG (matplotlib, the ``plot`` extra). Nothing here prints;
progress goes to the ``nlpseq`` logger.

- :func:`gradient_norms`: the norm of ``dL/dh_t`` against the distance of
  step ``t`` from the loss: the vanishing gradient, measured.
- :func:`memory`: the SPEC's long-range task ("They/He/She wanted more
  ... for -> themselves/himself/herself") with a growing gap of filler
  words; accuracy against gap for each cell.
- :func:`gates`: every gate of a trained model's first recurrent layer,
  token by token, through the tracing API
  (:meth:`nlpseq.layers.RNN.trace`).
- :func:`hello`: the character-level "hello" Elman network, step by step.

The cells' equations are never written here: the gradients run the cells'
own ``step``, and the gates come from ``RNN.trace``.
"""

from __future__ import annotations

import math
from pathlib import Path

from nlpseq import inputs
from nlpseq.errors import NlpseqError
from nlpseq.folder import strict_json
from nlpseq.log import LOG

CELL_NAMES = ("rnn", "lstm", "gru")
DEFAULT_OUTPUT = "lab"


# -- shared helpers -----------------------------------------------------------

def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or one clear
    error when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise NlpseqError(
            "the lab draws its pictures with matplotlib, which is not "
            "installed; install it with: pip install 'nlpseq[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _start():
    """TensorFlow, started quietly (before Keras imports it)."""
    from nlpseq.runtime import import_tensorflow

    import_tensorflow()


def _check_numbers(call, counts=(), rates=()):
    """``counts``: ``(name, value, lowest)`` integers; ``rates``:
    ``(name, value)`` finite numbers above 0; each refused with one line."""
    for name, value, low in counts:
        inputs.count(call, name, value, low=low)
    for name, value in rates:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise NlpseqError(f"{call}: {name} must be a finite number "
                              f"above 0, got {value!r}")


def _check_cell(name):
    if name not in CELL_NAMES:
        raise NlpseqError(
            f"--cell must be one of {', '.join(CELL_NAMES)}, got {name!r}")
    return name


def _layer_class(name):
    from nlpseq.registry import CELLS

    return CELLS.get(_check_cell(name))


def write_results(output_dir, name, results, figure):
    """``<output_dir>/<name>.json`` and ``<name>.png``; returns both paths."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NlpseqError(f"--output {output_dir}: cannot create the "
                          f"folder ({error.strerror})") from None
    json_path, png_path = out / f"{name}.json", out / f"{name}.png"
    json_path.write_text(strict_json(results, indent=2) + "\n")
    figure.savefig(png_path, dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return json_path, png_path


def _recurrent_layers(model):
    """Every nlpseq recurrent layer of a model (``RNN`` or
    ``Bidirectional``), in the model's order, nested models included."""
    from nlpseq.layers import RNN, Bidirectional

    found = []
    for layer in model.layers:
        if isinstance(layer, (RNN, Bidirectional)):
            found.append(layer)
        elif hasattr(layer, "layers"):
            found += _recurrent_layers(layer)
    return found


def load_recurrent_layer(model_dir):
    """The task in a model folder, its first recurrent layer, and a
    function from token ids ``[batch, time]`` to that layer's inputs."""
    _start()
    import keras

    from nlpseq.tasks import load

    task = load(model_dir)
    layers = _recurrent_layers(task.model)
    if not layers:
        raise NlpseqError(f"{model_dir}: the model has no recurrent layer")
    layer = layers[0]
    if len(task.model.inputs) != 1:
        raise NlpseqError(f"{model_dir}: lab reads models of one input "
                          "(sentiment, topic, next-word)")
    sequences = layer.input
    if isinstance(sequences, (list, tuple)):  # [sequences, mask, ...]
        sequences = sequences[0]
    try:
        feeder = keras.Model(task.model.inputs[0], sequences)
    except (ValueError, AttributeError, TypeError) as error:
        raise NlpseqError(
            f"{model_dir}: cannot reach the inputs of the recurrent layer "
            f"{layer.name} ({error})") from None
    return task, layer, feeder


def _directions(layer):
    """``[(label, RNN)]``: one layer, or a bidirectional's two."""
    from nlpseq.layers import Bidirectional

    if isinstance(layer, Bidirectional):
        return [("forward", layer.forward_layer),
                ("backward", layer.backward_layer)]
    return [("", layer)]


# -- gradients ----------------------------------------------------------------

def gradient_norms(cell="rnn", length=60, units=32, features=16, batch=8,
                   input_scale=1.0, seed=0, model_dir=None):
    """``||dL/dh_t||`` for every step ``t`` of a sequence, the loss at its
    last step.

    A freshly initialised layer of ``cell`` (``units`` units, Keras' default
    initialisers, an LSTM's forget bias at 1) reads ``batch`` sequences of
    ``length`` inputs drawn from ``N(0, input_scale^2)``; or, with
    ``model_dir``, the first recurrent layer of a trained model (its
    forward direction) reads the embeddings of random words of its
    vocabulary. The loss is a fixed random projection of the last hidden
    state. The cell's own ``step`` runs each step in an eager loop, so the
    gradient of every intermediate ``h_t`` can be read.

    Returns a dict: ``distance`` (0 for the last step), ``norm`` (the
    gradient norm at that distance) and ``relative`` (divided by the norm
    at distance 1), with the settings.
    """
    _start()
    import keras
    import numpy as np
    import tensorflow as tf

    _check_numbers("lab gradients", counts=[
        ("length", length, 2), ("units", units, 1),
        ("features", features, 1), ("batch", batch, 1), ("seed", seed, 0)])
    if not (isinstance(input_scale, (int, float)) and
            math.isfinite(input_scale) and 0 <= input_scale <= 100):
        raise NlpseqError(f"--input-scale must be a finite number from 0 "
                          f"to 100, got {input_scale!r}")
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    if model_dir is None:
        layer = _layer_class(cell)(units)
        layer.build((None, None, features))
        x = rng.normal(0.0, input_scale, (batch, length, features))
        source = f"{cell}, initialised"
    else:
        task, found, feeder = load_recurrent_layer(model_dir)
        layer = _directions(found)[0][1]
        size = _vocabulary_size(task)
        if len(task.model.inputs[0].shape) != 2:
            raise NlpseqError(f"{model_dir}: lab gradients needs a model "
                              "that reads token ids")
        ids = rng.integers(2, max(size, 3), (batch, length)).astype("int32")
        x = keras.ops.convert_to_numpy(feeder(ids))
        cell = _cell_name(layer)
        units = layer.cell.units
        source = f"{cell}, trained ({model_dir})"
    rnn = layer.cell
    x = tf.constant(np.asarray(x, "float32"))
    probe = tf.constant(rng.normal(size=(batch, rnn.units)), "float32")
    states = rnn.get_initial_state(batch)
    weights = rnn.recurrent_weights("float32")
    with tf.GradientTape() as tape:
        projected = rnn.project_inputs(x)
        hidden = []
        for t in range(length):
            h, states, _ = rnn.step(projected[:, t], states, weights)
            hidden.append(h)
        loss = tf.reduce_sum(hidden[-1] * probe)
    grads = tape.gradient(loss, hidden)
    norms = [float(np.linalg.norm(g)) for g in grads][::-1]
    relative = [n / norms[1] if norms[1] else 0.0 for n in norms]
    LOG.debug("gradient norms of %s over %d steps", source, length)
    return {"cell": cell, "source": source, "length": length,
            "units": units, "input_scale": input_scale, "seed": seed,
            "distance": list(range(length)), "norm": norms,
            "relative": relative}


def _vocabulary_size(task):
    encoder = getattr(task.preprocessor, "encoder", None)
    size = getattr(encoder, "vocabulary_size", None)
    if size is None:
        raise NlpseqError("lab needs a model with a word or character "
                          "vocabulary (sentiment, topic, next-word)")
    return size


def _cell_name(layer):
    """The ``--cell`` name of ``layer``'s class (:data:`~nlpseq.registry.
    CELLS`), or the class name of a layer that is not registered."""
    from nlpseq.registry import CELLS

    for name in CELLS.names():
        if isinstance(layer, CELLS.get(name)):
            return name
    return type(layer).__name__


def plot_gradients(results):
    """One curve per result of :func:`gradient_norms`, log scale."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for result in results:
        axes.semilogy(result["distance"][1:], result["relative"][1:],
                      label=result["source"])
    axes.set_xlabel("distance of step t from the loss (steps)")
    axes.set_ylabel("||dL/dh_t|| / ||dL/dh at distance 1||")
    axes.set_title("Gradient norm against distance: the vanishing gradient")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    return figure


# -- memory -------------------------------------------------------------------

SUBJECTS = ("they", "he", "she")
ANSWERS = ("themselves", "himself", "herself")
FILLERS = ("really", "very", "much", "so", "truly", "always", "still",
           "again", "quite", "just", "then", "now", "also", "even",
           "never", "often", "rather", "almost", "already", "simply",
           "surely", "clearly", "badly", "deeply", "dearly", "madly",
           "greatly", "sorely", "fully", "ever", "once", "twice")
MEMORY_VOCABULARY = ("", "[UNK]") + SUBJECTS + ("wanted", "more", "for") \
    + FILLERS


def memory_examples(gap, count, seed):
    """``count`` sentences "<subject> wanted more <gap fillers> for" as
    token ids, and the index of the answer (0 themselves, 1 himself,
    2 herself): the answer depends on the first word only."""
    import numpy as np

    rng = np.random.default_rng(seed)
    index = {w: i for i, w in enumerate(MEMORY_VOCABULARY)}
    filler_ids = np.array([index[w] for w in FILLERS])
    subjects = rng.integers(0, len(SUBJECTS), count)
    ids = np.empty((count, gap + 4), "int32")
    ids[:, 0] = [index[SUBJECTS[s]] for s in subjects]
    ids[:, 1], ids[:, 2] = index["wanted"], index["more"]
    ids[:, 3:3 + gap] = filler_ids[rng.integers(0, len(FILLERS),
                                                (count, gap))]
    ids[:, -1] = index["for"]
    return ids, subjects.astype("int32")


def memory_sentence(ids):
    return " ".join(MEMORY_VOCABULARY[i] for i in ids)


def memory_accuracy(cell, gap, examples=512, epochs=12, units=32,
                    embedding_dim=16, embedding_scale=1.0, batch_size=32,
                    learning_rate=0.01, seed=0):
    """Train a fresh ``Embedding -> cell -> Dense(3)`` model on the memory
    task at one gap and return its accuracy on 256 new sentences.

    The embeddings start from ``N(0, embedding_scale^2)``: words that move
    the state as much as trained embeddings do (Keras' default, uniform in
    +-0.05, leaves a simple RNN nearly linear at first, where its gradient
    does not vanish)."""
    _check_numbers("lab memory", counts=[
        ("gap", gap, 0), ("examples", examples, 16), ("epochs", epochs, 1),
        ("units", units, 1), ("embedding_dim", embedding_dim, 1),
        ("batch_size", batch_size, 1), ("seed", seed, 0)], rates=[
        ("embedding_scale", embedding_scale),
        ("learning_rate", learning_rate)])
    _start()
    import keras

    keras.utils.set_random_seed(seed)
    x, y = memory_examples(gap, examples, seed)
    test_x, test_y = memory_examples(gap, 256, seed + 1)
    model = keras.Sequential([
        keras.Input((gap + 4,), dtype="int32"),
        keras.layers.Embedding(
            len(MEMORY_VOCABULARY), embedding_dim,
            embeddings_initializer=keras.initializers.RandomNormal(
                stddev=embedding_scale, seed=seed)),
        _layer_class(cell)(units),
        keras.layers.Dense(len(ANSWERS), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    _, accuracy = model.evaluate(test_x, test_y, verbose=0)
    return float(accuracy)


def memory(cells=CELL_NAMES, gaps=(0, 5, 10, 20), **options):
    """:func:`memory_accuracy` of every cell at every gap, each trained
    with the same budget and seed. Returns ``{"gaps": [...],
    "accuracy": {cell: [...]}, "chance": 1/3, "settings": {...}}``."""
    _start()
    for cell in cells:
        _check_cell(cell)
    gaps = [int(g) for g in gaps]
    if not gaps or min(gaps) < 0:
        raise NlpseqError("the gaps must be numbers of words >= 0")
    accuracy = {}
    for cell in cells:
        accuracy[cell] = []
        for gap in gaps:
            value = memory_accuracy(cell, gap, **options)
            LOG.info("memory: %s at gap %d: accuracy %.3f", cell, gap, value,
                     extra={"stderr": True})
            accuracy[cell].append(value)
    example, answer = memory_examples(3, 1, 0)
    return {"gaps": gaps, "accuracy": accuracy, "chance": 1 / len(ANSWERS),
            "example": (f"{memory_sentence(example[0])} -> "
                        f"{ANSWERS[answer[0]]}"),
            "settings": options}


def plot_memory(results):
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for cell, values in results["accuracy"].items():
        axes.plot(results["gaps"], values, marker="o", label=cell)
    axes.axhline(results["chance"], color="grey", linestyle="--",
                 label="chance")
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("filler words between the subject and 'for'")
    axes.set_ylabel("accuracy of the answer")
    axes.set_title("They ... for -> themselves: memory against gap")
    axes.grid(True, alpha=0.3)
    axes.legend()
    return figure


# -- gates --------------------------------------------------------------------

def gates(model_dir, text):
    """The gate values of a trained model's first recurrent layer, token by
    token over ``text``, through :meth:`nlpseq.layers.RNN.trace`.

    Returns ``{"tokens": [...], "layer": name, "cell": ...,
    "directions": {label: {gate: [[value per unit] per token]}}}`` (label
    ``""`` for a one-directional layer, ``forward``/``backward`` for a
    bidirectional one).
    """
    import numpy as np

    task, layer, feeder = load_recurrent_layer(model_dir)
    encoder = getattr(task.preprocessor, "encoder", None)
    if encoder is None or not hasattr(encoder, "token_ids"):
        raise NlpseqError(
            f"{model_dir}: lab gates reads models of raw text (sentiment, "
            "topic, next-word)")
    if not text.strip():
        raise NlpseqError("the TEXT is empty")
    tokens = [t.decode("utf-8") for t in
              encoder.tokenize([text]).to_list()[0]]
    ids = encoder.token_ids([text]).to_list()[0]
    ids = np.array([ids], "int32")
    inputs = feeder(ids)
    directions = {}
    cell = None
    for label, direction in _directions(layer):
        _, values = direction.trace(inputs)
        cell = _cell_name(direction)
        directions[label] = {name: value[0].tolist()
                             for name, value in values.items()}
    return {"model_dir": str(model_dir), "text": text, "tokens": tokens,
            "layer": layer.name, "cell": cell, "directions": directions}


def gate_means(results):
    """Rows ``(direction, token, {gate: mean over units})`` for the table."""
    import numpy as np

    rows = []
    for label, values in results["directions"].items():
        for t, token in enumerate(results["tokens"]):
            rows.append((label, token, {
                name: float(np.mean(v[t])) for name, v in values.items()}))
    return rows


def plot_gates(results, max_units=32):
    """One heatmap per gate (and direction): units down, tokens across."""
    import numpy as np

    plt = _pyplot()
    panels = [(label, name, np.asarray(v).T[:max_units])
              for label, values in results["directions"].items()
              for name, v in values.items()]
    tokens = results["tokens"]
    width = max(4.0, 0.45 * len(tokens) + 2.5)
    figure, axes = plt.subplots(len(panels), 1, squeeze=False,
                                figsize=(width, 1.9 * len(panels) + 0.6))
    for axis, (label, name, matrix) in zip(axes[:, 0], panels):
        gated = name not in ("c", "h", "candidate", "pre_activation")
        image = axis.imshow(matrix, aspect="auto", interpolation="nearest",
                            cmap="viridis" if gated else "RdBu_r",
                            vmin=0.0 if gated else -1.0, vmax=1.0)
        axis.set_ylabel("unit")
        axis.set_title(f"{label + ' ' if label else ''}{name}", fontsize=9)
        axis.set_xticks(range(len(tokens)))
        axis.set_xticklabels(tokens, rotation=45, ha="right", fontsize=8)
        figure.colorbar(image, ax=axis, fraction=0.025, pad=0.01)
    figure.suptitle(f"Gates of {results['layer']} ({results['cell']}) over "
                    "the text", fontsize=10)
    figure.tight_layout()
    return figure


# -- hello --------------------------------------------------------------------

HELLO_VOCABULARY = "helo"
HELLO_INPUT, HELLO_TARGET = "hell", "ello"


def hello(units=8, steps=150, learning_rate=0.05, seed=0):
    """SPEC section 3's character-level "hello": an Elman network
    (``SimpleRNN``) reads h, e, l, l one-hot over {h, e, l, o} and learns
    to predict e, l, l, o. Returns, for each step, the input, the hidden
    state (traced) and the predicted next character with its
    probabilities."""
    _check_numbers("lab hello", counts=[
        ("units", units, 1), ("steps", steps, 1), ("seed", seed, 0)],
        rates=[("learning_rate", learning_rate)])
    _start()
    import keras
    import numpy as np

    from nlpseq.layers import SimpleRNN

    keras.utils.set_random_seed(seed)
    eye = np.eye(len(HELLO_VOCABULARY), dtype="float32")
    x = eye[[HELLO_VOCABULARY.index(c) for c in HELLO_INPUT]][None]
    y = np.array([[HELLO_VOCABULARY.index(c) for c in HELLO_TARGET]])
    recurrent = SimpleRNN(units, return_sequences=True, name="elman")
    readout = keras.layers.Dense(len(HELLO_VOCABULARY), activation="softmax",
                                 name="readout")
    model = keras.Sequential([keras.Input((len(HELLO_INPUT),
                                           len(HELLO_VOCABULARY))),
                              recurrent, readout])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy")
    initial_loss = float(model.evaluate(x, y, verbose=0))
    model.fit(np.repeat(x, steps, 0), np.repeat(y, steps, 0), batch_size=1,
              epochs=1, shuffle=False, verbose=0)
    loss = float(model.evaluate(x, y, verbose=0))
    hidden, values = recurrent.trace(x)
    probabilities = keras.ops.convert_to_numpy(readout(hidden))[0]
    rows = []
    for t, char in enumerate(HELLO_INPUT):
        rows.append({
            "step": t + 1, "input": char,
            "target": HELLO_TARGET[t],
            "hidden": hidden[0, t].tolist(),
            "pre_activation": values["pre_activation"][0, t].tolist(),
            "predicted": HELLO_VOCABULARY[int(probabilities[t].argmax())],
            "probabilities": dict(zip(HELLO_VOCABULARY,
                                      probabilities[t].tolist())),
        })
    predicted = "".join(r["predicted"] for r in rows)
    return {"vocabulary": HELLO_VOCABULARY, "input": HELLO_INPUT,
            "target": HELLO_TARGET, "predicted": predicted,
            "initial_loss": initial_loss, "loss": loss, "units": units,
            "steps": steps, "seed": seed, "rows": rows}


def plot_hello(results):
    """The hidden state per step (heatmap) beside the predicted
    next-character probabilities."""
    import numpy as np

    plt = _pyplot()
    rows = results["rows"]
    hidden = np.array([r["hidden"] for r in rows]).T
    probs = np.array([[r["probabilities"][c] for c in results["vocabulary"]]
                      for r in rows]).T
    labels = [f"{r['input']}\u2192{r['predicted']}" for r in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    image = left.imshow(hidden, aspect="auto", cmap="RdBu_r", vmin=-1,
                        vmax=1)
    left.set_title("hidden state h_t (Elman)")
    left.set_ylabel("unit")
    left.set_xticks(range(len(rows)))
    left.set_xticklabels(labels)
    left.set_xlabel("input \u2192 predicted next")
    figure.colorbar(image, ax=left, fraction=0.046)
    image = right.imshow(probs, aspect="auto", cmap="viridis", vmin=0,
                         vmax=1)
    right.set_title("P(next character)")
    right.set_yticks(range(len(results["vocabulary"])))
    right.set_yticklabels(list(results["vocabulary"]))
    right.set_xticks(range(len(rows)))
    right.set_xticklabels(labels)
    right.set_xlabel("input \u2192 predicted next")
    figure.colorbar(image, ax=right, fraction=0.046)
    figure.suptitle(f"'{results['input']}' \u2192 '{results['predicted']}'"
                    f" (target '{results['target']}')")
    figure.tight_layout()
    return figure
