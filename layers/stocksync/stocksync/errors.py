"""Errors as types: each names what was wrong, so logs and dead letters say why without a stack trace."""

from __future__ import annotations

from pydantic import ValidationError


class StockSyncError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigurationError(StockSyncError):
    """A setting (environment variable) is missing or invalid; raised at cold start."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"setting {setting}: {problem}")
        self.setting = setting
        self.problem = problem


class InvalidInputError(StockSyncError):
    """An input record (event, message, API response) failed validation; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class SourceRemovedError(StockSyncError):
    """The order source answered that its endpoint no longer exists: stop polling it (and alarm once)."""


class SourceCursorRejectedError(StockSyncError):
    """The order source no longer accepts the saved page cursor of a listing cut short (cursors expire): the
    listing restarts from its first page; the ledger makes the re-read pages harmless."""


class SourceThrottledError(StockSyncError):
    """The order source asked us to slow down; the poll stops and resumes from its saved cursor later."""

    def __init__(self, message: str, *, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def describe_validation_error(error: ValidationError) -> str:
    """'field.path: message; ...' so a log line or dead letter says which field was wrong, without a stack trace."""
    parts = []
    for issue in error.errors(include_url=False):
        location = ".".join(str(part) for part in issue["loc"]) or "body"
        parts.append(f"{location}: {issue['msg']}")
    return "; ".join(parts)
