"""The recurrent encoder every family builds its model from.

One builder for the stacked nlpseq recurrent layers, with the settings of
:func:`nlpseq.tasks.settings.encoder_settings`: ``cell`` chooses the layer,
``units`` is the size of one direction, ``bidirectional`` wraps each layer
in :class:`~nlpseq.layers.Bidirectional`.
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
