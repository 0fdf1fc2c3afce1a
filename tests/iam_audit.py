"""What the functions' roles allow, read from the translated template, and the AWS calls the handlers really make.

Shared by tests/integration/test_least_privilege.py (which checks the roles against a reviewed table and against the
calls of replays) and the opt-in audit in tests/integration/conftest.py (``STOCKSYNC_IAM_AUDIT=1``: every call a
handler makes in any integration test must be allowed by its role). moto does not evaluate IAM; this does, for the
statements the roles hold (Allow only, actions and resources by wildcard match, ``dynamodb:LeadingKeys``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from botocore.client import BaseClient

from stocksync_dev.local.template import REPO_ROOT, load_template, translate

# Every optional part on, so every function and its role exist.
EVERYTHING_ON = {
    "CatalogId": "1001",
    "OrderSources": "events,meta_commerce",
    "CommerceMerchantSettingsId": "2001",
    "WebhookEndpoint": "function-url",
    "ShopifyEventSourceName": "aws.partner/shopify.com/1/orders",
    "SkuMappingKey": "source/sku-mapping.csv",
    "BusProducerAccounts": "123456789012",
}


@cache
def audit_template() -> dict[str, Any]:
    """template.yaml translated with every optional part on."""
    return translate(load_template(), REPO_ROOT, EVERYTHING_ON)


def audit_parameters() -> dict[str, str]:
    parameters = audit_template()["Parameters"]
    return {**{name: str(spec.get("Default", "")) for name, spec in parameters.items()}, **EVERYTHING_ON}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """A statement's resource as the logical id it points at: ``SkuTable``, ``SkuTable/index/bucket-index``,
    ``SnapshotBucket/*``, ``secret:GraphCredentialsSecretName-*``, ``log-group:PushBatchLogGroup``, or ``*``."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(target)
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        if ":log-group:" in text:
            return "log-group:" + text.split(":log-group:${", 1)[1].split("}", 1)[0]
        if ":secret:" in text:
            return "secret:" + text.split(":secret:${", 1)[1].replace("}", "")
        return re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)
    if isinstance(resource, dict) and "Fn::Sub" in resource:  # SAM's policy templates: an ARN built from a name
        text, variables = resource["Fn::Sub"]
        for variable, value in variables.items():
            target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
            text = text.replace(f"${{{variable}}}", str(target))
        return text.split("table/", 1)[1] if "table/" in text else text.rsplit(":", 1)[-1]
    raise AssertionError(f"a resource these checks cannot name: {resource!r}")


def function_roles(template: dict[str, Any]) -> dict[str, str]:
    """Function logical id -> its role's logical id."""
    roles = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]
            assert isinstance(role, dict) and role.get("Fn::GetAtt", [None, None])[1] == "Arn", (name, role)
            roles[name] = role["Fn::GetAtt"][0]
    return roles


def role_statements(template: dict[str, Any], role: str) -> Iterator[dict[str, Any]]:
    """The role's inline statements and those of every AWS::IAM::Policy attached to it."""
    resources = template["Resources"]
    for policy in resources[role]["Properties"].get("Policies", []):
        yield from as_list(policy["PolicyDocument"]["Statement"])
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"].get("Roles", []):
            yield from as_list(resource["Properties"]["PolicyDocument"]["Statement"])


FOLDER = re.compile(r"[/\\]functions[/\\](\w+)[/\\]app\.py$")
SECRET_PARAMETERS = ("GraphCredentialsSecretName", "WebhookSecretName")


class Call:
    """One AWS call of a handler, as IAM sees it: the actions it needs on each resource, and the items' keys."""

    def __init__(self, folder: str, service: str, operation: str, params: dict[str, Any]) -> None:
        self.folder, self.service, self.operation, self.params = folder, service, operation, params

    def __repr__(self) -> str:
        return f"{self.folder}: {self.service}.{self.operation}"


def record_handler_calls(calls: list[Call]) -> Callable[..., Any]:
    """A replacement for ``BaseClient._make_api_call`` that appends each handler's call to ``calls``."""
    original = BaseClient._make_api_call

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        frame = sys._getframe(1)
        while frame is not None:
            match = FOLDER.search(frame.f_code.co_filename)
            if match:
                calls.append(Call(match.group(1), client.meta.service_model.service_name, operation, params))
                break
            frame = frame.f_back
        return original(client, operation, params)

    return recording


def logical_id(physical: str, names: list[str]) -> str:
    """The logical id a moto physical name (``stack-LogicalId-RANDOM``, a queue URL, ``stack-bus``) was made from."""
    name = physical.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if name.endswith("-bus"):
        return "StockSyncBus"
    found = [candidate for candidate in names if f"-{candidate.lower()}-" in f"{name.lower()}-"]
    assert found, physical
    return max(found, key=len)


def needs(call: Call, names: list[str], parameters: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(IAM action, resource name as ``resource_name`` spells it, leading key or None) for each thing ``call`` does."""
    p = call.params
    service, operation = call.service, call.operation
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            out = []
            for item in p["TransactItems"]:
                [(kind, body)] = item.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(kind, kind + "Item")
                out.append((f"dynamodb:{action}", logical_id(body["TableName"], names), leading_key(body)))
            return out
        if operation == "BatchGetItem":
            return [(f"dynamodb:{operation}", logical_id(table, names), None) for table in p["RequestItems"]]
        table = logical_id(p["TableName"], names)
        if p.get("IndexName"):
            table += f"/index/{p['IndexName']}"
        return [(f"dynamodb:{operation}", table, leading_key(p))]
    if service == "sqs":
        action = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}.get(operation, operation)
        queue = p.get("QueueUrl") or p["QueueName"]
        return [(f"sqs:{action}", logical_id(queue, names), None)]
    if service == "events":
        return [(f"events:{operation}", logical_id(entry["EventBusName"], names), None) for entry in p["Entries"]]
    if service == "secretsmanager":
        [parameter] = [name for name in SECRET_PARAMETERS if parameters[name] == p["SecretId"]]
        return [(f"secretsmanager:{operation}", f"secret:{parameter}-*", None)]
    if service == "s3":
        bucket = logical_id(p["Bucket"], names)
        if operation in ("ListObjectsV2", "ListObjects"):
            return [("s3:ListBucket", bucket, None)]
        action = {"HeadObject": "GetObject"}.get(operation, operation)
        return [(f"s3:{action}", f"{bucket}/{p['Key']}", None)]
    return [(f"{service}:{operation}", "?", None)]


def leading_key(body: dict[str, Any]) -> str | None:
    key = body.get("Key") or body.get("Item") or {}
    first = key.get("name") or key.get("retailer_id") or key.get("order_id") or key.get("handle") or key.get("id")
    return next(iter(first.values())) if isinstance(first, dict) else None


def allowed(template: dict[str, Any], role: str, need: tuple[str, str, str | None], parameters: dict[str, str]) -> bool:
    action, resource, key = need
    for statement in role_statements(template, role):
        if statement["Effect"] != "Allow" or not any(fnmatchcase(action, a) for a in as_list(statement["Action"])):
            continue
        names = [resource_name(r) for r in as_list(statement["Resource"])]
        names = [re.sub(r"\$\{(\w+)\}", lambda m: parameters.get(m.group(1), m.group(0)), n) for n in names]
        if not any(fnmatchcase(resource, name) for name in names):
            continue
        condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if condition is None or (key is not None and any(fnmatchcase(key, c) for c in condition)):
            return True
    return False


def denied(calls: list[Call]) -> set[tuple[str, str, str, str | None]]:
    """(function folder, action, resource, leading key) of every recorded call its role does not allow."""
    template = audit_template()
    names = sorted(template["Resources"])
    parameters = audit_parameters()
    role_of = function_roles(template)
    refused = set()
    for call in calls:
        role = role_of["".join(word.capitalize() for word in call.folder.split("_")) + "Function"]
        for need in needs(call, names, parameters):
            if not allowed(template, role, need, parameters):
                refused.add((call.folder, *need))
    return refused


def original_make_api_call() -> Callable[..., Any]:
    return BaseClient._make_api_call
