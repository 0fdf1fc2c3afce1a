"""The local stack: template.yaml deployed into moto really holds what the product's code relies on."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stocksync.dal import aws as product_aws
from stocksync.errors import ConfigurationError
from stocksync.models.settings import Settings, get_settings
from stocksync_dev.cli.pipeline import load_function
from stocksync_dev.local.aws import LocalAws, LocalAwsError
from stocksync_dev.local.template import REPO_ROOT, TEMPLATE_PATH, load_template
from tests.conftest import SocketBlockedError

# The key names the repositories in stocksync.dal are written against: (hash, range, {index: (hash, range)}).
TABLE_KEYS = {
    "SKU_TABLE": ("retailer_id", "record", {"bucket-index": ("bucket", "retailer_id")}),
    "ORDERS_TABLE": ("order_id", "part", {"open-orders-index": ("open_shard", "order_id")}),
    "BATCHES_TABLE": ("handle", None, {}),
    "CONTROL_TABLE": ("name", None, {}),
    "IDEMPOTENCY_TABLE": ("id", None, {}),
}
WORK_QUEUES = {
    "RecomputeQueueUrl": "RecomputeDeadLetterQueueUrl",
    "PushQueueUrl": "PushDeadLetterQueueUrl",
    "VerifyQueueUrl": "VerifyDeadLetterQueueUrl",
}
FOURTEEN_DAYS = str(14 * 24 * 3600)


def key_schema(keys: list[dict[str, str]]) -> tuple[str | None, str | None]:
    by_type = {key["KeyType"]: key["AttributeName"] for key in keys}
    return by_type.get("HASH"), by_type.get("RANGE")


def queue_attributes(local_aws: LocalAws, url: str) -> dict[str, str]:
    return local_aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


@pytest.mark.parametrize("variable", sorted(TABLE_KEYS))
def test_every_table_has_the_keys_and_indexes_the_repositories_use(local_aws: LocalAws, variable: str) -> None:
    hash_key, range_key, indexes = TABLE_KEYS[variable]
    table_name = local_aws.function_environment()[variable]
    table = local_aws.client("dynamodb").describe_table(TableName=table_name)["Table"]

    assert key_schema(table["KeySchema"]) == (hash_key, range_key)
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    deployed_indexes = {
        index["IndexName"]: (key_schema(index["KeySchema"]), index["Projection"]["ProjectionType"])
        for index in table.get("GlobalSecondaryIndexes", [])
    }
    assert deployed_indexes == {name: (keys, "ALL") for name, keys in indexes.items()}


def test_the_deployed_tables_are_exactly_the_templates(local_aws: LocalAws) -> None:
    declared = {
        logical_id: resource["Properties"]
        for logical_id, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    deployed = {
        logical_id: physical_id
        for logical_id, (resource_type, physical_id) in local_aws.resources.items()
        if resource_type == "AWS::DynamoDB::Table"
    }
    assert deployed.keys() == declared.keys()
    dynamodb = local_aws.client("dynamodb")
    for logical_id, properties in declared.items():
        table = dynamodb.describe_table(TableName=deployed[logical_id])["Table"]
        assert table["KeySchema"] == properties["KeySchema"]
        assert sorted(table["AttributeDefinitions"], key=str) == sorted(properties["AttributeDefinitions"], key=str)


@pytest.mark.parametrize(("queue", "dead_letter_queue"), sorted(WORK_QUEUES.items()))
def test_every_work_queue_redrives_to_its_own_dead_letter_queue_after_five_receives(
    local_aws: LocalAws, aws_env: dict[str, str], queue: str, dead_letter_queue: str
) -> None:
    queue_url, dlq_url = local_aws.outputs[queue], local_aws.outputs[dead_letter_queue]
    attributes = queue_attributes(local_aws, queue_url)
    dlq_attributes = queue_attributes(local_aws, dlq_url)
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_attributes["QueueArn"],
        "maxReceiveCount": 5,
    }
    assert attributes["VisibilityTimeout"] == "360" and attributes["SqsManagedSseEnabled"] == "true"
    assert dlq_attributes["MessageRetentionPeriod"] == FOURTEEN_DAYS

    sqs = local_aws.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"retailer_id": "SKU-1"}')
    for _ in range(5):  # five failed attempts: received, never deleted, visible again at once
        assert len(sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0).get("Messages", [])) == 1
    assert sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0).get("Messages", []) == []
    moved = sqs.receive_message(QueueUrl=dlq_url)["Messages"]
    assert [message["Body"] for message in moved] == ['{"retailer_id": "SKU-1"}']


def test_the_reasoned_dead_letter_queue_keeps_messages_fourteen_days(local_aws: LocalAws) -> None:
    attributes = queue_attributes(local_aws, local_aws.outputs["DeadLetterQueueUrl"])
    assert attributes["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert "RedrivePolicy" not in attributes  # handlers put records here themselves; nothing drains it


def test_every_deployed_function_has_its_log_group_with_the_default_retention(local_aws: LocalAws) -> None:
    groups = local_aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/stocksync-local/")
    retention = {group["logGroupName"].rsplit("/", 1)[-1]: group["retentionInDays"] for group in groups["logGroups"]}
    deployed = [name for name, (kind, _) in local_aws.resources.items() if kind == "AWS::Lambda::Function"]
    # moto keeps the String parameter's "30" where CloudFormation would pass the number.
    assert len(retention) == len(deployed) and {int(days) for days in retention.values()} == {30}


def test_the_bus_accepts_events(local_aws: LocalAws) -> None:
    events = local_aws.client("events")
    bus_name = local_aws.outputs["EventBusName"]
    assert events.describe_event_bus(Name=bus_name)["Name"] == bus_name
    answer = events.put_events(
        Entries=[{"EventBusName": bus_name, "Source": "com.example.merchant", "DetailType": "t", "Detail": "{}"}]
    )
    assert answer["FailedEntryCount"] == 0


def test_the_function_environment_is_valid_settings_pointing_at_real_resources(local_aws: LocalAws) -> None:
    environment = local_aws.function_environment()
    settings = Settings.from_env(environment)

    parameters = load_template()["Parameters"]
    assert settings.catalog_id == "1001" and settings.cms_id == "2001"
    assert settings.graph_api_version == parameters["GraphApiVersion"]["Default"]
    assert settings.default_bucket == parameters["DefaultBucket"]["Default"]
    for bucket in ("fast", "medium", "slow"):
        prefix = bucket.capitalize()
        assert settings.bucket(bucket).sweep_rate == parameters[f"{prefix}SweepRate"]["Default"]
        assert settings.bucket(bucket).threshold == int(parameters[f"{prefix}Threshold"]["Default"])
        assert settings.bucket(bucket).min_units_per_hour == float(parameters[f"{prefix}MinUnitsPerHour"]["Default"])
    assert environment["POWERTOOLS_SERVICE_NAME"] == local_aws.stack_name  # metrics and logs name their stack
    assert environment["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert environment["AWS_ENDPOINT_URL"] == local_aws.endpoint_url
    assert environment["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")

    dynamodb = local_aws.client("dynamodb")
    tables = (settings.sku_table, settings.orders_table, settings.batches_table, settings.control_table)
    for table in (*tables, settings.idempotency_table):
        assert dynamodb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    for queue_url in (settings.recompute_queue_url, settings.push_queue_url, settings.verify_queue_url):
        assert "QueueArn" in queue_attributes(local_aws, queue_url)
    assert settings.dead_letter_queue_url == local_aws.outputs["DeadLetterQueueUrl"]
    assert settings.event_bus_name == local_aws.outputs["EventBusName"]


def test_function_environment_overrides_win(local_aws: LocalAws) -> None:
    environment = local_aws.function_environment({"STOCKSYNC_GRAPH_BASE_URL": "http://127.0.0.1:9", "EXTRA": "1"})
    assert environment["STOCKSYNC_GRAPH_BASE_URL"] == "http://127.0.0.1:9" and environment["EXTRA"] == "1"
    assert local_aws.function_environment()["STOCKSYNC_GRAPH_BASE_URL"] == "https://graph.facebook.com"


def test_aws_env_applies_the_environment_and_product_clients_reach_moto(
    local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    table = aws_env["CONTROL_TABLE"]
    product_aws.client("dynamodb").put_item(TableName=table, Item={"name": {"S": "probe"}})
    item = local_aws.client("dynamodb").get_item(TableName=table, Key={"name": {"S": "probe"}})
    assert item["Item"] == {"name": {"S": "probe"}}


def test_reset_data_empties_every_table_index_and_queue(local_aws: LocalAws, aws_env: dict[str, str]) -> None:
    dynamodb, sqs = local_aws.client("dynamodb"), local_aws.client("sqs")
    tables = [physical for kind, physical in local_aws.resources.values() if kind == "AWS::DynamoDB::Table"]
    queues = [physical for kind, physical in local_aws.resources.values() if kind == "AWS::SQS::Queue"]
    for table in tables:
        description = dynamodb.describe_table(TableName=table)["Table"]
        types = {
            attribute["AttributeName"]: attribute["AttributeType"] for attribute in description["AttributeDefinitions"]
        }
        item = {name: {kind: "7"} for name, kind in types.items()}  # every key and index attribute set
        dynamodb.put_item(TableName=table, Item=item)
    for queue_url in queues:
        sqs.send_message(QueueUrl=queue_url, MessageBody="visible")
        sqs.send_message(QueueUrl=queue_url, MessageBody="delayed", DelaySeconds=60)
        sqs.send_message(QueueUrl=queue_url, MessageBody="in flight")
        sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)

    local_aws.reset_data()
    local_aws.reset_data()  # twice in a row, as consecutive tests do: moto's 60 s purge limit must not apply

    for table in tables:
        assert dynamodb.scan(TableName=table)["Items"] == []
    sku_index = dynamodb.query(
        TableName=aws_env["SKU_TABLE"],
        IndexName="bucket-index",
        KeyConditionExpression="bucket = :bucket",
        ExpressionAttributeValues={":bucket": {"S": "7"}},
    )
    assert sku_index["Items"] == []
    counts = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    )
    for queue_url in queues:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(counts))["Attributes"]
        assert {name: attributes[name] for name in counts} == dict.fromkeys(counts, "0")


def test_graph_credentials_are_stored_where_the_environment_points_and_can_rotate(local_aws: LocalAws) -> None:
    reference = local_aws.function_environment()["STOCKSYNC_GRAPH_CREDENTIALS"]
    assert reference == "secretsmanager:stocksync/graph-api"
    secrets = local_aws.client("secretsmanager")

    first = local_aws.put_graph_credentials("token-1", "secret-1")
    second = local_aws.put_graph_credentials("token-2", "secret-1")

    assert first == second
    stored = json.loads(secrets.get_secret_value(SecretId="stocksync/graph-api")["SecretString"])
    assert stored == {"access_token": "token-2", "app_secret": "secret-1"}


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [({"CatalogId": "shop"}, "CatalogId"), ({"FastThreshold": "-1"}, "FastThreshold"), ({"Nope": "1"}, "Nope")],
)
def test_an_override_a_real_deploy_would_refuse_fails_before_anything_starts(
    overrides: dict[str, str], parameter: str
) -> None:
    aws = LocalAws(parameter_overrides=overrides, stack_name="stocksync-refused")
    with pytest.raises(ConfigurationError) as raised:
        aws.start()
    assert raised.value.setting == parameter
    with pytest.raises(LocalAwsError, match="not started"):
        _ = aws.endpoint_url


# ------------------------------------------------------------------ a stack with a function
PROBE_FUNCTION = """
  LocalAwsProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/local_aws_probe
      Handler: app.lambda_handler
      Environment:
        Variables:
          POWERTOOLS_SERVICE_NAME: probe
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt PushQueue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
"""


def copy_of_the_project(root: Path, *, with_probe_code: bool = True) -> Path:
    """template.yaml plus PROBE_FUNCTION under ``root``, with links to the real layer and function folders."""
    template = TEMPLATE_PATH.read_text(encoding="utf-8").replace("\nResources:\n", "\nResources:" + PROBE_FUNCTION, 1)
    (root / "template.yaml").write_text(template, encoding="utf-8")
    (root / "layers").symlink_to(REPO_ROOT / "layers")
    (root / "functions").mkdir()
    for folder in (REPO_ROOT / "functions").iterdir():
        if folder.is_dir():
            (root / "functions" / folder.name).symlink_to(folder)
    if with_probe_code:
        (root / "functions" / "local_aws_probe").mkdir()
        (root / "functions" / "local_aws_probe" / "app.py").write_text(
            "def lambda_handler(event, context):\n    return {}\n"
        )
    return root / "template.yaml"


@pytest.fixture(scope="module")
def stack_with_a_function(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """The real template plus one SQS-triggered function, deployed with overrides (a second stack, same moto)."""
    template = copy_of_the_project(tmp_path_factory.mktemp("stack"))
    overrides = {"CatalogId": "777", "FastThreshold": "9", "LogLevel": "DEBUG"}
    with LocalAws(template, parameter_overrides=overrides, stack_name="stocksync-probe") as aws:
        yield aws


def function_configuration(aws: LocalAws, logical_id: str = "LocalAwsProbeFunction") -> dict[str, Any]:
    resource_type, function_name = aws.resources[logical_id]
    assert resource_type == "AWS::Lambda::Function"
    return aws.client("lambda").get_function_configuration(FunctionName=function_name)


def test_the_resolved_environment_is_what_a_deployed_function_gets(stack_with_a_function: LocalAws) -> None:
    variables = function_configuration(stack_with_a_function)["Environment"]["Variables"]
    deployed = {name: str(value) for name, value in variables.items()}  # moto keeps Number parameters as numbers
    resolved = stack_with_a_function.function_environment()

    # The order webhook function's own variables are resolved too (the local tools run every function in one
    # process); the probe function does not get them, as in AWS.
    webhook = function_configuration(stack_with_a_function, "OrderWebhookFunction")["Environment"]["Variables"]
    own = {name: value for name, value in webhook.items() if name not in deployed}
    assert set(own) == {"WEBHOOK_QUEUE_URL", "WEBHOOK_SECRET_NAME"}
    assert deployed == {
        **{name: value for name, value in resolved.items() if not name.startswith("AWS_") and name not in own},
        "POWERTOOLS_SERVICE_NAME": "probe",  # the function's own variable wins over Globals, as in AWS
    }
    assert {name: resolved[name] for name in own} == own
    settings = Settings.from_env(resolved)
    assert settings.catalog_id == "777" and settings.bucket("fast").threshold == 9
    assert resolved["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert resolved["SKU_TABLE"].startswith("stocksync-probe-SkuTable-")


def test_a_functions_code_is_deployed_and_its_queue_keeps_messages_for_the_tests(
    stack_with_a_function: LocalAws,
) -> None:
    configuration = function_configuration(stack_with_a_function)
    assert configuration["Handler"] == "app.lambda_handler" and configuration["CodeSize"] > 0

    lambda_client = stack_with_a_function.client("lambda")
    mappings = lambda_client.list_event_source_mappings(FunctionName=configuration["FunctionName"])
    assert [mapping["State"] for mapping in mappings["EventSourceMappings"]] == ["Disabled"]
    assert mappings["EventSourceMappings"][0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]

    push_queue = stack_with_a_function.function_environment()["PUSH_QUEUE_URL"]
    sqs = stack_with_a_function.client("sqs")
    sqs.send_message(QueueUrl=push_queue, MessageBody="for the test, not for moto's Docker-less Lambda")
    received = sqs.receive_message(QueueUrl=push_queue)["Messages"]
    assert [message["Body"] for message in received] == ["for the test, not for moto's Docker-less Lambda"]


def test_a_missing_code_folder_is_named(tmp_path: Path) -> None:
    template = copy_of_the_project(tmp_path, with_probe_code=False)
    with pytest.raises(LocalAwsError, match=r"LocalAwsProbeFunction: code folder .*functions/local_aws_probe does not"):
        LocalAws(template, stack_name="stocksync-missing-code").start()


def test_tests_reach_this_machine_only(local_aws: LocalAws) -> None:
    host, port = local_aws.endpoint_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5):
        pass
    with pytest.raises(SocketBlockedError, match=r"192\.0\.2\.1"), socket.socket() as outside:
        outside.settimeout(2)  # without the guard: a timeout, not a hang
        outside.connect(("192.0.2.1", 443))  # TEST-NET-1: documentation only, never routed


def test_an_events_only_stack_has_no_poller_and_its_functions_start_without_a_merchant_settings_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    overrides = {"OrderSources": "events", "CommerceMerchantSettingsId": ""}
    with LocalAws(parameter_overrides=overrides, stack_name="stocksync-events-only") as aws:
        assert "PollOrdersFunction" in aws.skipped_resources and "PollOrdersFunction" not in aws.resources
        assert "OrderEventsFunction" in aws.resources
        environment = aws.function_environment()
        assert environment["STOCKSYNC_CMS_ID"] == ""
        assert Settings.from_env(environment).cms_id == ""
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            load_function("order_events")  # starts: it never needed the id
            with pytest.raises(ConfigurationError, match="STOCKSYNC_CMS_ID"):
                load_function("poll_orders")  # were it deployed anyway, it would say what is missing at once
        finally:
            get_settings.cache_clear()


def test_a_rule_whose_target_is_gone_stops_no_other_rule(local_aws: LocalAws) -> None:
    """EventBridge keeps a failed delivery to its rule; moto stopped at the first one (moto_fixes), so an S3 upload
    never reached the snapshot queue once an earlier stack had left a rule behind."""
    events, sqs = local_aws.client("events"), local_aws.client("sqs")
    bus = events.create_event_bus(Name="test-rules-alone")["EventBusArn"]
    gone = sqs.create_queue(QueueName="test-rules-gone")["QueueUrl"]
    kept = sqs.create_queue(QueueName="test-rules-kept")["QueueUrl"]
    pattern = json.dumps({"source": ["test.rules"]})
    try:
        for name, url in (("a-gone", gone), ("b-kept", kept)):
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern)
            events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        sqs.delete_queue(QueueUrl=gone)
        answer = events.put_events(
            Entries=[{"EventBusName": bus, "Source": "test.rules", "DetailType": "x", "Detail": "{}"}]
        )
        assert answer["FailedEntryCount"] == 0
        received = sqs.receive_message(QueueUrl=kept, WaitTimeSeconds=1).get("Messages", [])
        assert len(received) == 1
    finally:
        for name in ("a-gone", "b-kept"):
            events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
            events.delete_rule(Name=name, EventBusName=bus)
        events.delete_event_bus(Name="test-rules-alone")
        sqs.delete_queue(QueueUrl=kept)
