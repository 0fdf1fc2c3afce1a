"""The settings of a command run from a shell, without a stack: every problem named at once, --profile/--region."""

from __future__ import annotations

import argparse

import pytest

from stocksync.models.settings import Settings
from stocksync_dev.cli.stack_settings import SettingsError, resolve_settings, settings_from


def no_stack(**more: str | None) -> argparse.Namespace:
    return argparse.Namespace(**{"stack_name": None, "profile": None, "region": None, **more})


def test_every_missing_and_invalid_variable_is_listed_not_only_the_first() -> None:
    environment = {"STOCKSYNC_CATALOG_ID": "my-shop", "STOCKSYNC_GRAPH_BASE_URL": "http://graph.facebook.com"}
    problems = dict(Settings.problems(environment))
    assert "pattern" in problems["STOCKSYNC_CATALOG_ID"]
    assert "http:// only to 127.0.0.1" in problems["STOCKSYNC_GRAPH_BASE_URL"]
    assert problems["SKU_TABLE"] == problems["EVENT_BUS_NAME"] == "Field required"
    with pytest.raises(SettingsError) as raised:
        settings_from(environment)
    lines = str(raised.value).splitlines()
    assert lines[0].startswith(f"{len(problems)} setting(s) missing or invalid in the environment")
    assert lines[1:] == [f"  {name}: {problem}" for name, problem in Settings.problems(environment)]


def test_profile_and_region_replace_the_environments_keys_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    environment = resolve_settings(no_stack(profile="shop-prod", region="eu-west-1"))
    assert environment["AWS_PROFILE"] == "shop-prod"
    assert "AWS_ACCESS_KEY_ID" not in environment and "AWS_SECRET_ACCESS_KEY" not in environment
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert resolve_settings(no_stack())["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"  # untouched without --profile
