"""Errors as types: each names what was wrong, so logs and dead letters say why without a stack trace."""

from __future__ import annotations


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
