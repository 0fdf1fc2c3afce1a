"""Print a CloudFormation AllowedPattern that accepts exactly the whole numbers from LO to HI (no sign, no leading
zeros, no fraction).

    .venv/bin/python tools/whole_number_pattern.py 60 86400

Why: a ``Type: Number`` parameter lets CloudFormation accept 1.5, which a setting that must be an integer refuses
only at the functions' cold start. A String parameter with this pattern refuses it at deploy instead. The template
check tests/integration/test_template_resources.py proves each such pattern against the range its
ConstraintDescription states ("... from LO to HI").
"""

from __future__ import annotations

import argparse


def _same_length(low: str, high: str) -> list[str]:
    """Alternatives matching every number from ``low`` to ``high``, both written with the same number of digits."""
    if not low:
        return [""]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _same_length(low[1:], high[1:])]
    tail = len(low) - 1
    zeros, nines = "0" * tail, "9" * tail
    alternatives = []
    first = int(low[0])
    if low[1:] != zeros:
        alternatives += [low[0] + rest for rest in _same_length(low[1:], nines)]
        first += 1
    last = int(high[0]) if high[1:] == nines else int(high[0]) - 1
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        alternatives.append(digit + ("[0-9]" * tail if tail < 2 else f"[0-9]{{{tail}}}"))
    if high[1:] != nines:
        alternatives += [high[0] + rest for rest in _same_length(zeros, high[1:])]
    return alternatives


def whole_number_pattern(low: int, high: int) -> str:
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got {low} and {high}")
    alternatives = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        start = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        end = min(high, 10**digits - 1)
        alternatives += _same_length(str(start), str(end))
    return "^(" + "|".join(alternatives) + ")$"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("low", type=int)
    parser.add_argument("high", type=int)
    args = parser.parse_args()
    print(whole_number_pattern(args.low, args.high))


if __name__ == "__main__":
    main()
