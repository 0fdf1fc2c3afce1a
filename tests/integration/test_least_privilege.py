"""Least privilege, checked on the translated template (the CloudFormation SAM makes of template.yaml): each
function's role allows only its own queues, tables and actions, and every ``"*"`` resource is listed with why.

moto does not evaluate IAM, so the local stack cannot show a missing or a surplus permission; these checks are
what stands between a reviewer and a role that lets order_events purge the push queue. The tables below are the
reviewed permissions: a change to a role must change them too, which puts it in front of a reviewer with its reason.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest

from stocksync_dev.local.template import REPO_ROOT, load_template, translate
from tests.iam_audit import (
    EVERYTHING_ON,
    Call,
    as_list,
    denied,
    function_roles,
    record_handler_calls,
    resource_name,
    role_statements,
)

Grants = dict[str, set[str]]  # resource (logical id, or logical id + path) -> actions


@cache
def sam_template() -> dict[str, Any]:
    return load_template()


@cache
def translated() -> dict[str, Any]:
    return translate(sam_template(), REPO_ROOT, EVERYTHING_ON)


def grants(template: dict[str, Any], role: str, service: str) -> Grants:
    """What the role allows on ``service``'s resources: resource name -> actions."""
    allowed: Grants = defaultdict(set)
    for statement in role_statements(template, role):
        actions = [a for a in as_list(statement["Action"]) if a.split(":")[0] == service]
        if statement["Effect"] != "Allow" or not actions:
            continue
        for resource in as_list(statement["Resource"]):
            allowed[resource_name(resource)].update(actions)
    return dict(allowed)


def consumed_queues(template: dict[str, Any]) -> dict[str, set[str]]:
    """Function logical id -> the queues its SQS event source mappings read."""
    consumed: dict[str, set[str]] = defaultdict(set)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            function = resource["Properties"]["FunctionName"]["Ref"]
            consumed[function].add(resource["Properties"]["EventSourceArn"]["Fn::GetAtt"][0])
    return consumed


def everything(template: dict[str, Any]) -> dict[str, dict[str, Grants]]:
    """Function logical id -> service -> its grants, for the services the functions use."""
    roles = function_roles(template)
    return {
        function: {service: grants(template, role, service) for service in ("dynamodb", "sqs")}
        for function, role in roles.items()
    }


# ------------------------------------------------------------------ the reviewed permissions
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}  # what a queue's event source needs
REASONED_DLQ = "records it cannot process, with the reason"

# The queues each function sends to, and why. Receiving is only ever from the queue(s) its event source reads.
QUEUE_SENDS: dict[str, dict[str, str]] = {
    "PushBatchFunction": {
        "VerifyQueue": "the first check of each accepted items_batch call",
        "PushQueue": "rows deferred to a later call slot, or throttled",
        "DeadLetterQueue": REASONED_DLQ,
    },
    "VerifyBatchFunction": {
        "PushQueue": "rows the platform refused for a retryable reason",
        "VerifyQueue": "the next check of a handle still processing",
        "RecomputeQueue": "SKUs that moved while their batch was in flight",
        "DeadLetterQueue": REASONED_DLQ,
    },
    "ReadBackFunction": {
        "CatalogReadQueue": "SKUs waiting for a read slot",
        "RecomputeQueue": "SKUs whose catalog value the read settled",
        "DeadLetterQueue": REASONED_DLQ,
    },
    "AuditCatalogFunction": {
        "RecomputeQueue": "SKUs whose catalog differs from what stocksync expects",
        "DeadLetterQueue": "an invalid schedule input, with the reason",
    },
    "ExportFeedsFunction": {},
    "PollOrdersFunction": {"RecomputeQueue": "SKUs the orders changed", "DeadLetterQueue": REASONED_DLQ},
    "OrderEventsFunction": {"RecomputeQueue": "SKUs the orders changed", "DeadLetterQueue": REASONED_DLQ},
    "OrderWebhookFunction": {"WebhookQueue": "each verified delivery, once"},
    "WebhookOrdersFunction": {"RecomputeQueue": "SKUs the orders changed", "DeadLetterQueue": REASONED_DLQ},
    "ShopifyOrdersFunction": {"RecomputeQueue": "SKUs the orders changed", "DeadLetterQueue": REASONED_DLQ},
    "WarehouseEventsFunction": {"RecomputeQueue": "SKUs whose level changed", "DeadLetterQueue": REASONED_DLQ},
    "LoadSnapshotFunction": {
        "SnapshotQueue": "its own continuation, when the load runs out of time",
        "RecomputeQueue": "SKUs whose level changed",
        "DeadLetterQueue": REASONED_DLQ,
    },
    "ReconcileFunction": {
        "RecomputeQueue": "SKUs whose counters were repaired",
        "DeadLetterQueue": "an invalid schedule input, with the reason",
    },
    "RecomputeStockFunction": {
        "PushQueue": "values the catalog lacks",
        "CatalogReadQueue": "SKUs whose catalog value is ambiguous",
        "DeadLetterQueue": REASONED_DLQ,
    },
    "SweepStockFunction": {
        "PushQueue": "values the catalog lacks",
        "CatalogReadQueue": "SKUs whose catalog value is ambiguous",
        "SweepQueue": "the rest of its bucket, when the sweep runs out of time",
        "DeadLetterQueue": REASONED_DLQ,
    },
    "AssignBucketsFunction": {"RecomputeQueue": "SKUs that moved to another bucket"},
}
# Other queue actions, with why.
QUEUE_EXTRAS = {("LoadSnapshotFunction", "SnapshotQueue"): {"sqs:GetQueueUrl"}}  # its record names the queue's ARN

_LEDGER = {"OrdersTable": {"dynamodb:BatchGetItem", "dynamodb:PutItem"}, "SkuTable": {"dynamodb:UpdateItem"}}
# The tables, indexes and actions each function's code calls (layers/stocksync/stocksync/dal, wiring): a ledger
# transaction needs PutItem on the orders table and UpdateItem on the SKU table (IAM checks each action of a
# TransactWriteItems); the ledger reads its rows with BatchGetItem.
TABLES: dict[str, dict[str, set[str]]] = {
    "PushBatchFunction": {
        "SkuTable": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem"},
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:PutItem"},  # GetItem: settling a dead run's batches
    },
    "VerifyBatchFunction": {
        "BatchesTable": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "SkuTable": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem"},
    },
    "ReadBackFunction": {
        "SkuTable": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem"},
    },
    "AuditCatalogFunction": {
        "SkuTable": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
    },
    "ExportFeedsFunction": {
        "SkuTable/index/bucket-index": {"dynamodb:Query"},
        "SkuTable": {"dynamodb:UpdateItem"},
    },
    "PollOrdersFunction": {**_LEDGER, "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem"}},
    "OrderEventsFunction": _LEDGER,
    "OrderWebhookFunction": {
        "IdempotencyTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    },
    "WebhookOrdersFunction": _LEDGER,
    "ShopifyOrdersFunction": _LEDGER,
    "WarehouseEventsFunction": _LEDGER,
    "LoadSnapshotFunction": {"SkuTable": {"dynamodb:UpdateItem"}},
    "ReconcileFunction": {
        "SkuTable": {"dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "OrdersTable/index/open-orders-index": {"dynamodb:Query"},
    },
    "RecomputeStockFunction": {
        "SkuTable": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "SkuTable/index/bucket-index": {"dynamodb:Query"},
        "OrdersTable/index/open-orders-index": {"dynamodb:Query"},
    },
    "SweepStockFunction": {
        "SkuTable": {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "SkuTable/index/bucket-index": {"dynamodb:Query"},
        "OrdersTable/index/open-orders-index": {"dynamodb:Query"},
        "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
    },
    "AssignBucketsFunction": {
        "SkuTable": {"dynamodb:Query", "dynamodb:UpdateItem"},
        "SkuTable/index/bucket-index": {"dynamodb:Query"},
        "ControlTable": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"},
    },
}

# Actions that remove or bulk-read whole tables' data, allowed only where the code calls them, with why.
DESTRUCTIVE = {"dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:DeleteTable"}
DESTRUCTIVE_ALLOWED = {
    ("OrderWebhookFunction", "IdempotencyTable", "dynamodb:DeleteItem"): (
        "Powertools Idempotency deletes the in-progress record of a delivery whose enqueue failed, so the retry runs"
    ),
    ("AuditCatalogFunction", "ControlTable", "dynamodb:DeleteItem"): (
        "the audit's resume position, deleted when a pass completes (LeadingKeys: its own items only)"
    ),
    ("AssignBucketsFunction", "ControlTable", "dynamodb:DeleteItem"): (
        "the assignment's resume position, deleted when a pass completes (LeadingKeys: its own item only)"
    ),
    ("SweepStockFunction", "ControlTable", "dynamodb:DeleteItem"): (
        "a sweep releases its bucket's lease (LeadingKeys: lease#sweep#* only)"
    ),
    ("ReconcileFunction", "SkuTable", "dynamodb:Scan"): "the daily recount finds every SKU with a non-zero counter",
}

# Every statement whose Resource is "*", by action (identity policies) or by resource and Sid (resource policies).
STAR_ALLOWED = {
    "xray:PutTraceSegments": "Tracing: Active; X-Ray has no resource-level permissions for sending traces",
    "xray:PutTelemetryRecords": "Tracing: Active; X-Ray has no resource-level permissions for its telemetry",
    ("AlarmTopicKey", "AccountAdministersTheKey"): "in a key policy, * is the key itself",
    ("AlarmTopicKey", "AlarmsPublishToTheTopic"): "in a key policy, * is the key itself",
    ("AlarmTopicKey", "OverSellingEventsToTheTopic"): "in a key policy, * is the key itself (EventBridge -> SNS)",
}


# ------------------------------------------------------------------ the checks (each returns what is wrong)
def role_problems(sam: dict[str, Any], template: dict[str, Any]) -> list[str]:
    """Every function has a role of its own, made by this template, with no managed policy; no function carries
    ``Policies`` (SAM drops them without a word when the function names its Role)."""
    problems = []
    roles = function_roles(template)
    if len(set(roles.values())) != len(roles):
        problems.append("two functions share a role")
    for function, role in roles.items():
        resource = template["Resources"].get(role, {})
        if resource.get("Type") != "AWS::IAM::Role":
            problems.append(f"{function}: its role {role} is not a role of this template")
            continue
        if resource["Properties"].get("ManagedPolicyArns"):
            problems.append(f"{function}: managed policies {resource['Properties']['ManagedPolicyArns']}")
        trust = as_list(resource["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        if [s["Principal"] for s in trust] != [{"Service": "lambda.amazonaws.com"}]:
            problems.append(f"{function}: its role trusts {trust}")
    globals_ = sam.get("Globals", {}).get("Function", {})
    for name, resource in {"Globals": {"Properties": globals_}, **sam["Resources"]}.items():
        if "Policies" in resource.get("Properties", {}) and resource.get("Type", "Globals") in (
            "Globals",
            "AWS::Serverless::Function",
        ):
            problems.append(f"{name}: Policies on a function with its own role are ignored by SAM; use the role")
    return problems


def queue_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    consumed = consumed_queues(template)
    for function, role in function_roles(template).items():
        expected: Grants = defaultdict(set)
        for queue in consumed.get(function, set()):
            expected[queue] |= CONSUME
        for queue in QUEUE_SENDS.get(function, {}):
            expected[queue].add("sqs:SendMessage")
        for (owner, queue), actions in QUEUE_EXTRAS.items():
            if owner == function:
                expected[queue] |= actions
        actual = grants(template, role, "sqs")
        if actual != dict(expected):
            problems.append(f"{function}: SQS {sorted_grants(actual)}, reviewed {sorted_grants(expected)}")
    return problems


def table_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    for function, role in function_roles(template).items():
        actual = grants(template, role, "dynamodb")
        if actual != TABLES.get(function, {}):
            problems.append(f"{function}: DynamoDB {sorted_grants(actual)}, reviewed {sorted_grants(TABLES[function])}")
        for resource, actions in actual.items():
            for action in sorted(actions & DESTRUCTIVE):
                if (function, resource, action) not in DESTRUCTIVE_ALLOWED:
                    problems.append(f"{function}: {action} on {resource}, which its code does not call")
            for action in sorted(a for a in actions if "*" in a):
                problems.append(f"{function}: wildcard action {action} on {resource}")
    return problems


def star_problems(template: dict[str, Any]) -> list[str]:
    """Every statement of the template (roles, policies, key and queue policies) whose Resource is "*"."""
    problems = []
    for name, resource in template["Resources"].items():
        for statement in statements_in(resource.get("Properties", {})):
            if "*" not in as_list(statement.get("Resource")) or statement.get("Effect") != "Allow":
                continue
            if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                unlisted = [a for a in as_list(statement["Action"]) if a not in STAR_ALLOWED]
                if unlisted:
                    problems.append(f"{name}: {unlisted} on Resource *")
            elif (name, statement.get("Sid")) not in STAR_ALLOWED:
                problems.append(f"{name}: statement {statement.get('Sid')} on Resource *")
    return problems


def statements_in(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
            return
        for value in node.values():
            yield from statements_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements_in(item)


def sorted_grants(grants_: Grants | dict[str, set[str]]) -> dict[str, list[str]]:
    return {resource: sorted(actions) for resource, actions in sorted(grants_.items())}


CHECKS: list[Callable[[dict[str, Any], dict[str, Any]], list[str]]] = [
    role_problems,
    lambda _sam, template: queue_problems(template),
    lambda _sam, template: table_problems(template),
    lambda _sam, template: star_problems(template),
]


def all_problems(sam: dict[str, Any]) -> list[str]:
    template = translate(sam, REPO_ROOT, EVERYTHING_ON)
    return [problem for check in CHECKS for problem in check(sam, template)]


# ------------------------------------------------------------------ the tests
def test_every_function_has_a_role_of_its_own_without_managed_policies() -> None:
    assert function_roles(translated()).keys() == QUEUE_SENDS.keys() == TABLES.keys()
    assert role_problems(sam_template(), translated()) == []


def test_no_function_can_touch_a_queue_it_neither_consumes_nor_sends_to() -> None:
    assert queue_problems(translated()) == []


def test_only_the_consumer_of_a_queue_may_receive_or_delete_its_messages() -> None:
    consumed = consumed_queues(translated())
    consumer_of = {queue: function for function, queues in consumed.items() for queue in queues}
    assert len(consumer_of) == sum(len(queues) for queues in consumed.values()) >= 10  # one consumer per queue
    for function, role in function_roles(translated()).items():
        for queue, actions in grants(translated(), role, "sqs").items():
            if actions - {"sqs:SendMessage", "sqs:GetQueueUrl"}:
                assert consumer_of.get(queue) == function, (function, queue, actions)


def test_no_function_touches_a_table_or_an_action_its_code_does_not_use() -> None:
    assert table_problems(translated()) == []


def test_every_star_resource_is_listed_with_its_reason() -> None:
    assert star_problems(translated()) == []
    assert all(isinstance(reason, str) and reason for reason in STAR_ALLOWED.values())


def test_the_default_deploy_passes_the_same_checks() -> None:
    template = translate(sam_template(), REPO_ROOT, {"CatalogId": "1001"})
    problems = [problem for check in CHECKS for problem in check(sam_template(), template)]
    assert problems == []


def test_the_control_table_items_a_function_may_write_are_its_own() -> None:
    """LeadingKeys conditions keep a function off the control items of others (a poll cursor, a pacer's lease)."""
    prefixes = {}
    for function, role in function_roles(translated()).items():
        for statement in role_statements(translated(), role):
            if statement["Resource"] == {"Fn::GetAtt": ["ControlTable", "Arn"]}:
                prefixes[function] = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert prefixes == {
        "PushBatchFunction": ["batch-call-budget#*", "batch-processing#*"],
        "VerifyBatchFunction": ["status-check-budget#*", "batch-processing#*"],
        "ReadBackFunction": ["catalog-read-budget#*"],
        "AuditCatalogFunction": ["catalog-read-budget#*", "catalog-audit#*", "catalog-audit-result#*"],
        "PollOrdersFunction": ["poll-cursor#*"],
        "SweepStockFunction": ["lease#sweep#*"],
        "AssignBucketsFunction": ["bucket-assignment#*"],
    }


# ------------------------------------------------------------------ the checks catch what they are for
def with_change(change: Callable[[dict[str, Any], dict[str, Any]], None]) -> dict[str, Any]:
    """A copy of the SAM template with ``change(resources, order_events' properties)`` applied."""
    sam = copy.deepcopy(sam_template())
    change(sam["Resources"], sam["Resources"]["OrderEventsFunction"]["Properties"])
    return sam


CRUD_ON_ORDERS = [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "OrdersTable"}}}]


def back_to_a_generated_role_with_crud(resources: dict[str, Any], properties: dict[str, Any]) -> None:
    """How the template was before: SAM generates the role (the name of ours) from Policies."""
    del resources["OrderEventsFunctionRole"], properties["Role"]
    properties["Policies"] = CRUD_ON_ORDERS


def crud_beside_the_role(_resources: dict[str, Any], properties: dict[str, Any]) -> None:
    properties["Policies"] = CRUD_ON_ORDERS


def a_send_to_the_push_queue(resources: dict[str, Any], _properties: dict[str, Any]) -> None:
    policy = resources["OrderEventsFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"].append(
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["PushQueue", "Arn"]}}
    )


def a_scan_of_the_orders(resources: dict[str, Any], _properties: dict[str, Any]) -> None:
    policy = resources["OrderEventsFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"].append(
        {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": {"Fn::GetAtt": ["OrdersTable", "Arn"]}}
    )


def logs_anywhere(resources: dict[str, Any], _properties: dict[str, Any]) -> None:
    policy = resources["OrderEventsFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"].append({"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (back_to_a_generated_role_with_crud, "OrderEventsFunction: dynamodb:DeleteItem on OrdersTable"),
        (back_to_a_generated_role_with_crud, "OrderEventsFunction: dynamodb:BatchWriteItem on OrdersTable"),
        (back_to_a_generated_role_with_crud, "AWSLambdaSQSQueueExecutionRole"),
        (crud_beside_the_role, "OrderEventsFunction: Policies on a function with its own role are ignored"),
        (a_send_to_the_push_queue, "'PushQueue': ['sqs:SendMessage']"),
        (a_scan_of_the_orders, "OrderEventsFunction: dynamodb:Scan on OrdersTable"),
        (logs_anywhere, "OrderEventsFunctionRole: ['logs:PutLogEvents'] on Resource *"),
    ],
)
def test_the_checks_fail_when_a_broad_policy_comes_back(
    change: Callable[[dict[str, Any], dict[str, Any]], None], expected: str
) -> None:
    problems = all_problems(with_change(change))
    assert any(expected in problem for problem in problems), problems


# ------------------------------------------------------------------ the calls the handlers really make
# The tables above are a review; this checks them against the code. A replay runs the real handlers on the local
# stack; every AWS call made under a handler (a frame of functions/<name>/app.py on the stack) is recorded and must
# be allowed by that function's role: action, resource and dynamodb:LeadingKeys condition, as IAM would decide it
# (Allow statements only: the roles have no Deny). moto would have let any call through.
@pytest.mark.parametrize(
    ("scenario", "functions"),
    [
        ("webshop_and_instagram", {"order_events", "poll_orders", "push_batch", "verify_batch", "recompute_stock"}),
        ("overwrite_race", {"audit_catalog", "read_back", "warehouse_events", "push_batch", "verify_batch"}),
    ],
)
def test_every_call_a_handler_makes_in_a_replay_is_allowed_by_its_role(
    scenario: str, functions: set[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other functions' calls are checked the same way by the opt-in audit of the integration tests
    (``STOCKSYNC_IAM_AUDIT=1``, tests/integration/conftest.py): their tests call those handlers directly."""
    from botocore.client import BaseClient

    from stocksync_dev.cli.main import main

    calls: list[Call] = []
    monkeypatch.setattr(BaseClient, "_make_api_call", record_handler_calls(calls))
    assert main(["replay", str(REPO_ROOT / "events" / "scenarios" / f"{scenario}.json"), "--json"]) == 0
    capsys.readouterr()
    assert functions <= {call.folder for call in calls}
    assert sorted(denied(calls), key=str) == []
