"""nlpseq: recurrent-network NLP on Keras 3 / TensorFlow.

The package root stays light (no TensorFlow import) so that the command line
answers ``--help`` and ``--version`` at once; import ``nlpseq.layers`` for the
recurrent layers.
"""

__version__ = "0.1.0"
