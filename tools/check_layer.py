"""Check a built layer ships exactly the pinned packages of layers/stocksync/requirements.txt, at those versions,
and nothing of what only people run.

    .venv/bin/python tools/check_layer.py .aws-sam/build/StockSyncLayer/python

Why: ``sam build`` resolves the layer's requirements itself, for the Lambda platform. A dependency left unpinned
there (or a new transitive one) would ship a version the tests never ran with; this makes the build fail instead.
And the layer is the runtime package alone: the simulator, the local AWS stack and the CLI live in devtools/
(``stocksync_dev``), and a layer that carries them (or a runtime module that imports them, or a test tool such as
moto) fails the build, since one stray import would otherwise make it a production cold start's business.
"""

from __future__ import annotations

import re
import sys
from email.parser import HeaderParser
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "layers" / "stocksync" / "requirements.txt"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """``{name: version}`` of every requirement; raises ValueError for a line that is not ``name[extras]==version``."""
    result = {}
    for number, raw in enumerate(requirements.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[A-Za-z0-9,._-]+\])?==([A-Za-z0-9.+!-]+)", line)
        if not match:
            raise ValueError(f"{requirements.name}:{number}: {line!r} is not pinned as name==version")
        result[canonical(match[1])] = match[3]
    return result


def shipped(layer: Path) -> dict[str, str]:
    """``{name: version}`` of every distribution installed in the layer folder (its .dist-info metadata)."""
    result = {}
    for metadata in layer.glob("*.dist-info/METADATA"):
        headers = HeaderParser().parsestr(metadata.read_text(errors="replace"))  # the headers only, not the body
        result[canonical(headers["Name"])] = headers["Version"].strip()
    return result


# Folders of the runtime package that must not exist any more (they moved to devtools/), and top-level packages
# that only people's tools use.
DEV_ONLY_FOLDERS = ("simulator", "local", "cli")
DEV_ONLY_PACKAGES = ("stocksync_dev", "moto", "pytest", "hypothesis", "samtranslator", "facebook_business")
_IMPORT = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


def dev_only_content(layer: Path) -> list[str]:
    """What in the layer belongs to people's tools: a dev-only folder or package, or a runtime module importing one."""
    problems = [
        f"stocksync/{name}/ ships in the layer" for name in DEV_ONLY_FOLDERS if (layer / "stocksync" / name).exists()
    ]
    problems += [f"{name} ships in the layer" for name in DEV_ONLY_PACKAGES if (layer / name).exists()]
    for module in sorted((layer / "stocksync").rglob("*.py")):
        imported = set(_IMPORT.findall(module.read_text(errors="replace")))
        problems += [
            f"{module.relative_to(layer)} imports {name}" for name in sorted(imported & set(DEV_ONLY_PACKAGES))
        ]
    return problems


def main() -> int:
    layer = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build/StockSyncLayer/python")
    expected, actual = pinned(), shipped(layer)
    problems = dev_only_content(layer)
    problems += [
        f"{name} {version} ships but is not pinned" for name, version in actual.items() if name not in expected
    ]
    problems += [
        f"{name}=={version} is pinned but does not ship" for name, version in expected.items() if name not in actual
    ]
    problems += [
        f"{name} ships {actual[name]}, pinned {version}"
        for name, version in expected.items()
        if name in actual and actual[name] != version
    ]
    if problems:
        print(f"{layer}: the layer does not match {REQUIREMENTS.name}:", *sorted(problems), sep="\n  ", file=sys.stderr)
        return 1
    print(f"{layer}: {len(actual)} packages, each at its pinned version")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
