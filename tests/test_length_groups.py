"""Serving-time batching by length (nlpseq.length_groups)."""

import numpy as np
import tensorflow as tf

from nlpseq.length_groups import by_length


def masked_sum_and_width(table):
    """A forward that ignores padding (id 0 embeds to zeros) and also
    reports the width of the ids it was given."""
    table = tf.constant(table)

    def forward(ids):
        summed = tf.reduce_sum(tf.gather(table, ids), axis=1)
        width = tf.fill([tf.shape(ids)[0], 1],
                        tf.cast(tf.shape(ids)[1], tf.float32))
        return tf.concat([summed, width], axis=-1)

    return forward


def test_outputs_in_request_order_and_groups_cut_to_their_longest_row():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 3)).astype("float32")
    table[0] = 0.0  # padding
    lengths = [5, 1, 0, 9, 3, 7, 2]
    ids = np.zeros((len(lengths), 9), "int32")
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(1, 50, length)
    out = tf.function(lambda x: by_length(
        masked_sum_and_width(table), x, 4, group=3))(ids).numpy()
    np.testing.assert_allclose(out[:, :3], table[ids].sum(axis=1),
                               rtol=1e-6, atol=1e-6)
    # sorted by length: [0, 1, 2 | 3, 5, 7 | 9] -> widths 2 (at least 1), 7, 9
    width = {0: 2, 1: 2, 2: 2, 3: 7, 5: 7, 7: 7, 9: 9}
    assert out[:, 3].tolist() == [width[n] for n in lengths]


def test_empty_request():
    out = by_length(masked_sum_and_width(np.ones((5, 3), "float32")),
                    np.zeros((0, 4), "int32"), 4)
    assert out.shape == (0, 4)
