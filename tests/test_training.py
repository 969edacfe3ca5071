"""Tests of nlpseq.training: padding, length-bucketed batch order, datasets."""

import math

import keras
import numpy as np
import pytest

from nlpseq import layers as nl
from nlpseq.training import (
    batch_order,
    batches_per_epoch,
    bucket_width,
    pad,
    padded_batches,
)

# -- pad ----------------------------------------------------------------------


def test_pad_right_pads_with_zeros():
    out = pad([np.array([5, 6, 7]), np.array([1]), np.array([], dtype=int)])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[5, 6, 7], [1, 0, 0], [0, 0, 0]])


def test_pad_width_cuts_and_extends():
    sequences = [np.array([1, 2, 3, 4]), np.array([9])]
    np.testing.assert_array_equal(pad(sequences, width=2), [[1, 2], [9, 0]])
    np.testing.assert_array_equal(pad(sequences, width=6),
                                  [[1, 2, 3, 4, 0, 0], [9, 0, 0, 0, 0, 0]])


def test_pad_empty_inputs_have_one_column():
    assert pad([np.array([], dtype=int)] * 2).shape == (2, 1)
    assert pad([]).shape == (0, 1)


def test_pad_dtype():
    out = pad([[0.5, 1.5], [2.5]], dtype="float32")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.5, 1.5], [2.5, 0.0]])


# -- batch_order --------------------------------------------------------------


def random_lengths(n, seed=0, high=500):
    return np.random.default_rng(seed).integers(1, high, size=n)


@pytest.mark.parametrize("n, batch_size", [(1, 4), (37, 4), (1000, 7),
                                           (3210, 16)])
def test_every_index_exactly_once_per_epoch(n, batch_size):
    lengths = random_lengths(n)
    for epoch in range(3):
        batches = batch_order(lengths, batch_size, seed=3, epoch=epoch)
        assert all(1 <= len(b) <= batch_size for b in batches)
        flat = np.concatenate(batches)
        assert len(flat) == n
        np.testing.assert_array_equal(np.sort(flat), np.arange(n))


def test_only_the_last_batch_of_each_pool_is_short():
    n, batch_size = 1000, 7  # pools of 350 texts: 50 batches of 7
    batches = batch_order(random_lengths(n), batch_size, seed=0, epoch=0)
    sizes = sorted(len(b) for b in batches)
    # 1000 = 2 * 350 + 300: 100 full batches, then 42 full and one of 6.
    assert sizes == [6] + [7] * 142
    assert len(batches) == 143


def test_deterministic_for_seed_and_epoch():
    lengths = random_lengths(2000)
    first = batch_order(lengths, 16, seed=7, epoch=4)
    again = batch_order(lengths, 16, seed=7, epoch=4)
    assert len(first) == len(again)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def flat(batches):
    return np.concatenate(batches)


def test_order_differs_between_epochs_and_seeds():
    lengths = random_lengths(2000)
    epoch0 = flat(batch_order(lengths, 16, seed=7, epoch=0))
    epoch1 = flat(batch_order(lengths, 16, seed=7, epoch=1))
    other_seed = flat(batch_order(lengths, 16, seed=8, epoch=0))
    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, other_seed)
    # Not just a reordering of the same batches: batch membership changes.
    first_batches = {frozenset(b.tolist())
                     for b in batch_order(lengths, 16, seed=7, epoch=0)}
    second_batches = {frozenset(b.tolist())
                      for b in batch_order(lengths, 16, seed=7, epoch=1)}
    assert len(first_batches & second_batches) < len(first_batches) // 2


def mean_spread(lengths, batches):
    return np.mean([lengths[b].max() - lengths[b].min() for b in batches])


def test_batches_are_length_homogeneous():
    n, batch_size = 5000, 32
    lengths = random_lengths(n, seed=1)
    batches = batch_order(lengths, batch_size, seed=0, epoch=0)
    rng = np.random.default_rng(0)
    permutation = rng.permutation(n)
    random_batches = [permutation[i:i + batch_size]
                      for i in range(0, n, batch_size)]
    bucketed, random = (mean_spread(lengths, batches),
                        mean_spread(lengths, random_batches))
    # Random batches of 32 from lengths 1..499 spread over ~470 tokens;
    # sorted pools of 1600 texts leave ~10.
    assert random > 400
    assert bucketed < random / 10
    # The batch order itself is shuffled (not sorted by length overall).
    firsts = [lengths[b].min() for b in batches]
    assert firsts != sorted(firsts)


def test_no_shuffle_is_sorted_by_length():
    lengths = np.array([5, 3, 9, 3, 1, 7, 5, 2, 8])
    batches = batch_order(lengths, 4, seed=0, epoch=0, shuffle=False)
    assert [len(b) for b in batches] == [4, 4, 1]
    order = flat(batches)
    # Stable: equal lengths keep their original order (3 before 3, 5 before 5).
    assert order.tolist() == [4, 7, 1, 3, 0, 6, 5, 8, 2]
    assert (np.diff(lengths[order]) >= 0).all()
    # Seed and epoch do not matter without shuffling.
    again = batch_order(lengths, 4, seed=9, epoch=3, shuffle=False)
    assert flat(again).tolist() == order.tolist()


def test_batches_per_epoch_matches_batch_order():
    rng = np.random.default_rng(0)
    for n in [0, 1, 2, 5, 31, 32, 33, 99, 100, 101, 399, 400, 401, 1234,
              2500, 2501, 5099]:
        lengths = rng.integers(1, 50, size=n)
        for batch_size in [1, 2, 3, 8, 32, 50]:
            expected = len(batch_order(lengths, batch_size, seed=1,
                                       epoch=0))
            assert batches_per_epoch(n, batch_size) == expected, (n,
                                                                  batch_size)
            assert expected == math.ceil(n / batch_size)
            assert len(batch_order(lengths, batch_size, 0, 0,
                                   shuffle=False)) == expected


# -- padded_batches -----------------------------------------------------------


def make_data(n, seed=0, max_length=12):
    rng = np.random.default_rng(seed)
    inputs = [rng.integers(1, 100, size=int(rng.integers(1, max_length)))
              for _ in range(n)]
    targets = rng.integers(0, 3, size=n)
    return inputs, targets


def as_lists(dataset):
    return [keras.tree.map_structure(np.asarray, batch) for batch in dataset]


def test_padded_batches_count_and_content():
    inputs, targets = make_data(45)
    batch_size, epochs = 4, 3
    dataset = padded_batches(inputs, targets, batch_size, seed=5,
                             epochs=epochs)
    per_epoch = batches_per_epoch(45, batch_size)
    assert int(dataset.cardinality()) == epochs * per_epoch
    batches = as_lists(dataset)
    assert len(batches) == epochs * per_epoch
    for epoch in range(epochs):
        order = batch_order([len(s) for s in inputs], batch_size, 5, epoch)
        chunk = batches[epoch * per_epoch:(epoch + 1) * per_epoch]
        seen = []
        for index, (x, y) in zip(order, chunk):
            width = max(len(inputs[i]) for i in index)
            assert x.shape == (len(index), width)  # padded to its longest
            assert x.dtype == np.int32
            for row, i in zip(x, index):
                np.testing.assert_array_equal(row[:len(inputs[i])], inputs[i])
                assert not row[len(inputs[i]):].any()
            np.testing.assert_array_equal(y, targets[index])
            seen += index.tolist()
        assert sorted(seen) == list(range(45))


def test_resuming_at_epoch_k_gives_the_same_batches():
    inputs, targets = make_data(60, seed=2)
    batch_size = 8
    per_epoch = batches_per_epoch(60, batch_size)
    full = as_lists(padded_batches(inputs, targets, batch_size, seed=11,
                                   first_epoch=0, epochs=4))
    for k in (1, 3):
        resumed = as_lists(padded_batches(inputs, targets, batch_size,
                                          seed=11, first_epoch=k,
                                          epochs=4 - k))
        assert len(resumed) == (4 - k) * per_epoch
        for (x1, y1), (x2, y2) in zip(full[k * per_epoch:], resumed):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    # ... while another epoch's batches differ.
    assert not all(np.array_equal(a[0], b[0]) for a, b in
                   zip(full[:per_epoch], full[per_epoch:2 * per_epoch]))


def test_no_shuffle_dataset_is_one_sorted_pass():
    inputs, targets = make_data(23, seed=4)
    batches = as_lists(padded_batches(inputs, targets, 5, shuffle=False))
    assert len(batches) == math.ceil(23 / 5)
    widths = [x.shape[1] for x, _ in batches]
    assert widths == sorted(widths)
    order = np.argsort([len(s) for s in inputs], kind="stable")
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]),
                                  targets[order])


def test_no_shuffle_dataset_over_several_epochs():
    # (Regression: the declared cardinality used to ignore ``epochs`` without
    # shuffling, so iterating raised "expected to contain 5 elements".)
    inputs, targets = make_data(23, seed=4)
    dataset = padded_batches(inputs, targets, 5, shuffle=False, epochs=3)
    assert int(dataset.cardinality()) == 3 * 5
    batches = as_lists(dataset)
    assert len(batches) == 15
    for epoch in (1, 2):
        for (x1, y1), (x2, y2) in zip(batches[:5],
                                      batches[5 * epoch:5 * epoch + 5]):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)


def test_pad_targets_pads_per_token_targets_to_ids_width():
    rng = np.random.default_rng(6)
    inputs = [rng.integers(1, 50, size=int(length))
              for length in rng.integers(1, 9, size=30)]
    targets = [rng.integers(1, 5, size=len(s)) for s in inputs]
    dataset = padded_batches(inputs, targets, 4, seed=1, epochs=2,
                             pad_targets=True)
    batches = as_lists(dataset)
    assert len(batches) == 2 * batches_per_epoch(30, 4)
    lengths = [len(s) for s in inputs]
    orders = (batch_order(lengths, 4, 1, 0) + batch_order(lengths, 4, 1, 1))
    for index, (x, y) in zip(orders, batches):
        assert y.shape == x.shape and y.dtype == np.int32
        for row_x, row_y, i in zip(x, y, index):
            n = len(inputs[i])
            np.testing.assert_array_equal(row_x[:n], inputs[i])
            np.testing.assert_array_equal(row_y[:n], targets[i])
            assert not row_y[n:].any() and not row_x[n:].any()


def test_float_targets_keep_their_dtype_and_shape():
    inputs, _ = make_data(10, seed=8)
    targets = np.random.default_rng(0).random((10, 3)).astype("float32")
    batches = as_lists(padded_batches(inputs, targets, 4, shuffle=False))
    order = np.argsort([len(s) for s in inputs], kind="stable")
    stacked = np.concatenate([y for _, y in batches])
    assert stacked.dtype == np.float32 and stacked.shape == (10, 3)
    np.testing.assert_array_equal(stacked, targets[order])


# -- bucketed widths (--jit-compile) -------------------------------------------

BUCKETS = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768]


def test_bucket_width_is_the_smallest_bucket_that_holds_the_length():
    for length in range(700):
        width = bucket_width(length)
        assert width == min(b for b in BUCKETS if b >= length), length
        assert width <= max(8, 1.5 * length), length


def test_buckets_pad_every_variable_axis_and_the_targets_alike():
    """Words and their characters (a tuple of features) and per-token
    targets: each axis padded to its bucket, the content as without
    buckets, zeros beyond."""
    rng = np.random.default_rng(9)
    lengths = rng.integers(1, 30, size=40)
    inputs = [(rng.integers(1, 50, size=int(n)),
               rng.integers(1, 20, size=(int(n), int(rng.integers(1, 14)))))
              for n in lengths]
    targets = [rng.integers(1, 5, size=len(x[0])) for x in inputs]
    plain = as_lists(padded_batches(inputs, targets, 6, seed=2,
                                    pad_targets=True))
    bucketed = as_lists(padded_batches(inputs, targets, 6, seed=2,
                                       pad_targets=True, buckets=True))
    assert len(plain) == len(bucketed)
    shapes = set()
    for ((words, chars), y), ((b_words, b_chars), b_y) in zip(plain,
                                                               bucketed):
        steps, width = words.shape[1], chars.shape[2]
        assert b_words.shape == (len(words), bucket_width(steps))
        assert b_chars.shape == (len(words), bucket_width(steps),
                                 bucket_width(width))
        assert b_y.shape == b_words.shape
        np.testing.assert_array_equal(b_words[:, :steps], words)
        np.testing.assert_array_equal(b_chars[:, :steps, :width], chars)
        np.testing.assert_array_equal(b_y[:, :steps], y)
        assert not b_words[:, steps:].any() and not b_y[:, steps:].any()
        assert not b_chars[:, steps:].any() and not b_chars[..., width:].any()
        shapes.add(b_chars.shape[1:])
    assert len(shapes) < len({(x[0].shape[1], x[1].shape[2])
                              for x, _ in plain})


def test_fixed_width_targets_are_not_bucketed():
    """A language model's windows: inputs as wide as their 2-D targets."""
    inputs = [np.arange(1, 6) for _ in range(7)]
    targets = np.ones((7, 5), "int32")
    for x, y in as_lists(padded_batches(inputs, targets, 3, buckets=True)):
        assert x.shape[1] == y.shape[1] == 5


def test_bucket_padding_is_masked_out_of_the_loss():
    """The padding of the buckets changes no loss: a masked tagger and a
    masked classifier give the same loss on bucketed and plain batches."""
    rng = np.random.default_rng(4)
    inputs = [rng.integers(1, 60, size=int(n))
              for n in rng.integers(1, 20, size=24)]
    tags = [rng.integers(1, 4, size=len(x)) for x in inputs]
    labels = rng.integers(0, 2, size=24)
    keras.utils.set_random_seed(1)
    tagger = keras.Sequential([
        keras.layers.Embedding(60, 4, mask_zero=True),
        nl.Bidirectional(nl.GRU(3, return_sequences=True)),
        keras.layers.Dense(4)])
    classifier = keras.Sequential([
        keras.layers.Embedding(60, 4, mask_zero=True), nl.LSTM(3),
        keras.layers.Dense(2)])
    for model, targets, pad_targets in ((tagger, tags, True),
                                        (classifier, labels, False)):
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        losses = [model.evaluate(padded_batches(
            inputs, targets, 5, shuffle=False, pad_targets=pad_targets,
            buckets=buckets), verbose=0) for buckets in (False, True)]
        assert losses[0] == pytest.approx(losses[1], rel=1e-5)


# -- RunState -----------------------------------------------------------------


@pytest.mark.parametrize("keep, kept_epoch", [("best", 0), ("last", 1)])
def test_run_state_ends_on_the_best_or_the_last_epoch(tmp_path, keep,
                                                      kept_epoch):
    import keras

    from nlpseq.training import RunState, read_state

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = RunState(tmp_path, patience=0, keep=keep)
    state.set_model(model)
    weights = []
    for epoch, val_loss in enumerate([1.0, 2.0]):  # the first epoch is best
        model.set_weights([np.full((2, 1), epoch + 1.0, "float32"),
                           np.full((1,), -epoch, "float32")])
        weights.append(model.get_weights())
        state.on_epoch_begin(epoch)
        state.on_epoch_end(epoch, {"val_loss": val_loss})
    state.on_train_end()
    for got, expected in zip(model.get_weights(), weights[kept_epoch]):
        np.testing.assert_array_equal(got, expected)
    saved = read_state(tmp_path)
    assert (saved["best_epoch"], saved["epochs_done"]) == (0, 2)


def test_run_state_refuses_an_unknown_keep(tmp_path):
    from nlpseq.training import RunState

    with pytest.raises(ValueError, match="`keep`.*'first'"):
        RunState(tmp_path, keep="first")


@pytest.mark.parametrize("losses, patience, epochs, keep, expected", [
    ([1.0, 2.0, 3.0], 2, 5, "best",
     "Stopped early after epoch 3: no lower val_loss for 2 epoch(s); kept "
     "epoch 1, the lowest val_loss (1.0000)"),
    # patience runs out on the last epoch: that is not stopping early
    ([1.0, 2.0, 3.0], 2, 3, "best",
     "Trained 3 epoch(s); kept epoch 1, the lowest val_loss (1.0000)"),
    ([3.0, 2.0, 1.5], 0, 3, "best",
     "Trained 3 epoch(s); kept epoch 3, the lowest val_loss (1.5000)"),
    ([1.0, 2.0], 0, 2, "last", "Trained 2 epoch(s); kept the last epoch (2)"),
])
def test_run_state_says_why_training_stopped_and_what_it_kept(
        tmp_path, losses, patience, epochs, keep, expected):
    from nlpseq.training import RunState

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = RunState(tmp_path, patience=patience, keep=keep)
    state.set_model(model)
    state.set_params({"epochs": epochs})
    for epoch, val_loss in enumerate(losses):
        state.on_epoch_begin(epoch)
        state.on_epoch_end(epoch, {"val_loss": val_loss})
    assert state.summary() == expected


def test_progress_leaves_the_first_steps_tracing_out_of_the_estimate(
        caplog):
    import logging

    from nlpseq.training import Progress

    now = [0.0]
    progress = Progress(steps=200, interval=60.0, clock=lambda: now[0])
    progress.on_epoch_begin(0)
    with caplog.at_level(logging.INFO, logger="nlpseq"):
        now[0] += 100.0  # the first step traces the graph
        progress.on_train_batch_end(0, {"loss": 2.0})
        for batch in range(1, 3):
            now[0] += 1.0  # then a second a step
            progress.on_train_batch_end(batch, {"loss": 2.0})
    # (not 2 h 46 min: (101 s / 2 steps) x 198 steps)
    assert [r.getMessage() for r in caplog.records] == [
        "Epoch 1: step 2/200 (1%), loss 2.0000, about 3 min 18 s left in "
        "the epoch"]


def test_progress_logs_a_line_per_interval_with_the_time_left(caplog):
    import logging

    from nlpseq.training import Progress

    now = [0.0]
    progress = Progress(steps=100, interval=60.0, clock=lambda: now[0])
    progress.on_epoch_begin(2)
    with caplog.at_level(logging.INFO, logger="nlpseq"):
        for batch in range(100):
            now[0] += 2.0  # two seconds a step
            progress.on_train_batch_end(batch, {"loss": 1.5})
    lines = [r.getMessage() for r in caplog.records]
    # every 30 steps (60 s), never at the epoch's last step
    assert lines == [
        "Epoch 3: step 30/100 (30%), loss 1.5000, about 2 min 20 s left in "
        "the epoch",
        "Epoch 3: step 60/100 (60%), loss 1.5000, about 1 min 20 s left in "
        "the epoch",
        "Epoch 3: step 90/100 (90%), loss 1.5000, about 20 s left in the "
        "epoch"]


@pytest.mark.parametrize("values, expected_epoch, summary", [
    ([50.0, 70.0, 60.0, 55.0], 1,
     "Stopped early after epoch 4: no higher val_f1 for 2 epoch(s); kept "
     "epoch 2, the highest val_f1 (70.0000)"),
    # a tie keeps the first epoch that reached the value; NaN never wins
    ([float("nan"), 40.0, 40.0], 1,
     "Trained 3 epoch(s); kept epoch 2, the highest val_f1 (40.0000)"),
])
def test_run_state_keeps_the_highest_metric_with_mode_max(
        tmp_path, values, expected_epoch, summary):
    """``--monitor f1``: a metric, higher is better; the state remembers the
    mode, so a resumed run keeps comparing the same way."""
    from nlpseq.training import RunState, read_state

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    state = RunState(tmp_path, patience=2, monitor="val_f1", mode="max")
    state.set_model(model)
    state.set_params({"epochs": 5})
    for epoch, value in enumerate(values):
        state.on_epoch_begin(epoch)
        state.on_epoch_end(epoch, {"val_loss": 1.0 + epoch, "val_f1": value})
        if getattr(model, "stop_training", False):
            break
    assert state.summary() == summary
    saved = read_state(tmp_path)
    assert (saved["best_epoch"], saved["monitor"], saved["mode"]) == (
        expected_epoch, "val_f1", "max")
    resumed = RunState(tmp_path, monitor="val_f1", mode="max", state=saved)
    assert resumed.best == max(v for v in values if v == v)


def test_run_state_refuses_an_unknown_mode(tmp_path):
    from nlpseq.training import RunState

    with pytest.raises(ValueError, match="`mode`.*'up'"):
        RunState(tmp_path, mode="up")
