"""Decoding over a step function: greedy search, sampling, beam search.

Graph functions (``tf.while_loop``; call them inside a ``tf.function`` or a
serving signature) shared by the language model and the translator. A
model takes part through one **step function**::

    step(tokens, states, *context) -> (log_probs, new_states, extra)

* ``tokens``: ``[n]`` int32, the previous token of each row;
* ``states``: a list of ``[n, ...]`` tensors (the recurrent states);
* ``context``: tensors read at every step (an encoder's memory, its
  attention keys and mask), ``[n, ...]``;
* ``log_probs``: ``[n, vocabulary]`` log-probabilities of the next token
  (:func:`sample` also accepts unnormalised logits: only their softmax
  matters there);
* ``extra``: a per-row tensor ``[n, ...]`` to collect at each step
  (attention weights), or ``None``.

Every search starts by calling ``step(start_tokens, states, *context)``,
unless the caller already has that first output: ``first=(log_probs,
extra)`` then stands for it (``states`` being those after it, and
``start_tokens`` unread). A language model uses it to read its whole prompt
in one call of its model and start from the prompt's last logits. A
search runs at least one step: ``max_steps`` (``length``) is at least 1.

Functions:
    :func:`greedy_search`: the most likely token at each step, with the
    collected ``extra`` (attention weights).
    :func:`beam_search`: the most likely sequences among ``width`` kept at
    each step, with an optional end token and length penalty.
    :func:`sample`: a draw at each step (temperature, top-k), reproducible
    with a seed; or greedy.

End tokens: with ``end_id``, a row that produced it is finished: it goes on
with ``pad_id`` tokens (fed back to ``step``) at no cost, and the loop stops
when every row is finished. Without ``end_id`` every search runs exactly
``max_steps`` steps.

Example (a language model's beam, ``width`` 4, 8 tokens)::

    def step(tokens, states):
        logits, *states = step_model([tokens[:, None], *states])
        return tf.nn.log_softmax(logits[:, 0]), states, None

    ids, scores = beam_search(step, last_tokens, states, 4, 8)
    best = ids[:, 0]                                  # [batch, 8]
"""

from __future__ import annotations

#: The score of ruled-out entries (padding, unknown token...).
NEG_INF = -1e9


def _first_step(step, start_tokens, states, context, first):
    """``(log_probs, states, extra)`` of the first step."""
    if first is None:
        return step(start_tokens, list(states), *context)
    log_probs, extra = first
    return log_probs, list(states), extra


def _state_shapes(states):
    import tensorflow as tf

    return [tf.TensorShape([None]).concatenate(s.shape[1:]) for s in states]


def ban(scores, banned_ids):
    """``scores`` ``[n, vocabulary]`` with the ``banned_ids`` entries set
    to :data:`NEG_INF` (never chosen)."""
    import tensorflow as tf

    if not banned_ids:
        return scores
    vocabulary = tf.shape(scores)[-1]
    banned = tf.scatter_nd([[i] for i in banned_ids],
                           tf.ones([len(banned_ids)], tf.bool), [vocabulary])
    return tf.where(banned, tf.constant(NEG_INF, scores.dtype), scores)


def _limits(max_steps):
    """``(the loop's bound, reached(count) -> [batch] bool)``: whether each
    row has its limit's ``count`` tokens; a scalar ``max_steps`` is every
    row's limit (and the loop's bound alone ends them)."""
    import tensorflow as tf

    max_steps = tf.convert_to_tensor(max_steps, tf.int32)
    bound = (tf.reduce_max(max_steps) if max_steps.shape.rank == 1
             else max_steps)
    return bound, lambda count: tf.convert_to_tensor(count) >= max_steps


def greedy_search(step, start_tokens, states, max_steps, context=(),
                  end_id=None, pad_id=0, first=None):
    """The most likely token at each step.

    Args:
        step: the step function (module docstring).
        start_tokens: ``[batch]`` int32, the first tokens fed to ``step``.
        states: the initial states (list of ``[batch, ...]``).
        max_steps: at most this many tokens (at least 1): a scalar, or
            ``[batch]``, each row's own limit (a row that reaches it is
            done, without the end token; so a row's result does not depend
            on the other rows of its batch).
        context: tensors passed to every ``step`` call.
        end_id: the end token (``None``: none, run ``max_steps`` steps).
        pad_id: the token after the end (fed back to ``step``).
        first: ``(log_probs, extra)`` of the first step, if known already.

    Returns:
        ``(ids [batch, steps], scores [batch], extras [batch, steps, ...] or
        None)``: ``scores`` sums the log-probabilities of the tokens up to
        and with the end token; ``extras`` stacks ``step``'s ``extra`` (None
        when ``step`` gives none).
    """
    import tensorflow as tf

    log_probs, states, extra = _first_step(step, start_tokens, states,
                                           context, first)
    batch = tf.shape(log_probs)[0]
    max_steps, reached = _limits(max_steps)

    def select(log_probs, done, score, count):
        token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        picked = tf.gather(log_probs, token, batch_dims=1)
        token = tf.where(done, pad_id, token)
        score = score + tf.where(done, tf.zeros_like(picked), picked)
        if end_id is not None:
            done = done | tf.equal(token, end_id)
        return token, done | reached(count), score

    token, done, score = select(log_probs, tf.zeros([batch], tf.bool),
                                tf.zeros([batch], log_probs.dtype), 1)
    ids = tf.TensorArray(tf.int32, size=0, dynamic_size=True,
                         element_shape=tf.TensorShape([None])).write(0, token)
    collect = extra is not None
    extras = (tf.TensorArray(extra.dtype, size=0, dynamic_size=True,
                             element_shape=tf.TensorShape(
                                 [None] * extra.shape.rank)).write(0, extra)
              if collect else tf.constant(0))

    def body(t, token, states, done, score, ids, extras):
        log_probs, states, extra = step(token, states, *context)
        token, done, score = select(log_probs, done, score, t + 1)
        ids = ids.write(t, token)
        if collect:
            extras = extras.write(t, extra)
        return t + 1, token, list(states), done, score, ids, extras

    _, _, _, _, score, ids, extras = tf.while_loop(
        lambda t, token, states, done, *_: (t < max_steps) & ~tf.reduce_all(
            done),
        body, (tf.constant(1), token, states, done, score, ids, extras))
    if collect:
        stacked = extras.stack()
        extras = tf.transpose(stacked, [1, 0] + list(
            range(2, stacked.shape.rank)))
    else:
        extras = None
    return tf.transpose(ids.stack()), score, extras


def beam_search(step, start_tokens, states, width, max_steps, context=(),
                end_id=None, pad_id=0, length_penalty=0.0, n_best=1,
                first=None):
    """The most likely sequences, ``width`` kept at each step.

    Each of the ``batch`` rows becomes ``width`` hypotheses (its states and
    context repeated per beam; only one live at first). At each step every
    hypothesis is extended by every token and the ``width`` best of the
    ``width * vocabulary`` candidates are kept, ranked by their summed
    log-probability divided by the length penalty ``((5 + length) / 6) **
    length_penalty`` (GNMT's; 0: none). With ``end_id``, a finished
    hypothesis continues with ``pad_id`` at no cost and its length stops
    growing.

    Args:
        step: the step function (module docstring); its ``extra`` is
            ignored.
        start_tokens: ``[batch]`` int32.
        states: the initial states (list of ``[batch, ...]``).
        width: hypotheses kept (scalar; at most the number of tokens that
            ``step`` does not rule out).
        max_steps: at most this many tokens (at least 1): a scalar, or
            ``[batch]``, each row's own limit (its hypotheses are done once
            they have that many tokens).
        context: tensors passed to every ``step`` call (repeated per beam).
        end_id: the end token (``None``: run ``max_steps`` steps).
        pad_id: the token after the end.
        length_penalty: the exponent ``alpha`` of the length penalty.
        n_best: how many hypotheses to return (at most ``width``).
        first: ``(log_probs, extra)`` of the first step (``[batch, ...]``),
            if known already.

    Returns:
        ``(ids [batch, n_best, steps], scores [batch, n_best])``, best
        first; a score is the log-probability divided by the length
        penalty.
    """
    import tensorflow as tf

    def tile(x):
        return tf.repeat(x, width, axis=0)

    context = tuple(tile(c) for c in context)
    if first is None:
        states = [tile(s) for s in states]
        log_probs, states, _ = step(tile(start_tokens), states, *context)
    else:
        log_probs = tile(first[0])
        states = [tile(s) for s in states]
    vocabulary = tf.shape(log_probs)[-1]
    batch = tf.shape(log_probs)[0] // width
    # one live hypothesis at first: the others start at -inf
    scores = tf.where(tf.range(width)[None, :] > 0,
                      tf.constant(NEG_INF, log_probs.dtype),
                      tf.zeros([batch, width], log_probs.dtype))
    only_padding = tf.one_hot(pad_id, vocabulary, on_value=0.0,
                              off_value=NEG_INF, dtype=log_probs.dtype)

    def penalty(length):
        return tf.pow((5.0 + tf.cast(length, log_probs.dtype)) / 6.0,
                      tf.cast(length_penalty, log_probs.dtype))

    max_steps, reached = _limits(max_steps)

    def advance(log_probs, history, scores, lengths, done, states, count):
        """Keep the ``width`` best extensions (``count`` tokens each)."""
        log_probs = tf.reshape(log_probs, [batch, width, vocabulary])
        if end_id is not None:
            # a finished hypothesis continues with padding, at no cost
            log_probs = tf.where(done[:, :, None], only_padding, log_probs)
        total = scores[:, :, None] + log_probs
        new_lengths = lengths + tf.cast(~done, tf.int32)
        ranked = total / penalty(new_lengths)[:, :, None]
        _, flat = tf.math.top_k(tf.reshape(ranked, [batch, -1]), k=width)
        parent, token = flat // vocabulary, flat % vocabulary
        scores = tf.gather(tf.reshape(total, [batch, -1]), flat,
                           batch_dims=1)
        extended = token[:, :, None]
        if history is not None:
            extended = tf.concat([tf.gather(history, parent, batch_dims=1),
                                  extended], axis=-1)
        lengths = tf.gather(new_lengths, parent, batch_dims=1)
        done = tf.gather(done, parent, batch_dims=1)
        if end_id is not None:
            done = done | tf.equal(token, end_id)
        done = done | tf.reshape(reached(count), [-1, 1])
        rows = tf.reshape(parent + tf.range(batch)[:, None] * width, [-1])
        states = [tf.gather(s, rows) for s in states]
        return extended, scores, lengths, done, states

    history, scores, lengths, done, states = advance(
        log_probs, None, scores, tf.zeros([batch, width], tf.int32),
        tf.zeros([batch, width], tf.bool), states, 1)

    def body(t, history, scores, lengths, done, states):
        log_probs, states, _ = step(tf.reshape(history[:, :, -1], [-1]),
                                    states, *context)
        return (t + 1, *advance(log_probs, history, scores, lengths, done,
                                states, t + 1))

    _, history, scores, lengths, done, _ = tf.while_loop(
        lambda t, history, scores, lengths, done, states: (
            t < max_steps) & ~tf.reduce_all(done),
        body, (tf.constant(1), history, scores, lengths, done, states),
        shape_invariants=(tf.TensorShape([]),
                          tf.TensorShape([None, None, None]),
                          tf.TensorShape([None, None]),
                          tf.TensorShape([None, None]),
                          tf.TensorShape([None, None]),
                          _state_shapes(states)))
    final = scores / penalty(lengths)
    best, order = tf.math.top_k(final, k=n_best)
    return tf.gather(history, order, batch_dims=1), best


def sample(step, start_tokens, states, length, temperature=1.0, top_k=0,
           seed=0, greedy=False, context=(), banned_ids=(), first=None):
    """A token drawn at each step (or the most likely one, ``greedy``).

    Each draw is from the softmax of ``step``'s scores divided by
    ``temperature``, among the ``top_k`` most likely tokens if ``top_k`` >
    0; step ``i`` draws with the stateless seed ``(seed, i)``, so a seed
    gives the same tokens on any machine and batch. ``banned_ids`` are never
    chosen (ruled out after the temperature, which would otherwise bring
    them back). No end token: exactly ``length`` tokens.

    Args:
        step: the step function (module docstring); its scores may be
            logits (only their softmax matters), its ``extra`` is ignored.
        start_tokens: ``[batch]`` int32.
        states: the initial states (list of ``[batch, ...]``).
        length: tokens to produce (at least 1; scalar).
        temperature: scalar above 0.
        top_k: scalar, 0 for all tokens.
        seed: int32 scalar.
        greedy: bool scalar: the most likely token instead of a draw.
        context: tensors passed to every ``step`` call.
        banned_ids: token ids never chosen (Python ints).
        first: ``(scores, extra)`` of the first step, if known already.

    Returns:
        ``ids [batch, length]`` int32.
    """
    import tensorflow as tf

    logits, states, _ = _first_step(step, start_tokens, states, context,
                                    first)
    vocabulary = tf.shape(logits)[-1]
    seed = tf.cast(seed, tf.int32)

    def choose(logits, index):
        scaled = ban(logits / tf.cast(temperature, logits.dtype), banned_ids)
        k = tf.where(top_k > 0, tf.minimum(top_k, vocabulary), vocabulary)
        threshold = tf.math.top_k(scaled, k=k).values[:, -1:]
        scaled = tf.where(scaled < threshold,
                          tf.constant(NEG_INF, scaled.dtype), scaled)
        drawn = tf.random.stateless_categorical(
            scaled, 1, seed=tf.stack([seed, index]), dtype=tf.int32)[:, 0]
        best = tf.argmax(ban(logits, banned_ids), axis=-1,
                         output_type=tf.int32)
        return tf.where(greedy, best, drawn)

    tokens = tf.TensorArray(tf.int32, size=length,
                            element_shape=tf.TensorShape([None]))
    token = choose(logits, tf.constant(0))
    tokens = tokens.write(0, token)

    def body(index, token, states, tokens):
        logits, states, _ = step(token, states, *context)
        token = choose(logits, index)
        return index + 1, token, list(states), tokens.write(index, token)

    _, _, _, tokens = tf.while_loop(
        lambda index, *_: index < length, body,
        (tf.constant(1), token, states, tokens))
    return tf.transpose(tokens.stack())


__all__ = ["NEG_INF", "ban", "beam_search", "greedy_search", "sample"]
