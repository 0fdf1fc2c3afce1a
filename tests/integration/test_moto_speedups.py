"""The faster moto transaction rollback keeps DynamoDB's all-or-nothing semantics (and is actually faster)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table

from stocksync.dal.codec import decode, encode
from stocksync.local.aws import LocalAws


@pytest.fixture
def table(local_aws: LocalAws) -> Iterator[Any]:
    """A scratch table on the session's moto server (LocalAws installs the speed-up). Not mock_aws: leaving a
    mock_aws context resets moto's in-process state, which would wipe the session's deployed stack."""
    client = local_aws.client("dynamodb")
    client.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    client.put_item(TableName="t", Item=encode({"pk": "a", "sk": "1", "n": 1}))
    yield client
    client.delete_table(TableName="t")


def items(client: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["pk"], i["sk"]): i for i in (decode(raw) for raw in client.scan(TableName="t")["Items"])}


def update(pk: str, sk: str, condition: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {
        "TableName": "t",
        "Key": encode({"pk": pk, "sk": sk}),
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": encode({":one": 1}),
    }
    if condition:
        action["ConditionExpression"] = condition
    return {"Update": action}


def test_a_cancelled_transaction_changes_nothing(table: Any) -> None:
    before = items(table)
    with pytest.raises(ClientError) as caught:
        table.transact_write_items(
            TransactItems=[
                update("a", "1"),  # applied by moto before the failing action, then rolled back
                {"Put": {"TableName": "t", "Item": encode({"pk": "b", "sk": "1", "n": 9})}},
                update("c", "1", condition="attribute_exists(pk)"),  # fails
            ]
        )
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [reason["Code"] for reason in caught.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert items(table) == before


def test_two_actions_on_one_item_are_refused_and_change_nothing(table: Any) -> None:
    before = items(table)
    with pytest.raises(ClientError):
        table.transact_write_items(TransactItems=[update("a", "1"), update("a", "1")])
    assert items(table) == before


def test_a_successful_transaction_applies_every_action(table: Any) -> None:
    table.transact_write_items(
        TransactItems=[update("a", "1"), {"Put": {"TableName": "t", "Item": encode({"pk": "b", "sk": "2", "n": 5})}}]
    )
    assert items(table)[("a", "1")]["n"] == 2 and items(table)[("b", "2")]["n"] == 5


def test_no_table_is_copied_only_the_items_the_transaction_names(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost no longer grows with the table: a transaction deep-copies its own items, never a whole table."""
    copied: list[type] = []
    real_deepcopy = copy.deepcopy

    def recording_deepcopy(value: Any, memo: Any = None) -> Any:
        copied.append(type(value))
        return real_deepcopy(value, memo)

    monkeypatch.setattr(copy, "deepcopy", recording_deepcopy)
    with pytest.raises(ClientError):
        table.transact_write_items(TransactItems=[update("a", "1"), update("c", "1", condition="attribute_exists(pk)")])
    assert Table not in copied
