"""The CRF layer against brute force: every tag sequence of tiny cases is
enumerated, scored in NumPy from the layer's weights, and compared with the
forward algorithm (log Z, NLL), Viterbi decoding, masking and gradients."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from nlpseq.layers import CRF


def numpy_score(emissions, tags, transitions, start, end):
    score = start[tags[0]] + end[tags[-1]]
    score += sum(emissions[t, tag] for t, tag in enumerate(tags))
    score += sum(transitions[a, b] for a, b in zip(tags, tags[1:]))
    return score


def brute_force(emissions, length, crf):
    """log Z and the best sequence of one sentence (its first ``length``
    steps), by enumerating all K^length tag sequences."""
    transitions, start, end = (w.numpy().astype("float64") for w in (
        crf.transitions, crf.start_transitions, crf.end_transitions))
    e = emissions[:length].astype("float64")
    scores = {tags: numpy_score(e, tags, transitions, start, end)
              for tags in itertools.product(range(crf.num_tags),
                                            repeat=length)}
    values = np.array(list(scores.values()))
    log_z = values.max() + np.log(np.exp(values - values.max()).sum())
    return log_z, max(scores, key=scores.get), scores


def make(num_tags=3, seed=0):
    keras.utils.set_random_seed(seed)
    crf = CRF(num_tags)
    crf.build()
    rng = np.random.default_rng(seed)
    for weight in crf.weights:  # larger than the initializer's, to matter
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    return crf


@pytest.mark.parametrize("num_tags, lengths", [(3, [4, 2, 1]), (2, [5, 5]),
                                               (4, [3, 1, 2])])
def test_log_partition_nll_and_viterbi_equal_brute_force(num_tags, lengths):
    crf = make(num_tags)
    rng = np.random.default_rng(1)
    width = max(lengths)
    emissions = rng.normal(size=(len(lengths), width, num_tags)).astype(
        "float32")
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    tags = rng.integers(0, num_tags, size=(len(lengths), width))
    log_z = crf.log_partition(emissions, mask).numpy()
    nll = crf.negative_log_likelihood(emissions, tags, mask).numpy()
    decoded = crf.decode(emissions, mask).numpy()
    for row, length in enumerate(lengths):
        expected_z, best, scores = brute_force(emissions[row], length, crf)
        assert log_z[row] == pytest.approx(expected_z, rel=1e-5)
        gold = tuple(tags[row, :length])
        assert nll[row] == pytest.approx(expected_z - scores[gold],
                                         rel=1e-4, abs=1e-4)
        assert tuple(decoded[row, :length]) == best
        assert (decoded[row, length:] == 0).all()


def test_padding_never_changes_a_sentence():
    crf = make(3)
    rng = np.random.default_rng(2)
    short = rng.normal(size=(1, 3, 3)).astype("float32")
    padded = np.concatenate(
        [short, rng.normal(size=(1, 4, 3)).astype("float32") * 10], axis=1)
    mask = np.arange(7)[None, :] < 3
    tags = np.array([[2, 0, 1, 1, 1, 1, 1]])
    assert crf.negative_log_likelihood(padded, tags, mask).numpy()[0] == \
        pytest.approx(crf.negative_log_likelihood(
            short, tags[:, :3]).numpy()[0], rel=1e-5)
    np.testing.assert_array_equal(crf.decode(padded, mask).numpy()[0, :3],
                                  crf.decode(short).numpy()[0])


def test_probabilities_sum_to_one_and_gradient_matches_differences():
    crf = make(2)
    emissions = tf.Variable(np.random.default_rng(3).normal(
        size=(1, 3, 2)).astype("float64"))
    crf64 = CRF(2, dtype="float64")
    crf64.build()
    for mine, other in zip(crf64.weights, crf.weights):
        mine.assign(other.numpy().astype("float64"))
    total = sum(np.exp(-crf64.negative_log_likelihood(
        emissions, np.array([tags])).numpy()[0])
        for tags in itertools.product(range(2), repeat=3))
    assert total == pytest.approx(1.0, rel=1e-9)
    tags = np.array([[1, 0, 1]])
    with tf.GradientTape() as tape:
        loss = crf64.negative_log_likelihood(emissions, tags)[0]
    grads = tape.gradient(loss, [emissions, crf64.transitions])
    # finite differences on the emissions and the transitions
    for variable, grad in zip([emissions, crf64.transitions], grads):
        values = variable.numpy()
        numeric = np.zeros_like(values)
        for index in np.ndindex(values.shape):
            for sign in (1, -1):
                shifted = values.copy()
                shifted[index] += sign * 1e-6
                variable.assign(shifted)
                numeric[index] += sign * crf64.negative_log_likelihood(
                    emissions, tags).numpy()[0] / 2e-6
            variable.assign(values)
        np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-5,
                                   atol=1e-8)


def test_trains_to_follow_the_transitions():
    """Tags that only the previous tag explains: the CRF learns it."""
    keras.utils.set_random_seed(0)
    crf = CRF(2)
    crf.build()
    rng = np.random.default_rng(0)
    tags = np.zeros((64, 6), "int64")
    tags[:, 0] = rng.integers(0, 2, 64)
    for t in range(1, 6):
        tags[:, t] = 1 - tags[:, t - 1]  # alternate
    emissions = np.zeros((64, 6, 2), "float32")
    emissions[np.arange(64), 0, tags[:, 0]] = 1.0  # only the first is seen
    optimizer = keras.optimizers.Adam(0.1)
    for _ in range(100):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(crf.negative_log_likelihood(emissions,
                                                              tags))
        optimizer.apply_gradients(zip(
            tape.gradient(loss, crf.trainable_weights),
            crf.trainable_weights))
    np.testing.assert_array_equal(crf.decode(emissions).numpy(), tags)


def test_passes_emissions_through_and_saves(tmp_path):
    inputs = keras.Input((None, 4))
    crf = CRF(4, name="crf")
    model = keras.Model(inputs, crf(inputs))
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(
        again.get_layer("crf").decode(x).numpy(), crf.decode(x).numpy())
    with pytest.raises(ValueError, match="num_tags"):
        CRF(0)


def test_one_token_sentences_in_compiled_code():
    """A batch of one-token sentences: the scans over steps 2..n have
    nothing to scan; compiled with an unknown batch size, they still run."""
    crf = make(3)
    emissions = np.random.default_rng(4).normal(size=(2, 1, 3)).astype(
        "float32")
    spec = tf.TensorSpec((None, None, 3), tf.float32)
    decode = tf.function(crf.decode, input_signature=[spec])
    log_z = tf.function(crf.log_partition, input_signature=[spec])
    for row in range(2):
        expected_z, best, _ = brute_force(emissions[row], 1, crf)
        assert decode(emissions).numpy()[row].tolist() == list(best)
        assert log_z(emissions).numpy()[row] == pytest.approx(expected_z,
                                                              rel=1e-5)
