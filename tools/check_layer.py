"""Check a built layer ships exactly the pinned packages of layers/stocksync/requirements.txt, at those versions.

    .venv/bin/python tools/check_layer.py .aws-sam/build/StockSyncLayer/python

Why: ``sam build`` resolves the layer's requirements itself, for the Lambda platform. A dependency left unpinned
there (or a new transitive one) would ship a version the tests never ran with; this makes the build fail instead.
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


def main() -> int:
    layer = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build/StockSyncLayer/python")
    expected, actual = pinned(), shipped(layer)
    problems = [f"{name} {version} ships but is not pinned" for name, version in actual.items() if name not in expected]
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
