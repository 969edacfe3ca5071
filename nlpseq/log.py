"""nlpseq's logger: progress and warnings go to ``logging.getLogger("nlpseq")``.

Quiet in a library unless the caller configures logging (the package adds a
``NullHandler``); the command line prints it. Every module logs through
:data:`LOG` (or a child logger, ``nlpseq.server``), so nothing below the
command line prints by itself. This module imports nothing of nlpseq's: any
layer may use it.
"""

import logging

#: The ``nlpseq`` logger.
LOG = logging.getLogger("nlpseq")

__all__ = ["LOG"]
