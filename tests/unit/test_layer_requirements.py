"""The layer ships the versions the tests ran with: its requirements are pinned, equal to constraints.txt, and the
built-layer check (tools/check_layer.py, run by `make build`) refuses a layer that differs from them."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def check_layer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layer", ROOT / "tools" / "check_layer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def constraints() -> dict[str, str]:
    canonical = check_layer().canonical
    result = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            result[canonical(name)] = version.strip()
    return result


def test_every_layer_requirement_is_pinned_to_the_version_the_tests_ran_with() -> None:
    pins = check_layer().pinned()
    assert {"aws-lambda-powertools", "pydantic", "requests", "boto3", "botocore"} <= pins.keys()
    tested = constraints()
    assert {name: version for name, version in pins.items() if tested.get(name) != version} == {}


def test_an_unpinned_requirement_is_refused(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pydantic==2.13.5\nrequests>=2\n")
    with pytest.raises(ValueError, match=re.escape("requirements.txt:2: 'requests>=2' is not pinned")):
        check_layer().pinned(requirements)


def fake_layer(folder: Path, packages: dict[str, str]) -> Path:
    for name, version in packages.items():
        info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        # The long description after the headers may quote other Name:/Version: lines; they do not count.
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nExample:\nName: other\nVersion: 0.0.1\n"
        )
    return folder


def run_check(layer: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "tools" / "check_layer.py"), str(layer)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_a_layer_with_exactly_the_pins_passes(tmp_path: Path) -> None:
    assert run_check(fake_layer(tmp_path, check_layer().pinned())).returncode == 0


def test_a_layer_with_another_version_a_missing_or_an_extra_package_fails_naming_each(tmp_path: Path) -> None:
    packages = dict(check_layer().pinned())
    packages["botocore"] = "1.99.0"
    del packages["boto3"]
    packages["leftpad"] = "1.0"
    result = run_check(fake_layer(tmp_path, packages))
    assert result.returncode == 1
    assert "botocore ships 1.99.0, pinned" in result.stderr
    assert "boto3==" in result.stderr and "is pinned but does not ship" in result.stderr
    assert "leftpad 1.0 ships but is not pinned" in result.stderr


def test_a_layer_carrying_people_s_tools_fails_naming_what_and_the_source_package_carries_none(tmp_path: Path) -> None:
    layer = fake_layer(tmp_path, check_layer().pinned())
    (layer / "stocksync" / "simulator").mkdir(parents=True)
    (layer / "stocksync" / "__init__.py").write_text("")
    (layer / "stocksync" / "wiring.py").write_text("import json\nfrom stocksync_dev.local import aws\n")
    (layer / "moto").mkdir()
    result = run_check(layer)
    assert result.returncode == 1
    assert "stocksync/simulator/ ships in the layer" in result.stderr
    assert "moto ships in the layer" in result.stderr
    assert "stocksync/wiring.py imports stocksync_dev" in result.stderr
    # What sam build copies into the layer, layers/stocksync, holds the runtime package alone.
    assert check_layer().dev_only_content(ROOT / "layers" / "stocksync") == []
