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
        forward: maps the inputs' rows of one group, each input of rank 2
            or more cut on axis 1 to the group's longest row (rank-1 inputs,
            such as raw texts, are not cut), to one output row per input
            row: a tensor, or a tuple of them.
        inputs: tensors ``[batch, ...]``; those of rank 2 or more
            ``[batch, time, ...]``, right-padded along ``time``.
        lengths: ``[batch]`` int32, each row's length along ``time``.
        tail: the shape of one row's output in the whole request's terms
            (ints or scalar tensors): ``[output_size]`` for one vector per
            row, ``[time]`` for one value per step with ``per_step``, ``[]``
            for one value per row; a list of them for a tuple of outputs.
        dtype: the outputs' dtype (a list for a tuple of outputs).
        order_by: ``[batch]``, what the rows are sorted by (default
            ``lengths``), e.g. the characters a row holds when those set
            its cost.
        group: rows per call of ``forward``.
        per_step: the output's axis 1 is the (cut) time axis: each group's
            output is padded with zeros back to ``tail[0]`` steps.

    Returns:
        ``[batch, *tail]`` (or a tuple of them), row ``i`` for input row
        ``i``.
    """
    several = isinstance(dtype, (list, tuple))
    tails, dtypes = (tail, dtype) if several else ([tail], [dtype])
    inputs = [tf.convert_to_tensor(x) for x in inputs]
    lengths = tf.convert_to_tensor(lengths, tf.int32)
    order = tf.argsort(lengths if order_by is None else order_by,
                       stable=True)
    batch = tf.shape(lengths)[0]
    groups = (batch + group - 1) // group
    arrays = [tf.TensorArray(kind, size=groups, infer_shape=False,
                             element_shape=tf.TensorShape([None, *[
                                 tf.get_static_value(size) for size in shape]]))
              for shape, kind in zip(tails, dtypes)]

    def body(index, arrays):
        rows = order[index * group:(index + 1) * group]
        # at least one step, as for a request of empty texts
        longest = tf.maximum(tf.reduce_max(tf.gather(lengths, rows)), 1)
        parts = [tf.gather(x, rows) for x in inputs]
        outputs = forward(*[x[:, :longest] if len(x.shape) > 1 else x
                            for x in parts])
        if not several:
            outputs = [outputs]
        written = []
        for array, output, shape, kind in zip(arrays, outputs, tails,
                                              dtypes):
            output = tf.cast(output, kind)
            if per_step:
                padding = [[0, 0]] * len(output.shape)
                padding[1] = [0, shape[0] - tf.shape(output)[1]]
                output = tf.pad(output, padding)
            written.append(array.write(index, output))
        return index + 1, written

    _, arrays = tf.while_loop(lambda index, _: index < groups, body,
                              (tf.constant(0), arrays))
    # row i of the request is row where(order == i) of the groups' rows
    back = tf.argsort(order, stable=True)
    results = [tf.cond(batch > 0,
                       lambda array=array: tf.gather(array.concat(), back),
                       lambda shape=shape, kind=kind: tf.zeros(
                           tf.stack([0, *shape]), kind))
               for array, shape, kind in zip(arrays, tails, dtypes)]
    return tuple(results) if several else results[0]


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
