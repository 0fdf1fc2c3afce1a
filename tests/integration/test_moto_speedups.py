"""moto's speed-ups keep what moto answers: transactions stay all-or-nothing, SQS sends still dedupe and count."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models.table import Table
from moto.sqs.models import Queue

from stocksync.dal.codec import decode, encode
from stocksync_dev.local.aws import LocalAws


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


@pytest.fixture
def queues(local_aws: LocalAws) -> Iterator[tuple[Any, str, str]]:
    """A standard queue and a content-deduplicated FIFO queue on the session's moto server."""
    client = local_aws.client("sqs")
    standard = client.create_queue(QueueName="speedup-standard")["QueueUrl"]
    fifo = client.create_queue(
        QueueName="speedup.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    yield client, standard, fifo
    client.delete_queue(QueueUrl=standard)
    client.delete_queue(QueueUrl=fifo)


def counts(client: Any, url: str) -> dict[str, str]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]


def test_a_send_does_not_count_the_queue(queues: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The send path no longer walks the queue's messages, so its cost does not grow with the queue's depth."""
    client, standard, _ = queues
    client.send_message_batch(QueueUrl=standard, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(10)])
    walked: list[int] = []
    real_messages = Queue.messages

    def recording_messages(queue: Queue) -> Any:
        walked.append(len(queue._messages))
        return real_messages.fget(queue)

    monkeypatch.setattr(Queue, "messages", property(recording_messages))
    client.send_message(QueueUrl=standard, MessageBody="one more")
    client.send_message_batch(QueueUrl=standard, Entries=[{"Id": "0", "MessageBody": "and another"}])
    assert walked == []
    assert counts(client, standard)["ApproximateNumberOfMessages"] == "12"
    assert walked  # GetQueueAttributes still counts


def test_queue_attributes_still_count_visible_and_in_flight(queues: tuple[Any, str, str]) -> None:
    client, standard, _ = queues
    client.send_message_batch(QueueUrl=standard, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(3)])
    client.receive_message(QueueUrl=standard, MaxNumberOfMessages=1)
    assert counts(client, standard) == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesNotVisible": "1",
    }


def test_a_content_deduplicated_fifo_queue_still_drops_the_repeat(queues: tuple[Any, str, str]) -> None:
    """The FIFO setting the send path reads is still there while sending: the same body twice is kept once."""
    client, _, fifo = queues
    client.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
    client.send_message_batch(QueueUrl=fifo, Entries=[{"Id": "0", "MessageBody": "same", "MessageGroupId": "g"}])
    client.send_message(QueueUrl=fifo, MessageBody="other", MessageGroupId="g")
    received = client.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in received] == ["same", "other"]


def test_a_fifo_queue_without_content_deduplication_still_requires_an_id(local_aws: LocalAws) -> None:
    client = local_aws.client("sqs")
    url = client.create_queue(QueueName="speedup-explicit.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    try:
        with pytest.raises(ClientError) as caught:
            client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
        assert "MessageDeduplicationId" in caught.value.response["Error"]["Message"]
    finally:
        client.delete_queue(QueueUrl=url)


# ------------------------------------------------------------------ expressions parsed once per text
UPDATES = [
    # (update expression, values, names, the item's attributes after it, from {"n": 1, "l": [1], "s": {"x"}})
    ("SET a = :v, n = n + :one", {":v": "first", ":one": 1}, None, {"a": "first", "n": 2}),
    ("SET a = :v, n = n + :one", {":v": "second", ":one": 5}, None, {"a": "second", "n": 7}),
    ("SET #w = if_not_exists(#w, :zero) + :one", {":zero": 10, ":one": 1}, {"#w": "w"}, {"w": 11}),
    ("SET #w = if_not_exists(#w, :zero) + :one", {":zero": 99, ":one": 2}, {"#w": "w"}, {"w": 13}),
    ("SET l = list_append(l, :more), m.k = :v", {":more": [2], ":v": "deep"}, None, {"l": [1, 2]}),
    ("REMOVE a ADD s :add", {":add": {"y"}}, None, {"s": {"x", "y"}}),
    ("DELETE s :gone", {":gone": {"x"}}, None, {"s": {"y"}}),
]


def test_repeated_update_expressions_apply_each_time_with_their_own_values(table: Any) -> None:
    table.put_item(TableName="t", Item=encode({"pk": "e", "sk": "1", "n": 1, "l": [1], "s": {"x"}, "m": {}}))
    for expression, values, names, expected in UPDATES:
        request: dict[str, Any] = {
            "TableName": "t",
            "Key": encode({"pk": "e", "sk": "1"}),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": encode(values),
        }
        if names:
            request["ExpressionAttributeNames"] = names
        table.update_item(**request)
        item = items(table)[("e", "1")]
        for name, value in expected.items():
            shown = set(item[name]) if isinstance(value, set) else item[name]  # a set comes back as a list
            assert shown == value, (expression, values, name)
    assert "a" not in items(table)[("e", "1")]
    assert items(table)[("e", "1")]["m"] == {"k": "deep"}


def test_a_cached_update_tree_is_never_changed_by_the_updates_that_use_it(table: Any) -> None:
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    from stocksync_dev.local import moto_speedups

    expression = "SET a = :v, #w = if_not_exists(#w, :zero) + :one REMOVE b"
    for value in range(3):
        table.update_item(
            TableName="t",
            Key=encode({"pk": "a", "sk": "1"}),
            UpdateExpression=expression,
            ExpressionAttributeNames={"#w": "w"},
            ExpressionAttributeValues=encode({":v": f"v{value}", ":zero": 0, ":one": 1}),
        )
    assert items(table)[("a", "1")]["w"] == 3
    kept, _pickled = moto_speedups._update_trees[expression]
    assert UpdateExpressionParser.make(expression) is kept
    # The kept tree is still what a fresh parse gives, node for node (the validator rewrote copies only).
    assert _tree(kept) == _tree(moto_speedups.parse_update_expression(expression))


def _tree(node: Any) -> Any:
    """A node's type, its attributes but the parent pointer, and its children, recursively: a tree's shape and text."""
    if not hasattr(node, "__dict__"):
        return repr(node)
    attributes = {key: value for key, value in vars(node).items() if key not in ("parent", "children")}
    children = tuple(_tree(child) for child in (vars(node).get("children") or []))
    return type(node).__name__, tuple(sorted((key, _tree(value)) for key, value in attributes.items())), children


@pytest.mark.parametrize("attempt", [1, 2])
def test_a_bad_update_expression_fails_the_same_way_every_time(table: Any, attempt: int) -> None:
    with pytest.raises(ClientError) as caught:
        table.update_item(
            TableName="t",
            Key=encode({"pk": "a", "sk": "1"}),
            UpdateExpression="SET a = = :v",
            ExpressionAttributeValues=encode({":v": attempt}),
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "Invalid UpdateExpression" in caught.value.response["Error"]["Message"]


def test_a_repeated_condition_is_evaluated_against_each_requests_values(table: Any) -> None:
    condition = "attribute_exists(pk) AND n < :limit"
    request = {"TableName": "t", "Key": encode({"pk": "a", "sk": "1"}), "UpdateExpression": "ADD n :one"}
    table.update_item(
        **request, ConditionExpression=condition, ExpressionAttributeValues=encode({":one": 1, ":limit": 2})
    )
    with pytest.raises(ClientError) as caught:  # n is 2 now: the same text with the same limit fails
        table.update_item(
            **request, ConditionExpression=condition, ExpressionAttributeValues=encode({":one": 1, ":limit": 2})
        )
    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    table.update_item(
        **request, ConditionExpression=condition, ExpressionAttributeValues=encode({":one": 1, ":limit": 3})
    )
    assert items(table)[("a", "1")]["n"] == 3


@pytest.mark.parametrize(
    ("expression", "section"),
    [
        ("SET a = :v SET b = :v", "SET"),
        ("ADD n :one REMOVE a ADD m :one", "ADD"),
        ("REMOVE a SET b = :v REMOVE c", "REMOVE"),
        ("SET a = :v ADD n :one SET b = :v ADD m :one", "ADD"),  # moto checks ADD first, at the same node
    ],
)
def test_a_section_used_twice_is_refused_with_motos_own_message(table: Any, expression: str, section: str) -> None:
    values = encode({":v": "x", ":one": 1})
    with pytest.raises(ClientError) as caught:
        table.update_item(
            TableName="t",
            Key=encode({"pk": "c", "sk": "1"}),
            UpdateExpression=expression,
            ExpressionAttributeValues={name: value for name, value in values.items() if name in expression},
        )
    message = caught.value.response["Error"]["Message"]
    assert f'The "{section}" section can only be used once in an update expression' in message
    assert ("c", "1") not in items(table)


def test_the_clause_counter_agrees_with_motos_validator_on_every_node() -> None:
    """The count at each node is what moto's find_clauses finds there: compared on trees of every section mix."""
    from moto.dynamodb.parsing import ast_nodes

    from stocksync_dev.local import moto_speedups

    kinds = [ast_nodes.UpdateExpressionAddClause, ast_nodes.UpdateExpressionRemoveClause]
    kinds.append(ast_nodes.UpdateExpressionSetClause)
    expressions = [
        "SET a = :v, b = if_not_exists(b, :v) + :one, c = list_append(c, :l)",
        "SET a = :v REMOVE b, c ADD n :one DELETE s :s",
        "REMOVE a[0], a[1], m.k",
        "ADD n :one, m :one",
    ]
    for expression in expressions:
        tree = moto_speedups.parse_update_expression(expression)
        stack = [tree]
        while stack:
            node = stack.pop()
            if not isinstance(node, ast_nodes.Node):
                continue
            expected = tuple(len(node.find_clauses([kind])) for kind in kinds)
            assert moto_speedups._clause_counts(node) == expected, (expression, type(node).__name__)
            stack.extend(node.children or [])


def test_queries_keep_dynamodb_s_order_with_the_sort_keys_converted_once(local_aws: LocalAws) -> None:
    """Numbers sort by value (9 before 10, -1 first), strings by code point, on the table and on an index, forwards,
    backwards and across pages: the order moto gives and DynamoDB documents."""
    client = local_aws.client("dynamodb")
    client.create_table(
        TableName="sorted",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    numbers = [10, 9, -1, 100, 2, 0, 55]
    try:
        for pk in ("b", "a", "B"):
            for number in numbers:
                client.put_item(TableName="sorted", Item=encode({"pk": pk, "n": number, "g": "bucket"}))
        query = {"TableName": "sorted", "KeyConditionExpression": "pk = :p"}
        answer = client.query(**query, ExpressionAttributeValues=encode({":p": "a"}))
        assert [decode(item)["n"] for item in answer["Items"]] == sorted(numbers)
        answer = client.query(**query, ExpressionAttributeValues=encode({":p": "a"}), ScanIndexForward=False)
        assert [decode(item)["n"] for item in answer["Items"]] == sorted(numbers, reverse=True)
        assert client.query(**query, ExpressionAttributeValues=encode({":p": "none"}))["Items"] == []
        between = "pk = :p AND n BETWEEN :low AND :high"
        values = encode({":p": "B", ":low": 0, ":high": 10})
        answer = client.query(TableName="sorted", KeyConditionExpression=between, ExpressionAttributeValues=values)
        assert [decode(item)["n"] for item in answer["Items"]] == [0, 2, 9, 10]

        index = {"TableName": "sorted", "IndexName": "by_g", "KeyConditionExpression": "g = :g", "Limit": 4}
        seen: list[tuple[int, str]] = []
        start: dict[str, Any] = {}
        while True:
            page = client.query(**index, ExpressionAttributeValues=encode({":g": "bucket"}), **start)
            seen += [(decode(item)["n"], decode(item)["pk"]) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        # The index's key first, then the table's hash key (code points: "B" < "a" < "b") for equal numbers.
        assert seen == sorted((number, pk) for pk in ("b", "a", "B") for number in numbers)
        scanned = [decode(item) for item in client.scan(TableName="sorted")["Items"]]
        assert len(scanned) == 3 * len(numbers)
    finally:
        client.delete_table(TableName="sorted")


def test_a_kept_input_path_finds_each_event_s_own_values(local_aws: LocalAws) -> None:
    """moto's EventBridge input transformer with the parse cache: one parser per path text, and each event's own
    detail and source in what it builds (a parser never keeps a previous event's match)."""
    from jsonpath_ng import ext as jsonpath_ext
    from moto.events.utils import EventTemplateParser

    assert jsonpath_ext.parse("$.detail") is jsonpath_ext.parse("$.detail")
    common = {"detail-type": "t", "account": "1", "region": "r", "resources": [], "time": 1.0, "ingestion-time": 1.0}
    first = {**common, "source": "stocksync.a", "detail": {"sku": "A"}, "id": "1"}
    second = {**common, "source": "stocksync.b", "detail": {"sku": "B"}, "id": "2"}
    built = [EventTemplateParser.parse("", {}, event) for event in (first, second, first)]
    assert [(entry["source"], entry["detail"]) for entry in built] == [
        ("stocksync.a", {"sku": "A"}),
        ("stocksync.b", {"sku": "B"}),
        ("stocksync.a", {"sku": "A"}),
    ]
