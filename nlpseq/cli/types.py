"""Click parameter types of nlpseq's commands."""

from __future__ import annotations

import math

import click


class FiniteFloatRange(click.FloatRange):
    """A float range that refuses NaN (which no comparison bounds) and
    infinities."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number
