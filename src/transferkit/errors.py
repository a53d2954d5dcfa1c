"""User-facing errors: each message is one line that names the bad input and the fix.

The CLI prints these without a traceback and exits with status 2; anything else is a bug.
"""


class TransferkitError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class DataError(TransferkitError, ValueError):
    """The data set cannot be used as given (empty class, single class, unreadable path...)."""


class UnknownNameError(TransferkitError, KeyError):
    """A registry lookup for a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class BackboneUnavailableError(TransferkitError):
    """A backbone cannot be loaded here (offline, package missing, bad run directory)."""


class RunDirectoryError(TransferkitError):
    """A run directory is missing files or was written by an incompatible version."""


class MissingDependencyError(TransferkitError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped early by the user (Ctrl-C); the last finished epoch is checkpointed."""
