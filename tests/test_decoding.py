"""nlpseq.decoding: greedy search, beam search and sampling over a step
function, checked against brute force on a tiny Markov model."""

import itertools

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from nlpseq import decoding  # noqa: E402

VOCAB = 5
END = 3


def markov(seed=0):
    """A step function over a random first-order Markov chain (the state
    counts the steps; the extra is the one-hot token)."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(VOCAB, VOCAB)).astype("float32") * 2
    log_table = tf.nn.log_softmax(tf.constant(table)).numpy()

    def step(tokens, states):
        log_probs = tf.gather(tf.constant(log_table), tokens)
        return (log_probs, [states[0] + 1.0],
                tf.one_hot(tokens, VOCAB))

    return step, log_table


def brute_force(log_table, start, steps, end_id=None, alpha=0.0):
    """Every sequence of ``steps`` tokens, scored as beam search does."""
    best = []
    for seq in itertools.product(range(VOCAB), repeat=steps):
        score, length, previous, done = 0.0, 0, start, False
        for token in seq:
            if done:
                if token != 0:
                    break
                continue
            score += log_table[previous, token]
            length += 1
            previous = token
            done = end_id is not None and token == end_id
        else:
            best.append((score / ((5 + length) / 6) ** alpha, seq))
    return sorted(best, reverse=True)


def run(function, *args, **kwargs):
    return tf.function(lambda: function(*args, **kwargs))()


def test_beam_search_equals_brute_force_without_end():
    step, table = markov()
    start = tf.constant([0, 2], tf.int32)
    states = [tf.zeros([2, 1])]
    ids, scores = run(decoding.beam_search, step, start, states,
                      VOCAB ** 3, 3, n_best=4)
    for row, first in enumerate([0, 2]):
        expected = brute_force(table, first, 3)[:4]
        assert ids[row].numpy().tolist() == [list(s) for _, s in expected]
        np.testing.assert_allclose(scores[row], [s for s, _ in expected],
                                   rtol=1e-5)


def test_beam_search_with_end_and_length_penalty_equals_brute_force():
    step, table = markov(1)
    start = tf.constant([1, 4], tf.int32)
    ids, scores = run(decoding.beam_search, step, start,
                      [tf.zeros([2, 1])], VOCAB ** 3, 3, end_id=END,
                      length_penalty=0.8, n_best=3)
    for row, first in enumerate([1, 4]):
        expected = brute_force(table, first, 3, END, 0.8)[:3]
        got = ids[row].numpy().tolist()
        # (hypotheses that ended early may be shorter than 3 steps)
        got = [g + [0] * (3 - len(g)) for g in got]
        assert got == [list(s) for _, s in expected]
        np.testing.assert_allclose(scores[row], [s for s, _ in expected],
                                   rtol=1e-5)


def test_beam_width_one_equals_greedy():
    step, _ = markov(2)
    start = tf.constant([0, 1, 2, 3, 4], tf.int32)
    states = [tf.zeros([5, 1])]
    for end_id in (None, END):
        beam_ids, beam_scores = run(decoding.beam_search, step, start,
                                    states, 1, 6, end_id=end_id)
        ids, scores, extras = run(decoding.greedy_search, step, start,
                                  states, 6, end_id=end_id)
        width = ids.shape[1]
        np.testing.assert_array_equal(beam_ids[:, 0, :width], ids)
        np.testing.assert_allclose(beam_scores[:, 0], scores, rtol=1e-6)
        # the extra of each step: the one-hot token it read
        previous = np.concatenate([start.numpy()[:, None],
                                   ids.numpy()[:, :-1]], axis=1)
        np.testing.assert_array_equal(np.argmax(extras, -1), previous)


def test_greedy_search_stops_at_the_end_token_and_pads():
    step, table = markov(3)
    start = tf.constant([0, 1, 2, 3, 4], tf.int32)
    ids, scores, _ = run(decoding.greedy_search, step, start,
                         [tf.zeros([5, 1])], 20, end_id=END)
    for row, first in enumerate(start.numpy()):
        previous, total, done = first, 0.0, False
        for token in ids[row].numpy():
            if done:
                assert token == 0
                continue
            assert token == np.argmax(table[previous])
            total += table[previous, token]
            previous, done = token, token == END
        np.testing.assert_allclose(scores[row], total, rtol=1e-6)


def test_first_replaces_the_first_step():
    step, table = markov(4)
    start = tf.constant([1, 2], tf.int32)
    states = [tf.zeros([2, 1])]
    first_log_probs, first_states, extra = step(start, states)
    with_step = run(decoding.beam_search, step, start, states, 3, 4)
    given = run(decoding.beam_search, step, None, first_states, 3, 4,
                first=(first_log_probs, extra))
    np.testing.assert_array_equal(with_step[0], given[0])
    drawn = run(decoding.sample, step, start, states, 5, 1.0, 0, 7)
    given = run(decoding.sample, step, None, first_states, 5, 1.0, 0, 7,
                first=(first_log_probs, None))
    np.testing.assert_array_equal(drawn, given)


def test_sample_greedy_top_k_banned_and_seeded():
    step, table = markov(5)
    start = tf.constant([0, 1, 2, 3, 4] * 20, tf.int32)
    states = [tf.zeros([100, 1])]
    greedy = run(decoding.sample, step, start, states, 4, greedy=True)
    expected, _, _ = run(decoding.greedy_search, step, start, states, 4)
    np.testing.assert_array_equal(greedy, expected)
    one = run(decoding.sample, step, start, states, 4, 1.0, 1, 3)
    np.testing.assert_array_equal(one, expected)  # top-1 draws are greedy
    a = run(decoding.sample, step, start, states, 6, 2.0, 0, 11,
            banned_ids=(0, 1))
    b = run(decoding.sample, step, start, states, 6, 2.0, 0, 11,
            banned_ids=(0, 1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (100, 6)
    assert not np.isin(a.numpy(), [0, 1]).any()
    c = run(decoding.sample, step, start, states, 6, 2.0, 0, 12,
            banned_ids=(0, 1))
    assert (a.numpy() != c.numpy()).any()


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_each_row_stops_at_its_own_limit(search):
    """``max_steps`` per row: each row's result equals the row decoded
    alone with its own limit as a scalar (tokens after it are padding,
    and the other rows' limits change nothing)."""
    step, _ = markov(seed=4)
    starts = [0, 1, 2, 4]
    limits = [2, 5, 1, 4]

    def decode(start, limit):
        states = [tf.zeros([len(start), 1])]
        start = tf.constant(start, tf.int32)
        if search == "greedy":
            ids, scores, _ = run(decoding.greedy_search, step, start, states,
                                 limit, end_id=END)
        else:
            ids, scores = run(decoding.beam_search, step, start, states, 3,
                              limit, end_id=END, n_best=2)
        return ids.numpy(), scores.numpy()

    ids, scores = decode(starts, tf.constant(limits))
    steps = ids.shape[-1]
    for row, (start, limit) in enumerate(zip(starts, limits)):
        alone_ids, alone_scores = decode([start], limit)
        width = alone_ids.shape[-1]
        np.testing.assert_array_equal(ids[row, ..., :width], alone_ids[0])
        assert not ids[row, ..., width:].any()
        np.testing.assert_allclose(scores[row], alone_scores[0], rtol=1e-6)
        assert width <= limit
    assert steps <= max(limits)
