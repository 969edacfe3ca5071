"""Start TensorFlow quietly for the command line.

TensorFlow's C++ runtime writes start-up notices straight to the stderr file
descriptor ("Could not find cuda drivers...", oneDNN and CPU-feature notes),
before Python's logging and ``TF_CPP_MIN_LOG_LEVEL`` can act. The command
line imports TensorFlow through :func:`import_tensorflow`, which captures
that descriptor during start-up and passes on every line that is not one of
these known notices.
"""

import os
import re
import sys
import tempfile

NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub|cuInit|"
    r"cuda_platform|Could not find cuda drivers|oneDNN custom operations|"
    r"rebuild TensorFlow with the appropriate compiler flags|"
    r"cpu_feature_guard|This TensorFlow binary is optimized|"
    r"TF_ENABLE_ONEDNN_OPTS|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|absl::InitializeLog"
)


def import_tensorflow():
    """Import TensorFlow (and look up its devices) without start-up noise."""
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not NOISE.search(line):
                    print(line, file=sys.stderr)
    return tf
