"""Test configuration: quiet TensorFlow, TensorFlow backend for Keras.

Both variables must be set before TensorFlow / Keras are first imported, which
is why they are set at import time of this conftest (pytest imports it before
any test module).
"""

import contextlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

# Make `import layer_helpers` work from the test modules whatever the rootdir.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() != "tensorflow":  # pragma: no cover
    raise RuntimeError(
        "nlpseq's tests need the TensorFlow backend of Keras, got "
        f"{keras.backend.backend()!r}; unset KERAS_BACKEND or the "
        "'backend' entry of ~/.keras/keras.json."
    )


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same seed (Python, NumPy, TensorFlow).

    (No ``keras.backend.clear_session()`` here: it costs a quarter of a second
    per test, and layer names are never asserted on.)
    """
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def interrupted_after_first_epoch(monkeypatch):
    """``with interrupted_after_first_epoch(): ...``: training inside stops
    right after its first epoch's checkpoint, as Ctrl-C would stop it."""
    from nlpseq import training

    original = training.RunState.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def interrupted():
        with monkeypatch.context() as patch:
            patch.setattr(training.RunState, "on_epoch_end", on_epoch_end)
            yield

    return interrupted


@pytest.fixture(params=["fused", "per_gate"])
def recurrent_products(request, monkeypatch):
    """Runs a test with both forms of the gated cells' recurrent products:
    one fused product per step, and one per gate (which the cells otherwise
    use only from ``PER_GATE_FROM_UNITS`` units on, beyond the tests'
    sizes)."""
    from nlpseq.layers.base import RecurrentCell

    if request.param == "per_gate":
        monkeypatch.setattr(RecurrentCell, "PER_GATE_FROM_UNITS", 1)
    return request.param


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory):
    """Tiny models of sentiment, ner, next-word and translation, exported
    once per session to ``<tmp>/serving-models/<app>/1`` (a
    :class:`server_helpers.ExportedModels`: ``.root``, ``.tasks``,
    ``.base_paths``); under pytest-xdist, once for all the workers, in the
    folder above their own temporary folders."""
    from server_helpers import export_models

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return export_models(root / "serving-models")


@pytest.fixture(scope="session")
def serving(exported_models, tmp_path_factory):
    """An ``nlpseq serve`` subprocess serving the four exported models under
    their app names, ready (a :class:`server_helpers.ServerProcess`:
    ``.rest_url``, ``.grpc_target``, ``.base_paths``, ``.stop()``)."""
    from server_helpers import start_server

    server = start_server(exported_models.base_paths,
                          log_dir=tmp_path_factory.mktemp("serve-log"))
    yield server
    server.stop()
