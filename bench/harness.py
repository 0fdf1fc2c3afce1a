"""What every benchmark needs: a child process per measured side, its peak memory, and request counts."""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import time
from collections import Counter
from typing import Any


def peak_memory_mb() -> float:
    """Peak resident memory of this process. VmHWM, where Linux has it: ru_maxrss survives the exec of a spawned
    child and so reports the parent's size at the fork (the moto server and the seeded tables), not the child's."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_memory_mb() -> float:
    """Resident memory of this process now (VmRSS; 0 where Linux's /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def count_requests(client: Any, counter: Counter[str]) -> None:
    """Count the client's API calls by operation name into ``counter``."""

    def count(event_name: str, **_: Any) -> None:
        counter[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.*.*", count)


def in_child(function: Any, *args: Any) -> Any:
    """Run ``function(*args)`` in a fresh (spawned) process, so its peak memory is a Lambda-sized process's own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def in_children(function: Any, calls: list[tuple[Any, ...]], processes: int) -> list[Any]:
    """``function(*args)`` for each ``args`` of ``calls``, each in a fresh spawned process of its own (so each has
    its own peak memory), at most ``processes`` at once; the results in the order of ``calls``."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(max(1, min(processes, len(calls))), maxtasksperchild=1) as pool:
        pending = [pool.apply_async(function, args) for args in calls]
        return [result.get() for result in pending]


def finish(result: dict[str, Any], problems: list[str], *, as_json: bool) -> int:
    """Print the result (one JSON object, or aligned lines), then each problem on stderr; the exit status."""
    if as_json:
        print(json.dumps(result))
    else:
        width = max(map(len, result)) + 2
        for key, value in result.items():
            print(f"{key:{width}} {value}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


class CountdownContext:
    """A Lambda context whose remaining time runs down from the function's timeout, as in Lambda."""

    memory_limit_in_mb = 256
    aws_request_id = "bench"

    def __init__(self, timeout_seconds: float, function: str = "bench") -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = f"stocksync-bench-{function}"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def seed_table(local: Any, table: str, records: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 records a call (the API's limit), asking again for what DynamoDB left unprocessed."""
    from stocksync.dal.codec import encode

    client = local.client("dynamodb")
    for start in range(0, len(records), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": encode(r)}} for r in records[start : start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
