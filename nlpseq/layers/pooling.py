"""Pooling a sequence of vectors over time, respecting the mask.

Example:
    >>> import numpy as np
    >>> x = np.array([[[1.0], [5.0], [9.0]]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> [float(SequencePooling(mode)(x, mask=mask)[0, 0])
    ...  for mode in ("max", "mean", "last")]
    [5.0, 3.0, 5.0]
"""

import keras
from keras import ops

from nlpseq.layers.base import check_choice

MODES = ("last", "max", "mean", "max_mean")


@keras.saving.register_keras_serializable(package="nlpseq")
class SequencePooling(keras.layers.Layer):
    """``[batch, time, features]`` to ``[batch, features]``, over valid steps.

    Args:
        mode: ``"last"`` (the last valid step), ``"max"``, ``"mean"``, or
            ``"max_mean"`` (both, concatenated: ``2 * features``).

    Call arguments:
        sequences: ``[batch, time, features]``.
        mask: optional boolean ``[batch, time]`` (taken from the layer
            before); masked steps never contribute. A row with no valid step
            pools to zeros.
    """

    def __init__(self, mode="max", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, MODES)
        self.supports_masking = True

    def compute_mask(self, sequences, mask=None):
        return None

    def compute_output_shape(self, shape):
        width = shape[-1] * (2 if self.mode == "max_mean" else 1)
        return (shape[0], width)

    def call(self, sequences, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(sequences)[:2], dtype="bool")
        valid = ops.cast(ops.expand_dims(mask, -1), sequences.dtype)
        count = ops.sum(valid, axis=1)
        pooled = []
        if self.mode == "last":
            # Index of the last valid step (also for left-padded rows).
            steps = ops.shape(sequences)[1]
            positions = ops.arange(steps, dtype="int32")[None, :]
            last = ops.max(ops.where(mask, positions, -1), axis=1)
            picked = ops.take_along_axis(
                sequences, ops.maximum(last, 0)[:, None, None], axis=1)[:, 0]
            return picked * ops.cast(last[:, None] >= 0, sequences.dtype)
        if self.mode in ("max", "max_mean"):
            lowest = ops.min(sequences) - 1.0
            peak = ops.max(ops.where(valid > 0, sequences, lowest), axis=1)
            pooled.append(ops.where(count > 0, peak, 0.0))
        if self.mode in ("mean", "max_mean"):
            pooled.append(ops.sum(sequences * valid, axis=1)
                          / ops.maximum(count, 1.0))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, -1)

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
