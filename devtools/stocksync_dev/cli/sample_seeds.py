"""The state a sample event under events/ needs, put into the fresh local stack before ``replay --function`` runs
it: a sample of one stage of the pipeline names things earlier stages make (a SKU's claimed version, a batch's
handle, an uploaded file), and without them it only shows a dead letter. In a deployment those earlier stages ran.

- ``load_snapshot``: the notification's bucket becomes the stack's snapshot bucket, and a small levels file is put
  at its key (with the notification's etag and size updated to it).
- ``push_batch``: each row's SKU is recorded as recompute leaves it when it enqueues a push (the row's version
  claimed), and is a product of the simulator's catalog.
- ``verify_batch``: the push sample is pushed first (seeded as above), and each record's handle becomes the handle
  the simulator gave that batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stocksync import clock
from stocksync.dal.codec import decode, encode
from stocksync.dal.keys import SKU_STATE_RECORD
from stocksync_dev.cli.pipeline import LocalPipeline
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import REPO_ROOT
from stocksync_dev.simulator import CommercePlatformSimulator

PUSH_SAMPLE = REPO_ROOT / "events" / "push_queue_batch.json"


def seed(function: str, event: Any, local: LocalAws, sim: CommercePlatformSimulator, pipeline: LocalPipeline) -> Any:
    """The event to invoke ``function`` with, after the state it needs is in place (unchanged for the others)."""
    seeders: dict[str, Callable[..., Any]] = {
        "load_snapshot": _snapshot,
        "push_batch": _push,
        "verify_batch": _verify,
    }
    if function not in seeders or not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        return event
    return seeders[function](event, local, sim, pipeline)


def _bodies(event: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Each record's body as JSON (None when it is not: the handler dead-letters it, naming the field)."""
    bodies: list[dict[str, Any] | None] = []
    for record in event["Records"]:
        try:
            body = json.loads(record["body"])
        except (KeyError, TypeError, ValueError):
            body = None
        bodies.append(body if isinstance(body, dict) else None)
    return bodies


def _with_bodies(event: dict[str, Any], bodies: list[dict[str, Any] | None]) -> dict[str, Any]:
    records = [
        record if body is None else {**record, "body": json.dumps(body)}
        for record, body in zip(event["Records"], bodies, strict=True)
    ]
    return {**event, "Records": records}


def _snapshot(event: dict[str, Any], local: LocalAws, _sim: CommercePlatformSimulator, _p: LocalPipeline) -> Any:
    bucket = local.outputs["SnapshotBucketName"]
    bodies = _bodies(event)
    for body in bodies:
        try:
            body["detail"]["bucket"]["name"] = bucket  # type: ignore[index]
            key = body["detail"]["object"]["key"]  # type: ignore[index]
        except (KeyError, TypeError):
            continue
        as_of = clock.now().isoformat()
        levels = f"retailer_id,level,as_of\nMUG-RED,12,{as_of}\nMUG-BLUE,0,{as_of}\n".encode()
        put = local.client("s3").put_object(Bucket=bucket, Key=key, Body=levels)
        # The notification names the object's version: its etag and size (a later upload is a new notification).
        body["detail"]["object"].update({"etag": put["ETag"].strip('"'), "size": len(levels)})  # type: ignore[index]
    return _with_bodies(event, bodies)


def _push(event: dict[str, Any], local: LocalAws, sim: CommercePlatformSimulator, _p: LocalPipeline) -> Any:
    dynamodb = local.client("dynamodb")
    table = local.function_environment()["SKU_TABLE"]
    for body in _bodies(event):
        if body is None or not isinstance(body.get("retailer_id"), str) or not isinstance(body.get("version"), int):
            continue
        item = {"retailer_id": body["retailer_id"], "record": SKU_STATE_RECORD, "published_version": body["version"]}
        dynamodb.put_item(TableName=table, Item=encode({**item, "bucket": "medium"}))
        if body["retailer_id"] not in sim.catalog():
            sim.add_product(body["retailer_id"], quantity=1, name=body["retailer_id"], price="10.00 USD")
    return event


def _verify(event: dict[str, Any], local: LocalAws, sim: CommercePlatformSimulator, pipeline: LocalPipeline) -> Any:
    push = _push(json.loads(PUSH_SAMPLE.read_text()), local, sim, pipeline)
    pipeline.invoke("push_batch", push)
    table = local.function_environment()["BATCHES_TABLE"]
    handles = sorted(
        str(decode(item)["handle"]) for item in local.client("dynamodb").scan(TableName=table).get("Items", [])
    )
    if not handles:
        return event  # the push was refused: the handler then says there is no batch record, as it would
    bodies = _bodies(event)
    for body in bodies:
        if body is not None and "handle" in body:
            body["handle"] = handles[0]
    return _with_bodies(event, bodies)
