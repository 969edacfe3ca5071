"""Contextual character embeddings of each word, for taggers (Akbik et al.
2018, Flair's recipe).

:class:`ContextualCharacterEmbeddings` reads a sentence the way a
character-level language model reads a line, and takes from its states one
vector per word:

- the sentence is its words joined by single spaces, after the language
  model's end-of-line character (every line of its corpus starts after
  one, so the model starts here from the state it learned to start from);
- a **forward** model reads it from the start; word *i*'s vector is the
  top layer's hidden state after the word's **last** character;
- a **backward** model (trained on reversed lines) reads it from the end;
  word *i*'s vector is its top layer's hidden state after reading
  (backwards) the word's **first** character;
- with ``position="space"`` (Flair's default, ``with_whitespace``), each
  model reads one space more at the end of the sentence, and a word's
  vector is the state one step later: after the space that follows the
  word in the model's reading order (the space before it, for the
  backward model). The model then has seen that the word ended.

The vectors of the models are concatenated in the order given (e.g.
forward, then backward); padding words get zeros. The language models'
layers are ordinary nlpseq layers (the embedding, then the recurrent
layers, whose time loop is :mod:`nlpseq.layers.rnn`'s); their weights are
the layer's own (copied in from the trained models, then saved with the
tagger), frozen unless ``fine_tune``.

The input is the tagger's character ids ``[batch, time, chars]`` (0 pads,
the words in the first ``time`` positions); each language model maps them
to its own vocabulary through a constant table (``char_map``: the tagger's
id -> the model's id; 1 is unknown in both). The sentences are packed
without the padding characters before the models read them, so a model
runs over as many steps as the longest sentence has characters.

Example:
    >>> spec = dict(direction="forward", vocabulary_size=6, embedding_dim=4,
    ...             cell="lstm", units=3, layers=1, space_id=2,
    ...             end_of_line_id=3, char_map=[0, 1, 4, 5])
    >>> layer = ContextualCharacterEmbeddings([spec])
    >>> layer(keras.ops.ones((2, 5, 7), dtype="int32")).shape
    (2, 5, 3)
"""

import keras

from nlpseq.registry import CELLS

DIRECTIONS = ("forward", "backward")
#: Where a word's vector is read (see the module's text).
POSITIONS = ("word", "space")
#: The keys of a language model's description (``language_models``).
SPEC_KEYS = ("direction", "vocabulary_size", "embedding_dim", "cell",
             "units", "layers", "space_id", "end_of_line_id", "char_map")


@keras.saving.register_keras_serializable(package="nlpseq")
class ContextualCharacterEmbeddings(keras.layers.Layer):
    """Character ids ``[batch, time, chars]`` -> ``[batch, time, sum of
    the models' units]``.

    Args:
        language_models: one dict per character language model, with
            :data:`SPEC_KEYS`: its ``direction``, its vocabulary size,
            ``embedding_dim``, ``cell``, ``units`` and ``layers``, the ids
            of the space and of the end-of-line character in its
            vocabulary, and ``char_map`` (the tagger's character id -> its
            id; id 0 must map to 0).
        fine_tune: train the language models' weights with the tagger
            (default: frozen).
        position: ``"word"``: a word's vector is the state after its last
            character (its first, backwards); ``"space"``: after the space
            that follows it in the model's reading order.

    Attributes:
        embeddings: each model's character embedding layer.
        recurrent: each model's recurrent layers, bottom first.
    """

    def __init__(self, language_models, fine_tune=False, position="word",
                 **kwargs):
        super().__init__(**kwargs)
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got "
                             f"{position!r}")
        self.position = position
        self.language_models = [dict(spec) for spec in language_models]
        for spec in self.language_models:
            missing = [k for k in SPEC_KEYS if k not in spec]
            if missing:
                raise ValueError(f"a language model without {missing}")
            if spec["direction"] not in DIRECTIONS:
                raise ValueError(f"direction must be one of {DIRECTIONS}, "
                                 f"got {spec['direction']!r}")
        self.fine_tune = bool(fine_tune)
        self.embeddings, self.recurrent = [], []
        for number, spec in enumerate(self.language_models, start=1):
            embedding = keras.layers.Embedding(
                spec["vocabulary_size"], spec["embedding_dim"],
                name=f"char_lm_{number}_embedding")
            layers = [CELLS.get(spec["cell"])(
                spec["units"], return_sequences=True,
                name=f"char_lm_{number}_{spec['cell']}_{index + 1}")
                for index in range(spec["layers"])]
            for layer in [embedding, *layers]:
                layer.trainable = self.fine_tune
            self.embeddings.append(embedding)
            self.recurrent.append(layers)

    @property
    def output_size(self):
        return sum(spec["units"] for spec in self.language_models)

    def build(self, char_ids_shape):
        for spec, embedding, layers in zip(self.language_models,
                                           self.embeddings, self.recurrent):
            embedding.build((None, None))
            size = spec["embedding_dim"]
            for layer in layers:
                layer.build((None, None, size))
                size = spec["units"]
        self.built = True

    def packed(self, char_ids):
        """The sentences as character sequences and where each word is in
        them: ``(ids [batch, steps], lengths [batch], first [batch, time],
        last [batch, time], present [batch, time])``. ``ids`` holds the
        tagger's character ids, and the space between two words as the id
        ``len(char_map)`` (each model's table maps it to its space); it is
        packed to the left (0 pads); ``first`` and ``last`` are the
        positions of each word's first and last characters in it."""
        import tensorflow as tf

        char_ids = tf.cast(char_ids, tf.int32)
        shape = tf.shape(char_ids)
        batch, time, chars = shape[0], shape[1], shape[2]
        space = len(self.language_models[0]["char_map"])
        word_lengths = tf.reduce_sum(tf.cast(char_ids > 0, tf.int32), axis=2)
        present = word_lengths > 0
        words = tf.reduce_sum(tf.cast(present, tf.int32), axis=1)
        # each word's characters, then a space unless it is the last word
        spaced = tf.range(time)[None, :] < words[:, None] - 1
        slots = tf.concat([char_ids, tf.fill([batch, time, 1], space)],
                          axis=2)
        valid = tf.concat([char_ids > 0, spaced[:, :, None]], axis=2)
        steps = time * (chars + 1)
        slots = tf.reshape(slots, [batch, steps])
        valid = tf.reshape(valid, [batch, steps])
        position = tf.cumsum(tf.cast(valid, tf.int32), axis=1,
                             exclusive=True)
        lengths = tf.reduce_sum(tf.cast(valid, tf.int32), axis=1)
        rows = tf.broadcast_to(tf.range(batch)[:, None], [batch, steps])
        # (the padding characters go to one extra column, with value 0)
        target = tf.stack([rows, tf.where(valid, position, steps)], axis=2)
        ids = tf.scatter_nd(target, tf.where(valid, slots, 0),
                            [batch, steps + 1])[:, :tf.reduce_max(
                                tf.concat([lengths, [0]], 0))]
        word_rows = tf.broadcast_to(tf.range(batch)[:, None], [batch, time])
        start = tf.range(time)[None, :] * (chars + 1)

        def located(offset):
            flat = tf.clip_by_value(start + offset, 0, steps - 1)
            return tf.gather_nd(position, tf.stack([word_rows, flat], 2))

        first = located(tf.zeros_like(word_lengths))
        last = located(word_lengths - 1)
        return ids, lengths, first, last, present

    def call(self, char_ids, training=False):
        import tensorflow as tf

        ids, lengths, first, last, present = self.packed(char_ids)
        batch = tf.shape(ids)[0]
        time = tf.shape(first)[1]
        word_rows = tf.broadcast_to(tf.range(batch)[:, None], [batch, time])
        outputs = []
        for spec, embedding, layers in zip(self.language_models,
                                           self.embeddings, self.recurrent):
            table = tf.constant(list(spec["char_map"]) + [spec["space_id"]],
                                tf.int32)
            sequence = tf.gather(table, ids)
            if spec["direction"] == "backward":
                sequence = tf.reverse_sequence(sequence, lengths, seq_axis=1,
                                               batch_axis=0)
                # (after the end of line: the word's first character read
                # last)
                index = lengths[:, None] - first
            else:
                index = last + 1
            if self.position == "space":
                # (one space after the sentence in the reading order: each
                # word, the last too, has one after it)
                sequence = tf.pad(sequence, [[0, 0], [0, 1]])
                after = (tf.range(tf.shape(sequence)[1])[None, :]
                         == lengths[:, None])
                sequence = tf.where(after, spec["space_id"], sequence)
                index = index + 1
            sequence = tf.concat([tf.fill([batch, 1], spec["end_of_line_id"]),
                                  sequence], axis=1)
            mask = sequence > 0
            x = embedding(sequence)
            for layer in layers:
                x = layer(x, mask=mask, training=training)
            # (padding words read any step: their vectors are zeroed)
            index = tf.clip_by_value(index, 0, tf.shape(x)[1] - 1)
            states = tf.gather_nd(x, tf.stack([word_rows, index], axis=2))
            states = tf.where(present[:, :, None], states,
                              tf.zeros_like(states))
            if not self.fine_tune:
                states = tf.stop_gradient(states)
            outputs.append(states)
        return outputs[0] if len(outputs) == 1 else tf.concat(outputs, -1)

    def compute_output_shape(self, char_ids_shape):
        return tuple(char_ids_shape[:2]) + (self.output_size,)

    def get_config(self):
        config = super().get_config()
        config.update({"language_models": self.language_models,
                       "fine_tune": self.fine_tune,
                       "position": self.position})
        return config
