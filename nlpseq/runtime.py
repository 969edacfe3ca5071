"""Start TensorFlow for the command line: quietly, with nlpseq's settings.

TensorFlow's C++ runtime writes start-up notices straight to the stderr file
descriptor ("Could not find cuda drivers...", oneDNN and CPU-feature notes),
before Python's logging and ``TF_CPP_MIN_LOG_LEVEL`` can act. The command
line and the Python API (:func:`nlpseq.load`, :func:`nlpseq.train`) import
TensorFlow through :func:`import_tensorflow`, which captures that descriptor
during start-up and passes on every line that is not one of these known
notices.
"""

import os
import re
import sys
import tempfile

#: TensorFlow start-up settings nlpseq's processes use unless the environment
#: sets them: quiet C++ logging, and the best-fit-with-coalescing allocator
#: for host memory. TensorFlow's default host allocator hands each large
#: tensor (a sequence's input projection, for one) fresh pages from the
#: operating system and pays a page fault per 4 KiB on first touch; the BFC
#: allocator keeps freed memory for reuse (docs/benchmarks.md measures the
#: gain).
ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_CPU_ALLOCATOR_USE_BFC": "true",
}


def configure_environment():
    """Apply :data:`ENVIRONMENT` where the environment does not already say
    otherwise. It must run before TensorFlow executes its first operation
    (the host allocator is chosen then); importing TensorFlow is fine."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)

NOISE = re.compile(
    r"All log messages before absl::InitializeLog|cudart_stub|cuInit|"
    r"cuda_platform|Could not find cuda drivers|oneDNN custom operations|"
    r"rebuild TensorFlow with the appropriate compiler flags|"
    r"cpu_feature_guard|This TensorFlow binary is optimized|"
    r"TF_ENABLE_ONEDNN_OPTS|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|absl::InitializeLog|"
    r"oneDNN supports DT_"
)


def _first_use(tf):
    """Run what makes TensorFlow print its once-per-process notices, while
    they are captured: oneDNN's "supports DT_BOOL only on platforms with
    AVX-512" line comes at the first transpose of a boolean tensor in a
    graph, which every masked recurrent layer runs."""
    # (a 1 x 1 transpose is optimized away before it reaches oneDNN)
    tf.function(lambda m: tf.transpose(m))(tf.constant([[True, False]]))


def import_tensorflow(setup=None):
    """Import TensorFlow (and look up its devices) without start-up noise.

    ``setup(tf)``, if given, runs right after the import, before TensorFlow
    starts its devices (logical devices and collective operations must be
    configured then); its output is filtered like the rest.
    """
    configure_environment()
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if setup is not None:
            setup(tf)
        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            if setup is not None:
                setup(tf)
            tf.config.list_physical_devices()
            _first_use(tf)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not NOISE.search(line):
                    print(line, file=sys.stderr)
    return tf
