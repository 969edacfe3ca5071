"""The fine-tuning recipe's schedules: how fast each layer group learns, and
when it starts to.

A model started from a language model (``--init-from``) is fine-tuned as in
ULMFiT (Howard & Ruder, 2018), each part a setting that can be turned off:

- **slanted triangular learning rate** (``--lr-schedule slanted``): over the
  run's ``T`` training steps the rate rises linearly for the first
  ``--warmup`` fraction of them, from ``lr / --lr-ratio`` to ``lr``, then
  falls linearly back to ``lr / --lr-ratio`` at the last step
  (:func:`slanted_triangular`);
- **discriminative learning rates** (``--discriminative-lr X``): the model's
  layers fall into groups, from the top (the head, which starts fresh)
  down to the embedding; each group learns at the rate of the group above
  divided by ``X`` (:func:`group_factors`);
- **gradual unfreezing** (``--unfreeze-every E``): the top group trains
  alone for ``E`` epochs, then the group below joins, and so on, until
  every group trains (:func:`unfrozen_groups`). A group not yet unfrozen
  learns at rate 0: its weights do not change.

All three are functions of the global training step (``epoch *
steps_per_epoch + batch``), so a resumed run follows them exactly where the
interrupted one stopped. :class:`Recipe` (a callback) sets them before each
batch; :class:`GroupedAdam` applies each group's factor to Adam's update.
"""

from __future__ import annotations

import keras
from keras import ops

from nlpseq.log import LOG


def slanted_triangular(step, total, warmup=0.1, ratio=32.0):
    """The learning-rate multiplier (of ``lr``) at training step ``step``
    (from 0) of ``total``: ``(1 + p (ratio - 1)) / ratio`` with ``p`` rising
    from 0 to 1 over the first ``cut = max(1, floor(total * warmup))`` steps
    and falling back to 0 at step ``total`` (Howard & Ruder 2018, eq. 3).

    Example:
        >>> [round(slanted_triangular(t, 10, 0.2, 2.0), 3) for t in (0, 2, 6, 10)]
        [0.5, 1.0, 0.75, 0.5]
    """
    cut = max(1, int(total * warmup))
    if step < cut:
        p = step / cut
    else:
        p = max(0.0, 1.0 - (step - cut) / max(1, total - cut))
    return (1.0 + p * (ratio - 1.0)) / ratio


def unfrozen_groups(step, groups, stage_steps):
    """How many layer groups (from the top) train at ``step``: one more
    every ``stage_steps`` steps, all of them when ``stage_steps`` is 0.

    Example:
        >>> [unfrozen_groups(t, 3, 5) for t in (0, 4, 5, 10, 99)]
        [1, 1, 2, 3, 3]
    """
    if stage_steps <= 0:
        return groups
    return min(groups, 1 + step // stage_steps)


def group_factors(step, groups, discriminative=1.0, stage_steps=0):
    """Each group's learning-rate factor at ``step``, top group first:
    ``discriminative ** -g`` for group ``g`` once unfrozen, else 0.

    Example:
        >>> group_factors(0, 3, 2.0, 10), group_factors(25, 3, 2.0, 10)
        ([1.0, 0.0, 0.0], [1.0, 0.5, 0.25])
    """
    open_ = unfrozen_groups(step, groups, stage_steps)
    return [discriminative ** -g if g < open_ else 0.0
            for g in range(groups)]


@keras.saving.register_keras_serializable(package="nlpseq")
class GroupedAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied, for each variable, by the
    factor of its layer group (:attr:`factors`, set by :class:`Recipe`).

    A group whose factor is 0 (frozen) has zero gradients, also in the
    global norm that ``global_clipnorm`` clips to.

    Args:
        groups: lists of variables, top group first; a variable in no group
            takes the top group's factor.
    """

    def __init__(self, *args, groups=None, **kwargs):
        super().__init__(*args, **kwargs)
        groups = list(groups or [[]])
        # (keys and indices only: the model's variables are not the
        # optimizer's, to save or to build)
        self.__dict__["_group_by_key"] = {
            self._var_key(variable): index
            for index, group in enumerate(groups) for variable in group}
        self.group_count = len(groups)
        self.factors = None

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.factors = self.add_variable(
            (self.group_count,), initializer="ones", name="group_factors")

    def _factor(self, variable):
        group = self._group_by_key.get(self._var_key(variable), 0)
        return self.factors[group]

    def apply(self, grads, trainable_variables=None):
        # a frozen group's gradients are zeros, so that they count for
        # nothing in the global norm --clip-norm clips to
        if trainable_variables is not None:
            if not self.built:
                self.build(trainable_variables)
            grads = [_scaled(g, ops.cast(self._factor(v) > 0, "float32"))
                     for g, v in zip(grads, trainable_variables)]
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        factor = ops.cast(self._factor(variable), "float32")
        super().update_step(gradient, variable,
                            ops.cast(learning_rate, "float32") * factor)


def _scaled(gradient, factor):
    """``gradient`` (dense or ``IndexedSlices``) times ``factor``."""
    if gradient is None:
        return None
    import tensorflow as tf

    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(
            gradient.values * tf.cast(factor, gradient.values.dtype),
            gradient.indices, gradient.dense_shape)
    return gradient * ops.cast(factor, gradient.dtype)


class Recipe(keras.callbacks.Callback):
    """Sets the learning rate (slanted triangular, or ``None``: left to
    the other callbacks) and each layer group's factor before every batch.

    Args:
        learning_rate: the top (peak) learning rate.
        steps_per_epoch: training batches per epoch.
        epochs: the run's epochs (the schedule spans all of them).
        slanted: ``None`` (the rate is not touched) or ``(warmup, ratio)``.
        groups: the number of layer groups (1: no groups).
        discriminative: the factor between a group and the one below.
        unfreeze_every: epochs between two unfreezings (0: none frozen).
    """

    def __init__(self, learning_rate, steps_per_epoch, epochs, slanted=None,
                 groups=1, discriminative=1.0, unfreeze_every=0.0):
        super().__init__()
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = int(steps_per_epoch)
        self.total = self.steps_per_epoch * int(epochs)
        self.slanted = slanted
        self.groups = int(groups)
        self.discriminative = float(discriminative)
        self.stage_steps = (max(1, round(unfreeze_every * steps_per_epoch))
                            if unfreeze_every else 0)
        self.epoch = 0
        self.stage = None

    def rate(self, step):
        """The learning rate at ``step``."""
        warmup, ratio = self.slanted
        return self.learning_rate * slanted_triangular(step, self.total,
                                                       warmup, ratio)

    def factors(self, step):
        return group_factors(step, self.groups, self.discriminative,
                             self.stage_steps)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = self.epoch * self.steps_per_epoch + batch
        optimizer = self.model.optimizer
        if self.slanted is not None:
            optimizer.learning_rate.assign(self.rate(step))
        if self.groups > 1:
            inner = getattr(optimizer, "inner_optimizer", optimizer)
            if inner.factors is None:  # (built at the first update)
                inner.build(self.model.trainable_variables)
            inner.factors.assign(self.factors(step))
            stage = unfrozen_groups(step, self.groups, self.stage_steps)
            if stage != self.stage and self.stage_steps:
                LOG.info("Step %d: %d of %d layer groups train", step,
                         stage, self.groups)
            self.stage = stage
