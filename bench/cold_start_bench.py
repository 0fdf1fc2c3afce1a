"""Benchmark: the cold start of every function, i.e. importing its app.py in a fresh interpreter, beside boto3's.

    .venv/bin/python bench/cold_start_bench.py            # 5 runs of each (the default)
    .venv/bin/python bench/cold_start_bench.py --quick    # 3 runs of each (what `make test` runs)
    .venv/bin/python bench/cold_start_bench.py --json

Each run is a child interpreter that does only the import and reports its CPU time and wall time around the import
(interpreter start-up excluded), its peak memory (VmHWM) and how many modules it loaded. The figure compared is
the CPU time: the import is CPU-bound, and on a shared machine the wall time also counts the time the child waited
for a core. The baseline, a child that runs ``import boto3`` alone, is measured in the same run, interleaved with
the functions round by round, so a machine that gets busier or quieter moves both sides. Reported: each function's
median, its ratio to boto3's median, its peak memory, and the packages its import spends most time in (from an
untimed run under ``python -X importtime``: self time summed per top-level package). A second reference, "floor",
imports what every function needs before any code of its own: boto3, the settings (pydantic) and
Logger/Metrics/Tracer (with tracing on, the X-Ray SDK and its patches).

Target (issue 12): every function's import at most 1.6 times boto3's. A full run exits non-zero when one misses it;
``--quick`` (timings on a loaded CI box are noisy) only fails when a function cannot be imported at all, or tries
the network while importing.

The children see what a deployed function sees. Packages: the standard library and a folder laid out like the
layer (stocksync and what layers/stocksync/requirements.txt pins, linked from the venv), run with ``-S``: the
venv's dev packages would change what gets imported (botocore picks up awscrt and pyOpenSSL when present).
Environment: template.yaml's Globals.Function variables resolved offline (parameter defaults, fake resource names)
and what Lambda sets (LAMBDA_TASK_ROOT, so Powertools Tracer is on, as under ``Tracing: Active``; region;
credentials). Nothing listens at AWS_ENDPOINT_URL: a cold start must not call AWS, and one that tries fails (or,
if it catches the error, shows up as "network at import": the untimed run records every socket connect and DNS
lookup through an audit hook). Byte-code caches live in a temporary PYTHONPYCACHEPREFIX written by a first untimed
import, so every timed import reads compiled code, boto3's and the project's alike.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import finish  # noqa: E402

TARGET_RATIO = 1.6  # issue 12: every handler's import <= 1.6x boto3's
BASELINE = "boto3"
# What every function imports before any code of its own: boto3, the settings validated at cold start (pydantic) and
# Logger/Metrics/Tracer (with tracing on, the X-Ray SDK and its patches). Shown for the headroom it leaves.
FLOOR = "floor"
REGION = "us-east-1"
ACCOUNT = "123456789012"
# Parameters the template leaves without a default (the local stack's values, stocksync_dev/local/aws.py).
PARAMETERS = {"CatalogId": "1001", "CommerceMerchantSettingsId": "2001"}
# Never loaded by a function's cold start: people's tools (the stocksync_dev package, which the layer never
# carries), and what only X-Ray's patch_all would load (stocksync/observability.py patches what the functions use).
UNWANTED = ("stocksync_dev", "sqlite3")
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, a connect is refused at once

# The child: import the target once; report CPU and wall time, peak memory, modules loaded, network attempts and
# unwanted modules.
CHILD = r"""
import json, sys, time
target, path, watch = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
UNWANTED = tuple(sys.argv[4].split(","))
network = []
if watch:
    def _audit(event, args):
        if event in ("socket.connect", "socket.getaddrinfo"):
            network.append(f"{event} {args[1] if event == 'socket.connect' else args[0]}")
    sys.addaudithook(_audit)
started, cpu_started = time.perf_counter(), time.process_time()
if target == "boto3":
    import boto3
elif target == "floor":
    import boto3
    from stocksync.models.settings import get_settings
    get_settings()
    import stocksync.observability
else:
    import importlib.util
    sys.path.insert(0, path.rsplit("/", 1)[0])  # Lambda puts the function's folder first (LAMBDA_TASK_ROOT)
    spec = importlib.util.spec_from_file_location("app", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
peak = 0.0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
unwanted = sorted(name for name in sys.modules if name.startswith(UNWANTED))
report = {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak, "modules": len(sys.modules)}
print(json.dumps({**report, "network": network, "unwanted": unwanted}))
"""


def _resource_value(logical_id: str, resource_type: str, attribute: str | None = None) -> str:
    """What a deployed stack hands a function for ``!Ref`` / ``!GetAtt`` of a resource: names and URLs only."""
    name = f"stocksync-{logical_id}"
    if attribute == "Arn":
        return f"arn:aws:{resource_type.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{name}"
    if resource_type == "AWS::SQS::Queue" and attribute is None:
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return name


def function_environment(template: dict[str, Any], own: dict[str, Any] | None = None) -> dict[str, str]:
    """Globals.Function's variables and the function's ``own``, as a deploy with default parameters resolves
    them, offline."""
    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    parameters.update(PARAMETERS, **{"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": "stocksync"})
    resources = {name: spec["Type"] for name, spec in template["Resources"].items()}

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            return parameters[ref] if ref in parameters else _resource_value(ref, resources[ref])
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return _resource_value(logical_id, resources[logical_id], attribute)
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name, parameter in parameters.items():
                text = text.replace("${" + name + "}", parameter)
            if "${" in text:
                raise ValueError(f"unresolved reference in {text!r}")
            return text
        if isinstance(value, dict):
            raise ValueError(f"cannot resolve {value!r} offline")
        return str(value).lower() if isinstance(value, bool) else str(value)

    variables = {**template["Globals"]["Function"]["Environment"]["Variables"], **(own or {})}
    return {name: resolve(value) for name, value in variables.items()}


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Folder name -> the function's resource properties, for every function under functions/."""
    found = {}
    for spec in template["Resources"].values():
        if spec["Type"] == "AWS::Serverless::Function":
            folder = Path(str(spec["Properties"]["CodeUri"]).rstrip("/")).name
            found[folder] = spec["Properties"]
    on_disk = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    for folder in sorted(on_disk - found.keys()):
        found[folder] = {}  # a function folder the template does not deploy is still measured
    return dict(sorted(found.items()))


def child_environment(
    template: dict[str, Any], function: str, properties: dict[str, Any], scratch: Path
) -> dict[str, str]:
    own = (properties.get("Environment") or {}).get("Variables") or {}
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "STOCKSYNC_"))
    }
    environment.pop("PYTHONDONTWRITEBYTECODE", None)  # the untimed first import writes the caches
    environment.update(function_environment(template, own))
    environment.update(
        {
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
            "AWS_LAMBDA_FUNCTION_NAME": f"stocksync-{function}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_ENDPOINT_URL": UNREACHABLE,
            "PYTHONPATH": str(scratch / "python"),
            "PYTHONPYCACHEPREFIX": str(scratch / "pycache"),
        }
    )
    return environment


def build_layer(folder: Path) -> Path:
    """A folder laid out like the layer's ``python/``: stocksync and the distributions its requirements.txt pins
    (symbolic links into the venv, with their metadata). The children run with ``-S`` and only this on
    PYTHONPATH, so they see the standard library and the layer, as a function does; the venv's other packages
    (moto's cryptography or awscrt among them) would change what botocore imports and what pydantic scans."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stocksync").symlink_to(ROOT / "layers" / "stocksync" / "stocksync", target_is_directory=True)
    for line in (ROOT / "layers" / "stocksync" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        requirement = line.split("#")[0].strip()
        if not requirement:
            continue
        distribution = importlib.metadata.distribution(re.split(r"[\[=<>~; ]", requirement)[0])
        site = Path(str(distribution.locate_file("")))
        for top in {file.parts[0] for file in distribution.files or []}:
            if top in ("..", "__pycache__") or top.endswith(".pth") or (folder / top).exists():
                continue
            (folder / top).symlink_to(site / top)
    return folder


def run_child(target: str, environment: dict[str, str], *, watch: bool = False) -> dict[str, Any]:
    """One fresh interpreter importing ``target``; with ``watch``, under -X importtime and the network audit hook."""
    path = "" if target in (BASELINE, FLOOR) else str(ROOT / "functions" / target / "app.py")
    importtime = ["-X", "importtime"] if watch else []
    command = [sys.executable, "-S", *importtime, "-c", CHILD, target, path, str(int(watch)), ",".join(UNWANTED)]
    scratch = Path(environment["PYTHONPATH"]).parent  # the working folder: nothing importable by accident
    done = subprocess.run(command, check=False, env=environment, capture_output=True, text=True, cwd=scratch)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {done.returncode}: {last[0]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if watch:
        result["packages_ms"] = package_times(done.stderr)
    return result


def package_times(importtime: str) -> dict[str, float]:
    """``-X importtime``'s self times summed per top-level package (ms), largest first."""
    totals: dict[str, float] = defaultdict(float)
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        totals[name.split(".")[0]] += int(self_us) / 1000
    return dict(sorted(((name, round(ms, 1)) for name, ms in totals.items()), key=lambda item: -item[1]))


def measure(template: dict[str, Any], functions: dict[str, dict[str, Any]], runs: int) -> dict[str, Any]:
    """Per target: the untimed probe (import times per package, network attempts) and ``runs`` timed imports,
    interleaved target by target in each round."""
    with tempfile.TemporaryDirectory(prefix="stocksync-cold-start-") as folder:
        scratch = Path(folder)
        build_layer(scratch / "python")
        environments = {name: child_environment(template, name, props, scratch) for name, props in functions.items()}
        environments[BASELINE] = environments[FLOOR] = child_environment(template, "baseline", {}, scratch)
        targets = [BASELINE, FLOOR, *functions]
        # Untimed: the first import writes the byte-code caches; the second, under -X importtime and the audit
        # hook, records the time spent per package and any network call (both slow an import down).
        warm = {target: run_child(target, environments[target]) for target in targets}
        probes = {
            target: warm[target] if "error" in warm[target] else run_child(target, environments[target], watch=True)
            for target in targets
        }
        samples: dict[str, list[dict[str, Any]]] = {target: [] for target in targets}
        for _ in range(runs):
            for target in targets:
                if "error" not in probes[target]:
                    samples[target].append(run_child(target, environments[target]))
    return {target: {"probe": probes[target], "samples": samples[target]} for target in targets}


def median_ms(samples: list[dict[str, Any]], key: str) -> float | None:
    values = [sample[key] for sample in samples if "error" not in sample]
    return round(statistics.median(values) * 1000, 1) if values else None


def summarize(probe: dict[str, Any], samples: list[dict[str, Any]], baseline_ms: float) -> dict[str, Any]:
    good = [sample for sample in samples if "error" not in sample]
    errors = [sample["error"] for sample in [probe, *samples] if "error" in sample]
    ms = median_ms(good, "cpu_seconds")
    row: dict[str, Any] = {
        "import_ms": ms,
        "ratio": round(ms / baseline_ms, 2) if ms is not None else None,
        "wall_ms": median_ms(good, "seconds"),
    }
    if good:
        row["runs_ms"] = [round(sample["cpu_seconds"] * 1000, 1) for sample in good]
        row["peak_mb"] = round(max(sample["peak_mb"] for sample in good), 1)
        row["modules"] = probe["modules"]
        row["top_packages_ms"] = dict(list(probe["packages_ms"].items())[:6])
    if probe.get("network"):
        row["network_at_import"] = probe["network"]
    if probe.get("unwanted"):
        row["unwanted_modules"] = probe["unwanted"]
    if errors:
        row["error"] = errors[0]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs of each; never fails on the target")
    parser.add_argument("--runs", type=int, help="timed imports of each target (default 5, --quick 3)")
    parser.add_argument("--only", nargs="*", help="measure only these functions")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)

    from stocksync_dev.local.template import load_template

    template = load_template(ROOT / "template.yaml")
    functions = functions_of(template)
    if args.only:
        functions = {name: properties for name, properties in functions.items() if name in args.only}
    measured = measure(template, functions, runs)

    baseline_ms = median_ms(measured[BASELINE]["samples"], "cpu_seconds")
    if baseline_ms is None:
        return finish(
            {}, [f"{BASELINE} cannot be imported: {measured[BASELINE]['probe'].get('error')}"], as_json=args.json
        )
    rows = {target: summarize(**parts, baseline_ms=baseline_ms) for target, parts in measured.items()}

    problems: list[str] = []
    for target, row in rows.items():
        if row.get("network_at_import"):
            problems.append(f"{target}: network at import: {row['network_at_import'][:3]}")
        if row.get("unwanted_modules"):
            problems.append(f"{target}: loads modules no cold start should: {row['unwanted_modules'][:4]}")
        if "error" in row:
            problems.append(f"{target}: cannot be imported: {row['error']}")
        elif target not in (BASELINE, FLOOR) and row["ratio"] > TARGET_RATIO and not args.quick:
            problems.append(
                f"{target}: import {row['import_ms']} ms is {row['ratio']}x boto3's {baseline_ms} ms"
                f" (target <= {TARGET_RATIO}x)"
            )
    ratios = [row["ratio"] for name, row in rows.items() if name not in (BASELINE, FLOOR) and row["ratio"] is not None]
    result = {
        "runs": runs,
        "baseline_ms": baseline_ms,
        "floor_ratio": rows[FLOOR]["ratio"],
        "target_ratio": TARGET_RATIO,
        "worst_ratio": max(ratios) if ratios else None,
        "functions": rows,
    }
    if args.json:
        return finish(result, problems, as_json=True)
    print_table(result)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def print_table(result: dict[str, Any]) -> None:
    print(
        f"import of each function's app.py in a fresh interpreter, median of {result['runs']} runs"
        f" (CPU ms; wall ms beside it); target <= {TARGET_RATIO}x boto3"
    )
    print(
        f"{'function':17} {'cpu ms':>7} {'x boto3':>7} {'wall ms':>7} {'peak MB':>7} {'modules':>7}"
        "  most time in (-X importtime, self ms per package)"
    )
    for name, row in result["functions"].items():
        if row["import_ms"] is None:
            print(f"{name:17} {'-':>7} {'-':>7} {'-':>7} {'-':>7} {'-':>7}  {row.get('error', '')}")
            continue
        top = ", ".join(f"{package} {ms:.0f}" for package, ms in list(row["top_packages_ms"].items())[:4])
        print(
            f"{name:17} {row['import_ms']:7.1f} {row['ratio']:7.2f} {row['wall_ms']:7.1f} {row['peak_mb']:7.1f}"
            f" {row['modules']:7}  {top}"
        )
    print(
        f"worst: {result['worst_ratio']}x boto3 (target <= {TARGET_RATIO}x); floor (boto3 + settings +"
        f" Logger/Metrics/Tracer, what every function imports): {result['floor_ratio']}x"
    )


if __name__ == "__main__":
    sys.exit(main())
