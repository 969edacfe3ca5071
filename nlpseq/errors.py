"""The project's error type: what the command line reports as one clean line."""


class NlpseqError(ValueError):
    """Bad input from a user: a file, an argument, a model folder.

    The command line prints ``Error: <message>`` and exits non-zero, without a
    traceback. It derives from ``ValueError`` so library callers can catch
    either.
    """
