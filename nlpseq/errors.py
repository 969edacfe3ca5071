"""The project's error types: what the command line reports as one clean
line."""


class NlpseqError(ValueError):
    """Bad input from a user: a file, an argument, a model folder.

    The command line prints ``Error: <message>`` and exits non-zero, without a
    traceback. It derives from ``ValueError`` so library callers can catch
    either.
    """


class NlpseqTypeError(NlpseqError, TypeError):
    """An argument of the Python API of the wrong type (a number where a
    text is expected...): an :class:`NlpseqError` that is also the
    ``TypeError`` Python code expects of such a call."""
