"""The recurrent encoder every family builds its model from.

:class:`RecurrentEncoder` is the part of a model that reads a sequence: the
embedding, the features joined to it where the family has them (the
tagger's character features), and the stacked recurrent layers, with the
settings of :func:`nlpseq.tasks.settings.encoder_settings`: ``cell``
chooses the layer, ``units`` is the size of one direction, ``layers`` how
many, ``bidirectional`` wraps each in :class:`~nlpseq.layers.Bidirectional`.
A family builds one in ``build_model`` and holds it as ``task.backbone``
(keras-hub's name for the part of a task that is not its head); transfer
(:mod:`nlpseq.transfer`) copies backbone to backbone by these attributes,
never by layer names.

The layers are ordinary Keras layers of the family's functional model, with
the names they always had (``embedding``, ``lstm_1``, ``bidirectional_1``,
...), so model folders written before the encoder existed load unchanged.
The family keeps what is its own around them: dropout between the layers
(the ``before`` and ``after`` hooks of :meth:`RecurrentEncoder.stack`), a
layer's ``return_sequences`` or ``return_state``, the head.
"""

from __future__ import annotations

from nlpseq.registry import CELLS


def recurrent_layer(config, index, bidirectional=None, layer_class=None,
                    units=None, name=None, **kwargs):
    """The ``index``-th (from 0) recurrent layer of ``config``'s encoder.

    Args:
        config: the task's configuration (``cell``, ``units``,
            ``bidirectional``).
        bidirectional: overrides ``config["bidirectional"]``.
        layer_class: replaces the configured cell's layer (the benchmarks
            build their reference with Keras' own layers).
        units: overrides ``config["units"]``.
        name: the layer's name (default: ``<cell>_<index + 1>``, wrapped as
            ``bidirectional_<index + 1>``).
        kwargs: passed to the layer (``return_sequences``...).
    """
    from nlpseq.layers import Bidirectional

    layer_class = layer_class or CELLS.get(config["cell"])
    if bidirectional is None:
        bidirectional = config.get("bidirectional", False)
    layer = layer_class(units or config["units"],
                        name=None if bidirectional and name else
                        (name or f"{config['cell']}_{index + 1}"), **kwargs)
    if bidirectional:
        layer = Bidirectional(layer, name=name or
                              f"bidirectional_{index + 1}")
    return layer


class RecurrentEncoder:
    """The embedding, the joined features and the stacked recurrent layers
    of a family's model (``task.backbone``).

    Args:
        config: the task's configuration (``cell``, ``units``, ``layers``,
            ``bidirectional``).
        bidirectional: overrides ``config["bidirectional"]`` (the language
            model reads one direction).
        layer_class: replaces the configured cell's layer (the benchmarks'
            Keras reference).
        names: ``index -> name`` of each recurrent layer (default: those of
            :func:`recurrent_layer`).

    Attributes:
        embedding: the word embedding layer, once :meth:`embed` ran.
        features: the layer whose outputs are joined to the embedding's
            (:meth:`join`), or ``None``.
        recurrent_layers: the recurrent layers, bottom first, once
            :meth:`stack` ran.
    """

    def __init__(self, config, bidirectional=None, layer_class=None,
                 names=None):
        self.config = config
        self.bidirectional = (config.get("bidirectional", False)
                              if bidirectional is None else bidirectional)
        self.layer_class = layer_class
        self.names = names
        self.embedding = None
        self.features = None
        self.recurrent_layers = []

    def embed(self, embedding, ids):
        """``embedding(ids)``; ``embedding`` (a layer the family made: its
        vocabulary, initializer, tied output) is kept as :attr:`embedding`."""
        self.embedding = embedding
        return embedding(ids)

    def join(self, features, inputs, x, name):
        """``x`` with ``features(inputs)`` concatenated on its last axis
        (the layer ``name``, which keeps ``x``'s mask); ``features`` is kept
        as :attr:`features`."""
        from nlpseq.layers import JoinFeatures

        self.features = features
        return JoinFeatures(name=name)([x, features(inputs)])

    def stack(self, x, before=None, after=None, options=None):
        """``x`` through ``config["layers"]`` recurrent layers, made here and
        kept in :attr:`recurrent_layers`.

        Args:
            before: ``(index, x) -> x`` before layer ``index`` (dropout).
            after: ``(index, outputs) -> x`` after it: ``outputs`` is what
                the layer returned (with ``return_state``, a list).
            options: ``index -> dict`` of the layer's arguments
                (``return_sequences``, ``return_state``...).
        """
        self.recurrent_layers = []
        for index in range(self.config["layers"]):
            if before is not None:
                x = before(index, x)
            layer = recurrent_layer(
                self.config, index, bidirectional=self.bidirectional,
                layer_class=self.layer_class,
                name=self.names(index) if self.names else None,
                **(options(index) if options else {}))
            self.recurrent_layers.append(layer)
            x = layer(x)
            if after is not None:
                x = after(index, x)
        return x

    def directions(self):
        """``(layer, bidirectional)`` of each recurrent layer, bottom first:
        the layer itself, or a bidirectional layer's forward direction."""
        return [(getattr(layer, "forward_layer", layer),
                 hasattr(layer, "forward_layer"))
                for layer in self.recurrent_layers]


def text_encoder(vocabulary, **options):
    """The :class:`~nlpseq.text.TextEncoder` of a vocabulary, named
    ``text_encoder`` unless ``name`` is given."""
    from nlpseq.text import TextEncoder

    options.setdefault("name", "text_encoder")
    return TextEncoder(vocabulary, **options)


def encode_texts(encoder, texts, chunk=4096):
    """Token ids of each text, as a list of 1-D int32 arrays, ``chunk``
    texts at a time."""
    import numpy as np

    out = []
    for start in range(0, len(texts), chunk):
        ids = encoder.token_ids(list(texts[start:start + chunk]))
        flat = ids.flat_values.numpy().astype("int32")
        ends = np.cumsum(ids.row_lengths().numpy())[:-1]
        out += np.split(flat, ends)
    return out


def token_rows(encoder, texts, chunk=4096):
    """The tokens of each text (lists of ``str``), ``chunk`` at a time."""
    for start in range(0, len(texts), chunk):
        for row in encoder.tokenize(list(texts[start:start + chunk])).to_list():
            yield [t.decode("utf-8") for t in row]
