"""Exception types raised by omr_core: each carries a message written for a person."""

from __future__ import annotations


class OmrError(Exception):
    """Base class of every error omr_core raises on purpose; the message says what to do."""


class UnknownClassError(OmrError, KeyError):
    """A class name or id that is not in the DeepScoresV2 table."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataFormatError(OmrError, ValueError):
    """A data file whose content does not follow the expected format."""


class CriticalExclusionError(OmrError):
    """An exclusion plan that drops a critical class without an explicit override."""
