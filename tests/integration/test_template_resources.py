"""Rules every resource of template.yaml follows, checked offline on the template (moto creates no alarms and
ignores TTL, point-in-time recovery and SSE, so the deployed stack cannot show them), and the parameters'
constraints checked against what the functions' Settings accept.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksync.errors import ConfigurationError
from stocksync.models.settings import Settings
from stocksync_dev.local.template import REPO_ROOT, load_template, parameter_values, translate_template

REQUIRED_PARAMETERS = {"CatalogId": "1001", "CommerceMerchantSettingsId": "2001"}
FOURTEEN_DAYS = 14 * 24 * 3600


@cache
def sam_template() -> dict[str, Any]:
    return load_template()


@cache
def translated() -> dict[str, Any]:
    return translate_template()


def resources_of(resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in translated()["Resources"].items() if r["Type"] == resource_type}


def dead_letter_queues() -> set[str]:
    """Every queue named as a dead-letter target (queue redrive, schedule or rule target DeadLetterConfig), plus
    the reasoned dead-letter queue that handlers write to themselves.
    """
    targets: set[str] = {"DeadLetterQueue"}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"deadLetterTargetArn", "DeadLetterConfig"}:
                    arn = value if key == "deadLetterTargetArn" else value["Arn"]
                    targets.add(arn["Fn::GetAtt"][0])
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(translated()["Resources"])
    return targets


def without_branches_on(condition: str, node: Any) -> Any:
    """``node`` with every ``Fn::If`` on ``condition`` replaced by its else branch: what exists when it is false."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"] and node["Fn::If"][0] == condition:
            return without_branches_on(condition, node["Fn::If"][2])
        return {key: without_branches_on(condition, value) for key, value in node.items()}
    if isinstance(node, list):
        return [without_branches_on(condition, item) for item in node]
    return node


# ------------------------------------------------------------------ tables
def test_every_table_is_on_demand_encrypted_recoverable_and_expires_items() -> None:
    tables = resources_of("AWS::DynamoDB::Table")
    assert {"SkuTable", "OrdersTable", "BatchesTable", "ControlTable", "IdempotencyTable"} <= tables.keys()
    for name, table in tables.items():
        properties = table["Properties"]
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert properties["SSESpecification"] == {"SSEEnabled": True}, name
        assert properties["TimeToLiveSpecification"]["Enabled"] is True, name


@pytest.mark.parametrize(
    ("table", "ttl_attribute", "retained"),
    [
        ("SkuTable", "expires_at", True),
        ("OrdersTable", "expires_at", True),
        ("BatchesTable", "expires_at", True),
        ("ControlTable", "expires_at", True),
        ("IdempotencyTable", "expiration", False),  # the attribute Powertools Idempotency writes
    ],
)
def test_each_table_expires_on_its_attribute_and_keeps_stock_state_on_replacement(
    table: str, ttl_attribute: str, retained: bool
) -> None:
    resource = resources_of("AWS::DynamoDB::Table")[table]
    assert resource["Properties"]["TimeToLiveSpecification"]["AttributeName"] == ttl_attribute
    policy = "Retain" if retained else "Delete"
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (policy, policy)


# ------------------------------------------------------------------ queues and alarms
def test_every_queue_is_encrypted_and_every_work_queue_has_its_own_dead_letter_queue() -> None:
    queues = resources_of("AWS::SQS::Queue")
    work_queues = {name: q for name, q in queues.items() if name not in dead_letter_queues()}
    assert {"PushQueue", "RecomputeQueue", "VerifyQueue"} <= work_queues.keys()
    for name, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name
    targets = []
    for name, queue in work_queues.items():
        redrive = queue["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == 5, name
        targets.append(redrive["deadLetterTargetArn"]["Fn::GetAtt"])
    assert sorted(targets) == sorted([[f"{name[: -len('Queue')]}DeadLetterQueue", "Arn"] for name in work_queues])


def test_a_message_stays_invisible_while_its_function_may_still_run() -> None:
    """AWS: a queue's visibility timeout should be at least six times its function's timeout, or a message whose
    batch is still running (or retrying) is delivered to a second invocation.
    """
    resources = translated()["Resources"]
    mappings = resources_of("AWS::Lambda::EventSourceMapping").values()
    for mapping in mappings:
        queue = mapping["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        function = mapping["Properties"]["FunctionName"]["Ref"]
        timeout = resources[function]["Properties"]["Timeout"]
        assert resources[queue]["Properties"]["VisibilityTimeout"] >= 6 * timeout, (queue, function)


def test_every_scheduled_function_alarms_on_its_errors() -> None:
    """A scheduled run is an asynchronous invocation: once Lambda's retries are spent, a failure is only a metric."""
    scheduled = {
        name
        for name, function in sam_template()["Resources"].items()
        if function["Type"] == "AWS::Serverless::Function"
        and any(
            event["Type"] in ("Schedule", "ScheduleV2") for event in function["Properties"].get("Events", {}).values()
        )
    }
    assert {"PollOrdersFunction", "ReconcileFunction"} <= scheduled
    watched = [
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in resources_of("AWS::CloudWatch::Alarm").values()
        if (alarm["Properties"].get("Namespace"), alarm["Properties"].get("MetricName")) == ("AWS/Lambda", "Errors")
    ]
    assert sorted(name for name in watched if name in scheduled) == sorted(scheduled)


def test_the_poll_stall_alarm_watches_the_metric_poll_orders_emits() -> None:
    alarm = translated()["Resources"]["PollStalledAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "StockSync",
        "SecondsSinceCompleteListing",
        "Maximum",
    )
    assert alarm["Threshold"] == {"Ref": "PollStallAlarmSeconds"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    # The functions' service name (POWERTOOLS_SERVICE_NAME) is the stack's name.
    assert alarm["Dimensions"] == [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]


def test_every_dead_letter_queue_keeps_messages_14_days_and_alarms_on_the_first_one() -> None:
    queues = resources_of("AWS::SQS::Queue")
    alarms = resources_of("AWS::CloudWatch::Alarm").values()
    for name in dead_letter_queues():
        assert queues[name]["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS
        assert "RedrivePolicy" not in queues[name]["Properties"]
        watching = [
            alarm["Properties"]
            for alarm in alarms
            if alarm["Properties"].get("Dimensions")
            == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [name, "QueueName"]}}]
        ]
        assert len(watching) == 1, name
        alarm = watching[0]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_rule_target_retries_then_dead_letters_to_the_bus_dead_letter_queue() -> None:
    """Without a DeadLetterConfig, an event EventBridge cannot hand to its target (a queue policy refusing it, SQS
    throttling) is dropped after the retries, silently: a stock level or a discontinued SKU lost (issue 16)."""
    rules = resources_of("AWS::Events::Rule")
    assert {"OrderEventsRule", "WarehouseEventsRule", "SkuSettingsRule", "SnapshotCreatedRule"} <= rules.keys()
    for name, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["BusDeadLetterQueue", "Arn"]}}, name
            retry = target["RetryPolicy"]
            assert 0 <= retry["MaximumRetryAttempts"] <= 185, name  # EventBridge's bounds
            assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400, name


def test_the_bus_dead_letter_queue_takes_messages_from_every_rule_and_nothing_else() -> None:
    policy = translated()["Resources"]["BusDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "BusDeadLetterQueue"}]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    allowed = set()
    for entry in statement["Condition"]["ArnEquals"]["aws:SourceArn"]:
        arn = entry
        if "Fn::If" in entry:  # a conditional rule: its ARN only when it exists
            condition, arn, otherwise = entry["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            assert translated()["Resources"][arn["Fn::GetAtt"][0]]["Condition"] == condition
        allowed.add(arn["Fn::GetAtt"][0])
    assert allowed == set(resources_of("AWS::Events::Rule"))


def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() -> None:
    """Encrypted at rest (issue 16), and not with alias/aws/sns, whose fixed policy keeps CloudWatch out: every
    alarm action on such a topic fails."""
    topic = translated()["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = translated()["Resources"]["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert [(s["Effect"], s["Action"]) for s in cloudwatch] == [("Allow", ["kms:Decrypt", "kms:GenerateDataKey*"])]
    # Every alarm notifies through that topic.
    actions = [alarm["Properties"]["AlarmActions"] for alarm in resources_of("AWS::CloudWatch::Alarm").values()]
    assert all(action == [{"Ref": "AlarmTopic"}] for action in actions)


def test_the_alarm_email_subscription_exists_only_when_an_address_is_given() -> None:
    subscription = translated()["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert translated()["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert sam_template()["Parameters"]["AlarmEmail"]["Default"] == ""


# ------------------------------------------------------------------ layer and functions
def test_functions_and_layer_agree_on_runtime_and_architecture() -> None:
    layer = sam_template()["Resources"]["StockSyncLayer"]
    function = sam_template()["Globals"]["Function"]
    assert function["Runtime"] == layer["Metadata"]["BuildMethod"] == "python3.13"
    assert layer["Properties"]["CompatibleRuntimes"] == [function["Runtime"]]
    assert function["Architectures"] == layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert function["Layers"] == [{"Ref": "StockSyncLayer"}]
    assert function["Tracing"] == "Active"
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    assert (content / "stocksync" / "__init__.py").is_file() and (content / "requirements.txt").is_file()


# CloudWatch Logs' accepted RetentionInDays values (PutRetentionPolicy).
LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922]
LOG_RETENTION_DAYS += [3288, 3653]


def test_every_function_logs_to_its_own_log_group_kept_for_the_retention_parameter() -> None:
    """Lambda's default log groups keep everything forever (issue 16): each function names a group of the stack,
    under the function's own condition, whose retention is LogRetentionDays."""
    functions = resources_of("AWS::Lambda::Function")
    groups = resources_of("AWS::Logs::LogGroup")
    assert len(functions) == 16
    used = []
    for name, function in functions.items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        used.append(group)
        assert groups[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        assert groups[group].get("Condition") == function.get("Condition"), name
        folder = sam_template()["Resources"][name]["Properties"]["CodeUri"].strip("/").split("/")[-1]
        assert groups[group]["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{folder}"}
    assert sorted(used) == sorted(groups)  # one group per function, none shared or left over
    parameter = sam_template()["Parameters"]["LogRetentionDays"]
    assert [int(days) for days in parameter["AllowedValues"]] == LOG_RETENTION_DAYS
    assert int(parameter["Default"]) in LOG_RETENTION_DAYS


def test_the_functions_environment_holds_every_setting_and_only_known_names() -> None:
    variables = set(sam_template()["Globals"]["Function"]["Environment"]["Variables"])
    aliases = {field.alias: field.is_required() for field in Settings.model_fields.values()}
    assert {alias for alias, required in aliases.items() if required} <= variables
    libraries = {name for name in variables if name.startswith("POWERTOOLS_")} | {"PYDANTIC_DISABLE_PLUGINS"}
    assert variables - set(aliases) - libraries == set()  # a misspelled name would leave its setting at a default


def test_every_store_the_functions_use_is_an_output() -> None:
    outputs = sam_template()["Outputs"].values()
    referenced = {
        (value.get("Ref") or value.get("Fn::GetAtt", [None])[0]) for value in (output["Value"] for output in outputs)
    }
    stores = {
        name
        for name, resource in sam_template()["Resources"].items()
        if resource["Type"] in {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Events::EventBus", "AWS::SNS::Topic"}
    }
    assert stores <= referenced


# ------------------------------------------------------------------ parameters
def test_the_defaults_and_the_required_values_deploy() -> None:
    values = parameter_values(sam_template(), REQUIRED_PARAMETERS)
    assert values["FastSweepRate"] == "rate(5 minutes)" and values["MediumMinUnitsPerHour"] == "0.2"


def test_a_default_deploy_takes_order_events_and_needs_no_commerce_merchant_settings() -> None:
    values = parameter_values(sam_template(), {"CatalogId": "1001"})
    assert (values["OrderSources"], values["CommerceMerchantSettingsId"]) == ("events", "")


def test_the_poller_its_schedule_and_its_alarms_exist_only_with_the_meta_commerce_source() -> None:
    resources = sam_template()["Resources"]
    polling = {name for name, resource in resources.items() if resource.get("Condition") == "PollsMetaCommerce"}
    assert polling == {
        "PollOrdersFunction",
        "PollOrdersFunctionRole",
        "PollOrdersLogGroup",
        "OrderSourceRemovedAlarm",
        "PollStalledAlarm",
        "PollOrdersErrorsAlarm",
    }
    # Nothing left unconditional may name the poller (a Ref to a resource that is not created fails the deploy),
    # except in an Fn::If on the same condition (the bus dead-letter queue's policy lists the poll schedule's rule).
    others = json.dumps(
        without_branches_on("PollsMetaCommerce", {name: r for name, r in resources.items() if name not in polling})
    )
    assert "PollOrdersFunction" not in others
    # No alarm watches the poll's metric without a poller; the dashboard may graph it (an empty line, no reference).
    alarms_and_rules = {name: r for name, r in resources.items() if name not in polling | {"OperationsDashboard"}}
    assert "SecondsSinceCompleteListing" not in json.dumps(without_branches_on("PollsMetaCommerce", alarms_and_rules))
    outputs = json.dumps(sam_template().get("Outputs", {}))
    assert "PollOrdersFunction" not in outputs


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({}, "CatalogId"),
        ({"CatalogId": "my-shop"}, "CatalogId"),
        ({"CommerceMerchantSettingsId": "cms-1"}, "CommerceMerchantSettingsId"),
        ({"OrderSources": "shopify"}, "OrderSources"),
        ({"OrderSources": "meta_commerce", "CommerceMerchantSettingsId": ""}, "MetaCommerceNeedsItsMerchantSettings"),
        (
            {"OrderSources": "events,meta_commerce", "CommerceMerchantSettingsId": ""},
            "MetaCommerceNeedsItsMerchantSettings",
        ),
        ({"GraphApiVersion": "25.0"}, "GraphApiVersion"),
        ({"GraphBaseUrl": "graph.facebook.com"}, "GraphBaseUrl"),
        ({"GraphBaseUrl": "https://graph.facebook.com/"}, "GraphBaseUrl"),
        ({"GraphBaseUrl": "http://graph.facebook.com"}, "GraphBaseUrl"),  # the token in clear past this machine
        ({"GraphBaseUrl": "http://127.0.0.1.example.com"}, "GraphBaseUrl"),
        ({"GraphCredentialsSecretName": "stocksync graph"}, "GraphCredentialsSecretName"),
        ({"DeductionMode": "both"}, "DeductionMode"),
        ({"CatalogField": "quantity"}, "CatalogField"),
        ({"DefaultBucket": "turbo"}, "DefaultBucket"),
        ({"FastSweepRate": "rate(5 minute)"}, "FastSweepRate"),
        ({"MediumSweepRate": "rate(1 hours)"}, "MediumSweepRate"),
        ({"SlowSweepRate": 'cron(0 " * * ? *)'}, "SlowSweepRate"),
        ({"SlowSweepRate": "cron(0 12 * * ?)"}, "SlowSweepRate"),
        ({"FastThreshold": "-1"}, "FastThreshold"),
        ({"FastThreshold": "1.5"}, "FastThreshold"),
        ({"MediumThreshold": "03"}, "MediumThreshold"),
        ({"FastMinUnitsPerHour": ".5"}, "FastMinUnitsPerHour"),
        ({"SlowMinUnitsPerHour": "-0.1"}, "SlowMinUnitsPerHour"),
        ({"AlarmEmail": "ops at example.com"}, "AlarmEmail"),
        ({"LogLevel": "TRACE"}, "LogLevel"),
        ({"LogRetentionDays": "10"}, "LogRetentionDays"),
        ({"Region": "eu-west-1"}, "Region"),
    ],
)
def test_an_override_cloudformation_would_refuse_is_named(overrides: dict[str, str], parameter: str) -> None:
    values = {**REQUIRED_PARAMETERS, **overrides} if overrides else {}
    with pytest.raises(ConfigurationError) as raised:
        parameter_values(sam_template(), values)
    assert raised.value.setting == parameter


@pytest.mark.parametrize("url", ["https://graph.facebook.com", "http://127.0.0.1:8321", "http://localhost:8321"])
def test_the_graph_base_url_is_https_or_http_to_this_machine(url: str) -> None:
    assert parameter_values(sam_template(), {**REQUIRED_PARAMETERS, "GraphBaseUrl": url})["GraphBaseUrl"] == url


def resolve(value: Any, parameters: dict[str, str]) -> str:
    """A Globals environment value as CloudFormation resolves it; resources stand in as <LogicalId>."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return parameters.get(value["Ref"], f"<{value['Ref']}>")
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda match: parameters.get(match[1], f"<{match[1]}>"), value["Fn::Sub"])
    raise AssertionError(f"intrinsic not covered by this test: {value}")


def allowed_value(spec: dict[str, Any]) -> st.SearchStrategy[str]:
    if spec["Type"] == "Number":
        # CloudFormation takes any decimal within the bounds, fractions too: a setting that must be an integer
        # therefore has to be a patterned String parameter (see the test below), or this test finds the fraction.
        low, high = spec.get("MinValue", 0), spec.get("MaxValue", 10**9)
        whole = st.integers(math.ceil(low), math.floor(high)).map(str)
        decimals = st.decimals(Decimal(str(low)), Decimal(str(high)), places=2)
        return whole | decimals.map(lambda number: format(number.normalize(), "f"))
    if "AllowedValues" in spec:
        return st.sampled_from(spec["AllowedValues"])
    if "AllowedPattern" in spec:
        return st.from_regex(spec["AllowedPattern"], fullmatch=True)
    return st.just(str(spec.get("Default", "")))


def whole_number_parameters() -> dict[str, tuple[re.Pattern[str], int, int]]:
    """String parameters that stand for a whole number: their pattern and the range their description states."""
    result = {}
    for name, spec in sam_template()["Parameters"].items():
        stated = re.search(r"whole (?:number|seconds) from (\d+) to (\d+)", spec.get("ConstraintDescription", ""))
        if stated:
            result[name] = (re.compile(spec["AllowedPattern"]), int(stated[1]), int(stated[2]))
    return result


def test_integer_settings_are_patterned_string_parameters_not_numbers() -> None:
    """A Number parameter would let a deploy through with 1.5, which the functions refuse only at cold start."""
    integer_variables = {
        "STOCKSYNC_PUSH_REQUESTS_PER_CALL",
        "STOCKSYNC_BATCH_CALLS_PER_HOUR",
        "STOCKSYNC_SINGLE_UPDATE_MAX_SKUS",
        "STOCKSYNC_VERIFY_DELAY_SECONDS",
        "STOCKSYNC_VERIFY_MAX_CHECKS",
        "STOCKSYNC_STATUS_CHECKS_PER_HOUR",
        "STOCKSYNC_VELOCITY_WINDOW_HOURS",
        "STOCKSYNC_CONFIRMATION_TIMEOUT_SECONDS",
        "STOCKSYNC_POLL_OVERLAP_SECONDS",
    }
    variables = sam_template()["Globals"]["Function"]["Environment"]["Variables"]
    names = {variables[variable]["Ref"] for variable in integer_variables}
    assert names <= whole_number_parameters().keys()


@pytest.mark.parametrize("name", sorted(whole_number_parameters()))
def test_a_whole_number_parameter_accepts_exactly_its_stated_range(name: str) -> None:
    pattern, low, high = whole_number_parameters()[name]
    wrong = [n for n in range(0, high + 1_000) if bool(pattern.fullmatch(str(n))) != (low <= n <= high)]
    assert wrong == []
    for refused in ("1.5", f"{high}.0", "-1", f"0{max(low, 1)}", "", " 1", "1e3", "+1"):
        assert not pattern.fullmatch(refused), refused
    assert pattern.fullmatch(sam_template()["Parameters"][name]["Default"])


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {name: allowed_value(spec) for name, spec in sam_template()["Parameters"].items() if name != "AlarmEmail"}
    )
)
def test_every_parameter_value_a_deploy_accepts_gives_functions_valid_settings(overrides: dict[str, str]) -> None:
    if overrides["OrderSources"] != "events" and not overrides["CommerceMerchantSettingsId"]:
        with pytest.raises(ConfigurationError, match="CommerceMerchantSettingsId"):
            parameter_values(sam_template(), overrides)  # the template's rule refuses the deploy
        return
    parameters = parameter_values(sam_template(), overrides)
    variables = sam_template()["Globals"]["Function"]["Environment"]["Variables"]
    environment = {name: resolve(value, parameters) for name, value in variables.items()}

    settings_ = Settings.from_env(environment)

    assert (
        settings_.catalog_id == parameters["CatalogId"] and settings_.cms_id == parameters["CommerceMerchantSettingsId"]
    )
    assert settings_.default_bucket == parameters["DefaultBucket"]
    assert json.loads(environment["STOCKSYNC_BUCKETS"]).keys() == {"fast", "medium", "slow"}
    for bucket in ("fast", "medium", "slow"):
        prefix = bucket.capitalize()
        assert settings_.bucket(bucket).sweep_rate == parameters[f"{prefix}SweepRate"]
        assert settings_.bucket(bucket).threshold == int(parameters[f"{prefix}Threshold"])
        assert settings_.bucket(bucket).min_units_per_hour == float(parameters[f"{prefix}MinUnitsPerHour"])
