"""Every app trains under ``--jit-compile`` (XLA, over bucketed batches)
with mixed_float16 (loss scaling), exports and serves like a float32 model
(see ``precision_helpers.py``)."""

import pytest
from precision_helpers import (
    app_params,
    check_the_float32_dtypes,
    check_the_global_policy,
    train_and_serve,
)


@pytest.fixture(scope="module", params=app_params("float16+xla"))
def trained(request, tmp_path_factory):
    return train_and_serve(request.param, "float16+xla", tmp_path_factory)


def test_training_leaves_the_global_policy(trained):
    check_the_global_policy(trained)


def test_export_has_the_float32_dtypes(trained):
    check_the_float32_dtypes(trained)
