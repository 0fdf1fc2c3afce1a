"""Check template.yaml the way CloudFormation will see it: translated offline, then linted resource by resource.

Usage: check_template.py [TEMPLATE]   (default: the repository's template.yaml). Exit status 1 when a problem is
found, each printed on its own line. Run by `make template-check` after `sam validate --lint` and `cfn-lint`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stocksync_dev.local.checks import template_problems
from stocksync_dev.local.template import TEMPLATE_PATH


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0]) if argv else TEMPLATE_PATH
    problems = template_problems(path)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{path}: translated template passes cfn-lint")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
