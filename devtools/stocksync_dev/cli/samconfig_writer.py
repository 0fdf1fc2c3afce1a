"""``stocksync tune --samconfig PATH --config-env NAME``: the recommendation into a samconfig.toml environment.

``sam deploy --config-env NAME`` reads ``parameter_overrides`` from ``[NAME.deploy.parameters]``. This module
changes that one key and nothing else of the file: the Python standard library reads TOML (tomllib) but does not
write it, and a TOML writer dependency would re-serialise the whole file (losing the merchant's comments and
layout) to change one line. So the edit is textual and checked: the new text must parse, and parse to exactly the
old document with only that key changed, or nothing is written.

The recommendation is merged into the overrides the environment already has (its ``CatalogId``, secrets' names and
the rest stay), in the form ``sam deploy --guided`` writes: one string of ``Key="value"`` pairs. Existing overrides
are read in SAM's two string forms (``Key=value``, quoted or not, and ``ParameterKey=K,ParameterValue=V``), as one
string or a list of them; any other form (a table, a ``file://`` reference) is refused rather than rewritten.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEY = "parameter_overrides"
ENV_NAME = re.compile(r"[A-Za-z0-9_-]+")
_VALUE = r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|[^\s\"']+"
_PAIR = re.compile(
    rf"(?:^|\s)(?:ParameterKey=(?P<long_key>[A-Za-z0-9]+),ParameterValue=(?P<long_value>{_VALUE})"
    rf"|(?P<key>[A-Za-z0-9]+)=(?P<value>{_VALUE}))(?=\s|$)"
)
_HEADER = re.compile(r"^\s*\[\s*(?P<name>[^\[\]]+?)\s*\]\s*(?:#.*)?$")


class SamconfigError(ValueError):
    """The file or its existing overrides cannot be edited safely; nothing was written."""


def parse_overrides(value: Any, where: str) -> dict[str, str]:
    """SAM's string forms of ``parameter_overrides`` (one string, or a list of strings) as an ordered dict."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise SamconfigError(f"{where}: {KEY} is not a string or a list of strings; edit it by hand")
    found: dict[str, str] = {}
    for text in texts:
        if text.strip().startswith("file://"):
            raise SamconfigError(f"{where}: {KEY} refers to a file ({text.strip()}); edit that file by hand")
        consumed = _PAIR.sub("", text)
        if consumed.strip():
            raise SamconfigError(f"{where}: cannot read {KEY} {text!r} (near {consumed.strip()[:40]!r})")
        for match in _PAIR.finditer(text):
            key = match["long_key"] or match["key"]
            raw = match["long_value"] or match["value"]
            found[key] = raw[1:-1] if raw[0] in "\"'" and len(raw) >= 2 and raw[-1] == raw[0] else raw
    return found


def overrides_string(parameters: Mapping[str, str]) -> str:
    """``Key="value" ...``: what ``sam deploy --guided`` writes (every value quoted, so spaces need no care)."""
    for name, value in parameters.items():
        if not re.fullmatch(r"[A-Za-z0-9]+", name) or '"' in value or "\\" in value or "\n" in value:
            raise SamconfigError(f"{name}={value!r}: cannot be written as a parameter override")
    return " ".join(f'{name}="{value}"' for name, value in parameters.items())


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table_of(document: dict[str, Any], env: str) -> dict[str, Any] | None:
    table = document.get(env, {}).get("deploy", {}).get("parameters")
    return table if isinstance(table, dict) else None


def updated_text(text: str, env: str, recommended: Mapping[str, str], where: str = "samconfig") -> str:
    """The file's text with ``[env.deploy.parameters].parameter_overrides`` merged with ``recommended``."""
    if not ENV_NAME.fullmatch(env):
        raise SamconfigError(f"--config-env {env!r}: letters, digits, _ and - only")
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SamconfigError(f"{where}: not valid TOML ({error})") from None
    table = _table_of(before, env)
    existing = parse_overrides(table[KEY], where) if table and KEY in table else {}
    line = f"{KEY} = {_toml_string(overrides_string({**existing, **recommended}))}\n"
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    header = _find_header(lines, f"{env}.deploy.parameters")
    if header is None:
        prefix = "".join(lines) + "\n" if lines else "version = 0.1\n\n"  # a new file says SAM's format version
        new_text = prefix + f"[{env}.deploy.parameters]\n" + line
    else:
        end = next((at for at in range(header + 1, len(lines)) if _HEADER.match(lines[at])), len(lines))
        span = _value_span(lines, header + 1, end, before, env) if table and KEY in table else None
        if span is None:
            new_lines = [*lines[: header + 1], line, *lines[header + 1 :]]
        else:
            new_lines = [*lines[: span[0]], line, *lines[span[1] :]]
        new_text = "".join(new_lines)
    _check(new_text, before, env, {**existing, **recommended}, where)
    return new_text


def _find_header(lines: list[str], name: str) -> int | None:
    wanted = [part.strip() for part in name.split(".")]
    for at, text in enumerate(lines):
        match = _HEADER.match(text)
        if match and [part.strip().strip('"') for part in match["name"].split(".")] == wanted:
            return at
    return None


def _value_span(lines: list[str], start: int, end: int, before: dict[str, Any], env: str) -> tuple[int, int] | None:
    """The lines [first, last) holding the key's whole value (a multi-line array or string included): the
    shortest span from the key's line whose removal leaves exactly the document without the key."""
    key_line = re.compile(rf"^\s*{KEY}\s*=")
    first = next((at for at in range(start, end) if key_line.match(lines[at])), None)
    if first is None:
        return None
    expected = {**before}
    expected[env] = {
        **before[env],
        "deploy": {**before[env]["deploy"], "parameters": dict(_table_of(before, env) or {})},
    }
    expected[env]["deploy"]["parameters"].pop(KEY)
    for last in range(first + 1, end + 1):
        try:
            if tomllib.loads("".join([*lines[:first], *lines[last:]])) == expected:
                return first, last
        except tomllib.TOMLDecodeError:
            continue
    return None


def _check(new_text: str, before: dict[str, Any], env: str, overrides: Mapping[str, str], where: str) -> None:
    try:
        after = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as error:
        raise SamconfigError(f"{where}: editing it would break it ({error}); set {KEY} by hand") from None
    table = _table_of(after, env)
    if table is None or parse_overrides(table.get(KEY, ""), where) != dict(overrides):
        raise SamconfigError(f"{where}: could not place {KEY} under [{env}.deploy.parameters]; set it by hand")
    rest_after = {**table}
    rest_after.pop(KEY)
    rest_before = dict(_table_of(before, env) or {})
    rest_before.pop(KEY, None)
    others_after = {name: value for name, value in after.items() if name != env}
    others_before = {name: value for name, value in before.items() if name not in (env, "version")}
    others_after.pop("version", None)
    env_after = {name: value for name, value in after[env].items() if name != "deploy"}
    env_before = {name: value for name, value in before.get(env, {}).items() if name != "deploy"}
    deploy_after = {name: value for name, value in after[env]["deploy"].items() if name != "parameters"}
    deploy_before = {
        name: value for name, value in before.get(env, {}).get("deploy", {}).items() if name != "parameters"
    }
    if (rest_after, others_after, env_after, deploy_after) != (rest_before, others_before, env_before, deploy_before):
        raise SamconfigError(f"{where}: editing it would change more than {KEY}; set it by hand")


def write_parameter_overrides(path: Path, env: str, recommended: Mapping[str, str]) -> dict[str, str]:
    """Merge ``recommended`` into the environment's overrides in ``path`` (created when missing), atomically;
    the overrides written. SamconfigError, and the file untouched, when that cannot be done safely."""
    try:
        text = path.read_text() if path.exists() else ""
    except (OSError, UnicodeDecodeError) as error:
        raise SamconfigError(f"--samconfig {path}: cannot be read ({error})") from None
    if not path.parent.is_dir():
        raise SamconfigError(f"--samconfig {path}: no folder {path.parent}")
    new_text = updated_text(text, env, recommended, where=f"--samconfig {path}")
    descriptor, temporary = tempfile.mkstemp(prefix=".samconfig-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(new_text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise SamconfigError(f"--samconfig {path}: cannot be written ({error})") from None
    table = _table_of(tomllib.loads(new_text), env) or {}
    return parse_overrides(table[KEY], str(path))


__all__ = ["SamconfigError", "overrides_string", "parse_overrides", "updated_text", "write_parameter_overrides"]
