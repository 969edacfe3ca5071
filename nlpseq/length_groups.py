"""Serving-time batching, in the graph.

A request's texts are padded to its longest one, and a recurrent layer's
cost on a CPU grows with rows × steps, padding included: a request of 256
IMDB reviews padded to 400 tokens spends about half its work on padding.
:func:`in_groups` runs a model over groups of rows of similar length, each
group cut to its own longest row, and puts the results back in request
order. The outputs are the same as one call on the whole request (the
padding is masked); only the work changes. :func:`by_length` is its form
for one id tensor in and one vector per row out (the classifiers).
"""

import tensorflow as tf


def in_groups(forward, inputs, lengths, tail, dtype=tf.float32,
              order_by=None, group=32, per_step=False):
    """``forward(*inputs)`` run group by group, rows sorted by length.

    Args:
        forward: maps the inputs' rows of one group, each input cut on axis
            1 to the group's longest row, to one output row per input row.
        inputs: tensors ``[batch, time, ...]``, right-padded along ``time``.
        lengths: ``[batch]`` int32, each row's length along ``time``.
        tail: the shape of one row's output in the whole request's terms
            (ints or scalar tensors): ``[output_size]`` for one vector per
            row, ``[time]`` for one value per step with ``per_step``.
        dtype: the outputs' dtype.
        order_by: ``[batch]``, what the rows are sorted by (default
            ``lengths``), e.g. the characters a row holds when those set
            its cost.
        group: rows per call of ``forward``.
        per_step: the output's axis 1 is the (cut) time axis: each group's
            output is padded with zeros back to ``tail[0]`` steps.

    Returns:
        ``[batch, *tail]``, row ``i`` for input row ``i``.
    """
    inputs = [tf.convert_to_tensor(x) for x in inputs]
    lengths = tf.convert_to_tensor(lengths, tf.int32)
    order = tf.argsort(lengths if order_by is None else order_by,
                       stable=True)
    batch = tf.shape(lengths)[0]
    groups = (batch + group - 1) // group
    static_tail = [tf.get_static_value(size) for size in tail]
    outputs = tf.TensorArray(dtype, size=groups, infer_shape=False,
                             element_shape=tf.TensorShape([None,
                                                           *static_tail]))

    def body(index, outputs):
        rows = order[index * group:(index + 1) * group]
        # at least one step, as for a request of empty texts
        longest = tf.maximum(tf.reduce_max(tf.gather(lengths, rows)), 1)
        output = tf.cast(forward(*[tf.gather(x, rows)[:, :longest]
                                   for x in inputs]), dtype)
        if per_step:
            padding = [[0, 0]] * len(output.shape)
            padding[1] = [0, tail[0] - tf.shape(output)[1]]
            output = tf.pad(output, padding)
        return index + 1, outputs.write(index, output)

    _, outputs = tf.while_loop(lambda index, _: index < groups, body,
                               (tf.constant(0), outputs))
    shape = tf.stack([batch, *tail])
    return tf.cond(batch > 0,
                   lambda: tf.scatter_nd(order[:, None], outputs.concat(),
                                         shape),
                   lambda: tf.zeros(shape, dtype))


def by_length(forward, ids, output_size, group=32):
    """``forward(ids)`` run group by group, rows sorted by length.

    Args:
        forward: maps right-padded ids ``[rows, time]`` (0 = padding) to
            ``[rows, output_size]`` float32 outputs, one row per input row.
        ids: ``[batch, time]`` int32, right-padded with 0.
        output_size: the outputs' last dimension.
        group: rows per call of ``forward``.

    Returns:
        ``[batch, output_size]``, row ``i`` for ``ids[i]``.
    """
    ids = tf.convert_to_tensor(ids, tf.int32)
    lengths = tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=1)
    return in_groups(forward, [ids], lengths, [output_size], group=group)
