"""One exception family, so callers catch `AiopsError` and users see what to fix.

Every message names the file, object or setting at fault; `hint` says what to do.
The CLI prints both on one line and exits 2 (no traceback unless --debug).
"""

from __future__ import annotations


class AiopsError(Exception):
    """Base of every error the workbench raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SourceError(AiopsError):
    """A cluster source could not be opened (bad --source, missing directory...)."""


class SnapshotError(SourceError):
    """A snapshot directory or file is unusable as a whole."""


class LiveClusterError(SourceError):
    """The Kubernetes API is unreachable, refused us, or the kubeconfig is wrong."""


class ParameterError(AiopsError):
    """A parameter given by the user is invalid (a bad window, an unknown report)."""


class ReportError(AiopsError):
    """A report notebook failed to execute or render."""

    exit_code = 1


class HistoryError(AiopsError):
    """The audit trail (PHR store) cannot be read or written: not in a git
    repository, git locked, records changed outside the store."""


class UncommittedRecordError(HistoryError):
    """A record was written to the store but its git commit failed.

    The file is complete and chained, so nothing is lost: the next record's
    commit includes it. `record` is the written record.
    """

    def __init__(self, message: str, hint: str | None = None, record: object = None) -> None:
        super().__init__(message, hint)
        self.record = record
