"""SPEC section 3, the character-level "hello": feed h, e, l, l one-hot over
the vocabulary {h, e, l, o}; after training the model predicts e, l, l, o.

The two "l" inputs need different answers ("l" then "o"), so the model must
use what came before: a feed-forward model on the current character alone
could not get all four right.
"""

import time

import keras
import numpy as np
import pytest

from nlpseq import layers as nl

VOCAB = "helo"
INPUT, TARGET = "hell", "ello"


def encode(text):
    return np.array([VOCAB.index(c) for c in text])


def one_hot(text):
    return np.eye(len(VOCAB), dtype="float32")[encode(text)]


@pytest.mark.parametrize("layer_class", [nl.SimpleRNN, nl.LSTM, nl.GRU])
def test_hello(layer_class, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((len(INPUT), len(VOCAB))),
        layer_class(8, return_sequences=True),
        keras.layers.Dense(len(VOCAB), activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss="sparse_categorical_crossentropy")
    # 150 steps of the single training pair, in one epoch (cheaper than 150
    # epochs of one step).
    steps = 150
    x = np.repeat(one_hot(INPUT)[None], steps, axis=0)
    y = np.repeat(encode(TARGET)[None], steps, axis=0)
    initial_loss = model.evaluate(x[:1], y[:1], verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0)
    assert time.perf_counter() - start < 30
    assert model.evaluate(x[:1], y[:1], verbose=0) < 0.2 * initial_loss

    probabilities = model.predict(one_hot(INPUT)[None], verbose=0)[0]
    predicted = "".join(VOCAB[i] for i in probabilities.argmax(-1))
    assert predicted == TARGET
    # and confidently so
    assert probabilities.max(-1).min() > 0.5

    # the two "l" inputs (steps 2 and 3) get different answers: the
    # recurrence, not the current character, decides
    assert probabilities[2].argmax() != probabilities[3].argmax()
