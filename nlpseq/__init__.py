"""nlpseq: recurrent-network NLP on Keras 3 / TensorFlow.

The Python API::

    import nlpseq
    task = nlpseq.train("sentiment", epochs=2)     # or nlpseq.load(folder)
    task.predict(["a good film", "a bad film"])    # a list of records
    task.predict("one text")                       # one record

The package root stays light (no TensorFlow import) so that the command line
answers ``--help`` and ``--version`` at once; import ``nlpseq.layers`` for the
recurrent layers, ``nlpseq.tasks`` for the model families.
"""

import logging

__version__ = "0.2.0"

# Quiet unless the application configures logging (the command line does).
logging.getLogger("nlpseq").addHandler(logging.NullHandler())

from nlpseq.api import load, train  # noqa: E402

__all__ = ["__version__", "load", "train"]
