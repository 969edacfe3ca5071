"""What a task learns from its training data besides the weights:
:class:`Preprocessor` (vocabularies, class names, tags), one JSON file in
the model folder (:data:`~nlpseq.folder.PREPROCESSOR`)."""

from __future__ import annotations

import json
from pathlib import Path

from nlpseq.errors import NlpseqError
from nlpseq.folder import write_json_atomic


class Preprocessor:
    """What a task learns from its training data besides the weights
    (vocabularies, class names, tags), saved in the model folder as one
    JSON file, :data:`~nlpseq.folder.PREPROCESSOR`.

    A family subclass implements :meth:`fit`, :meth:`get_config` (a
    JSON-serialisable dict) and :meth:`from_config`.
    """

    def __init__(self, config):
        #: The task's effective configuration.
        self.config = config

    @classmethod
    def fit(cls, data, config):
        """Learn from the training data ``data``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, state, config):
        raise NotImplementedError

    @staticmethod
    def require(entries, what):
        """``entries`` as a list, when it holds something; for
        :meth:`from_config`: an empty vocabulary is a damaged file.

        Raises:
            ValueError: ``empty <what>`` (:meth:`load` reports the file as
                corrupted).
        """
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"empty {what}")
        return entries

    def save(self, path):
        write_json_atomic(path, {"class": type(self).__name__,
                                 "state": self.get_config()})

    @classmethod
    def load(cls, path, config, data=None):
        """The preprocessor saved in ``path`` (or read from there already:
        ``data``, its bytes).

        Raises:
            NlpseqError: missing or damaged file.
        """
        try:
            saved = json.loads(Path(path).read_text(encoding="utf-8")
                               if data is None else data.decode("utf-8"))
            return cls.from_config(saved["state"], config)
        except NlpseqError as error:
            raise NlpseqError(f"{path}: corrupted ({error})") from None
        except FileNotFoundError:
            raise NlpseqError(f"{Path(path).parent}: corrupted (missing "
                              f"{Path(path).name})") from None
        except Exception as error:  # noqa: BLE001 (any damage to the file)
            raise NlpseqError(f"{path}: corrupted ({type(error).__name__}: "
                              f"{error})") from None


__all__ = ["Preprocessor"]
