"""What an operator is paged for and looks at (issue 17): every function's errors, every work queue's age,
over-selling, catalog drift, the over-selling events, and a dashboard of metrics the code really emits. Checked
offline on the translated template (moto's CloudFormation creates no alarms), and the over-selling rule's pattern
against moto's EventBridge with the event the product puts on its bus.
"""

from __future__ import annotations

import inspect
import json
import re
import uuid
from functools import cache
from typing import Any

from stocksync.integrations import messaging, recompute_io
from stocksync.logic.overselling import OverSellingResponder
from stocksync.models.settings import get_settings
from stocksync.wiring import parts
from stocksync_dev.local.aws import LocalAws
from stocksync_dev.local.template import REPO_ROOT, load_template, translate_template

STACK = {"Ref": "AWS::StackName"}


@cache
def translated() -> dict[str, Any]:
    return translate_template()


def resources_of(resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in translated()["Resources"].items() if r["Type"] == resource_type}


def alarms() -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources_of("AWS::CloudWatch::Alarm").items()}


@cache
def emitted_metric_names() -> set[str]:
    """Every custom metric name the runtime code emits: ``name="X"`` in a metrics call, and the latency names
    verify_batch builds from its percentiles (``f"ChangeToConfirmLatency{name}"``)."""
    names: set[str] = set()
    for folder in ("layers/stocksync/stocksync", "functions"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            names |= set(re.findall(r"(?:add_metric|single_metric)\(\s*name=\"([A-Za-z]+)\"", text))
            if 'f"ChangeToConfirmLatency{name}"' in text:
                names |= {f"ChangeToConfirmLatency{p}" for p in re.findall(r"\(\"(P\d\d)\", latency\.", text)}
    return names


@cache
def emitted_dimension_names() -> set[str]:
    """Dimension names the code adds to its metrics, and Powertools' own ``service``."""
    names = {"service"}
    for path in (REPO_ROOT / "layers/stocksync/stocksync").rglob("*.py"):
        names |= set(re.findall(r"add_dimension\(name=\"([A-Za-z]+)\"", path.read_text(encoding="utf-8")))
    return names


def test_the_emitted_names_are_found_at_all() -> None:
    """The scan below is only worth something if it sees the metrics it is meant to: a few known ones."""
    assert {"SkusOverSold", "ItemsPushed", "CatalogDrift", "ChangeToConfirmLatencyP95"} <= emitted_metric_names()
    assert {"bucket", "trigger", "ErrorCode"} <= emitted_dimension_names()


# ------------------------------------------------------------------ errors and queue ages
def test_every_function_has_an_errors_alarm_under_the_functions_own_condition() -> None:
    """Scheduled runs are asynchronous and queue-triggered runs retry quietly: a function failing on every invocation
    is otherwise only a metric. Each alarm exists exactly when its function does."""
    functions = {
        name: r for name, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert len(functions) >= 16
    watched: dict[str, str] = {}
    for name, alarm in alarms().items():
        if (alarm.get("Namespace"), alarm.get("MetricName")) == ("AWS/Lambda", "Errors"):
            [dimension] = alarm["Dimensions"]
            assert dimension["Name"] == "FunctionName"
            watched[dimension["Value"]["Ref"]] = name
            assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), name
            assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    assert sorted(watched) == sorted(functions)
    for function, alarm_name in watched.items():
        assert translated()["Resources"][alarm_name].get("Condition") == functions[function].get("Condition"), function


def work_queues() -> dict[str, dict[str, Any]]:
    """Queues a function reads (an SQS event source), which are not dead-letter queues."""
    queues: dict[str, dict[str, Any]] = {}
    for function in load_template()["Resources"].values():
        for event in function.get("Properties", {}).get("Events", {}).values():
            if function["Type"] == "AWS::Serverless::Function" and event["Type"] == "SQS":
                name = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                queues[name] = translated()["Resources"][name]
    return queues


def test_every_work_queue_alarms_when_its_oldest_message_is_too_old() -> None:
    queues = work_queues()
    assert {"RecomputeQueue", "PushQueue", "VerifyQueue", "CatalogReadQueue", "OrderEventsQueue"} <= queues.keys()
    watched = {}
    for name, alarm in alarms().items():
        if (alarm.get("Namespace"), alarm.get("MetricName")) == ("AWS/SQS", "ApproximateAgeOfOldestMessage"):
            [dimension] = alarm["Dimensions"]
            watched[dimension["Value"]["Fn::GetAtt"][0]] = name
            assert alarm["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"} and alarm["Statistic"] == "Maximum", name
            assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
    assert sorted(watched) == sorted(queues)
    for queue, alarm_name in watched.items():
        assert translated()["Resources"][alarm_name].get("Condition") == queues[queue].get("Condition"), queue


# ------------------------------------------------------------------ over-selling and drift
def metric_math_inputs(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["MetricStat"]["Metric"] for entry in alarm["Metrics"] if "MetricStat" in entry]


def dimensions_of(metric: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric["Dimensions"]}


def test_the_over_selling_alarm_sums_every_bucket_and_trigger_the_recompute_reports() -> None:
    alarm = alarms()["OverSellingAlarm"]
    inputs = metric_math_inputs(alarm)
    assert {(m["Namespace"], m["MetricName"]) for m in inputs} == {("StockSync", "SkusOverSold")}
    assert "SkusOverSold" in emitted_metric_names()
    seen = {(dimensions_of(m)["bucket"], dimensions_of(m)["trigger"]) for m in inputs}
    assert all(dimensions_of(m)["service"] == STACK for m in inputs)
    buckets = {"fast", "medium", "slow"}  # STOCKSYNC_BUCKETS' keys (test_template_resources checks them)
    triggers = set(re.findall(r'report_run\(.*trigger="([a-z_]+)"', _wiring_text()))
    assert triggers == {"queue", "sweep"}
    assert seen == {(b, t) for b in buckets for t in triggers}
    [expression] = [e for e in alarm["Metrics"] if "Expression" in e]
    assert expression["ReturnData"] is True
    assert set(re.findall(r"[a-z]+", expression["Expression"].split("(", 1)[1])) == {
        e["Id"] for e in alarm["Metrics"] if "MetricStat" in e
    }
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_drift_alarm_watches_what_the_audit_reports_above_its_parameter() -> None:
    alarm = alarms()["CatalogDriftAlarm"]
    inputs = metric_math_inputs(alarm)
    assert {m["MetricName"] for m in inputs} == {"CatalogDrift"} <= emitted_metric_names()
    assert 'report_reads(check.report, trigger="audit")' in _wiring_text()
    assert {dimensions_of(m)["bucket"] for m in inputs} == {"fast", "medium", "slow"}
    assert {dimensions_of(m)["trigger"] for m in inputs} == {"audit"}
    assert alarm["Threshold"] == {"Ref": "CatalogDriftAlarmThreshold"}


def _wiring_text() -> str:
    return "\n".join(p.read_text() for p in (REPO_ROOT / "layers/stocksync/stocksync/wiring").glob("*.py"))


def test_custom_metric_alarms_watch_this_stacks_service_dimension() -> None:
    """The functions' service name is the stack's name, so two stacks in one account never alarm on each other."""
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == STACK
    for name, alarm in alarms().items():
        metrics = metric_math_inputs(alarm) if "Metrics" in alarm else [alarm]
        for metric in metrics:
            if metric["Namespace"] == "StockSync":
                assert dimensions_of(metric)["service"] == STACK, name
                assert metric["MetricName"] in emitted_metric_names(), name


def test_over_selling_events_reach_the_alarm_topic_which_lets_them_in() -> None:
    rule = translated()["Resources"]["OverSellingRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": [inspect.signature(messaging.BusPublisher).parameters["source"].default],
        "detail-type": [recompute_io.OVER_SELLING_DETAIL_TYPE],
    }
    assert rule["EventBusName"] == {"Fn::GetAtt": ["StockSyncBus", "Name"]}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": "AlarmTopic"}
    detail_keys = set(re.findall(r'"([a-z_]+)":', inspect.getsource(OverSellingResponder._detail)))
    for path in target["InputTransformer"]["InputPathsMap"].values():
        assert path.startswith("$.detail.") and path.removeprefix("$.detail.") in detail_keys, path
    # The topic's policy lets the rule (and the alarms) publish, and its key lets EventBridge encrypt.
    policy = translated()["Resources"]["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    statements = {}
    for entry in policy["PolicyDocument"]["Statement"]:
        statement = entry
        if "Fn::If" in entry:  # the rule's statement exists exactly when the rule does
            condition, statement, otherwise = entry["Fn::If"]
            assert condition == translated()["Resources"]["OverSellingRule"]["Condition"] == "SendsOverSellingEvents"
            assert otherwise == {"Ref": "AWS::NoValue"}
        statements[statement["Principal"]["Service"]] = statement
    assert statements["events.amazonaws.com"]["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["OverSellingRule", "Arn"]}}
    }
    assert statements["cloudwatch.amazonaws.com"]["Action"] == "sns:Publish"
    key = translated()["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    events = [s for s in key if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert [s["Action"] for s in events] == [["kms:Decrypt", "kms:GenerateDataKey*"]]


def test_the_product_s_over_selling_event_reaches_the_alarm_topic_as_one_line(
    local_aws: LocalAws, aws_env: dict[str, str]
) -> None:
    """The event the recompute puts, through its real publisher, goes through the deployed rule (moto_fixes hands a
    rule's topic targets to moto's SNS) to a queue subscribed to the alarm topic, as the line an operator reads."""
    sqs, sns = local_aws.client("sqs"), local_aws.client("sns")
    topic = local_aws.outputs["AlarmTopicArn"]
    queue_url = sqs.create_queue(QueueName=f"alarm-topic-probe-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    try:
        detail = {
            "retailer_id": "SKU-OVER",
            "bucket": "fast",
            "shortfall": 3,
            "orders_at_risk_total": 2,
            "detected_at": "2026-12-04T10:00:00+00:00",
        }
        alerts = recompute_io.BusOverSellingAlerts(parts.bus(get_settings()))
        alerts.over_sold([detail])
        parts.bus(get_settings()).put("Order Changed", [{"order_id": "not an over-selling event"}])
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    finally:
        sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=queue_url)
    [message] = messages
    line = json.loads(message["Body"])["Message"]
    assert line.startswith("stocksync over-selling: SKU-OVER is short 3 units (bucket fast, 2 orders at risk"), line
    assert "stocksync explain SKU-OVER" in line


# ------------------------------------------------------------------ dashboard
def dashboard_body() -> str:
    body = translated()["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return body[0] if isinstance(body, list) else body


def dashboard_metrics() -> list[tuple[str, str, tuple[str, ...]]]:
    """(namespace, metric name, dimension names) of every metric the dashboard shows, from its metric arrays and
    its SEARCH expressions."""
    # The numbers Fn::Sub puts in (annotations) are placeholders here: any number makes it JSON.
    widgets = json.loads(re.sub(r"\$\{(\w+)\}(?=\}|\s*\])", "0", dashboard_body()))["widgets"]
    found = []
    for widget in widgets:
        for line in widget["properties"]["metrics"]:
            if isinstance(line[0], dict):
                search = re.fullmatch(
                    r"SEARCH\('\{([^}]+)\} MetricName=\"(\w+)\" service=\"\$\{AWS::StackName\}\"', '\w+', \d+\)",
                    line[0]["expression"],
                )
                assert search, line
                namespace, *dimensions = search[1].split(",")
                found.append((namespace, search[2], tuple(dimensions)))
            else:
                strings = [item for item in line if isinstance(item, str)]
                namespace, name, *pairs = strings
                found.append((namespace, name, tuple(pairs[0::2])))
    return found


def test_every_metric_on_the_dashboard_is_one_the_code_or_aws_emits() -> None:
    metrics = dashboard_metrics()
    assert len(metrics) >= 30
    aws_metrics = {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage")}
    for namespace, name, dimensions in metrics:
        if namespace == "StockSync":
            assert name in emitted_metric_names(), name
            assert "service" in dimensions and set(dimensions) <= emitted_dimension_names(), (name, dimensions)
        else:
            assert (namespace, name) in aws_metrics and dimensions == ("QueueName",), (namespace, name)
    shown = {name for _, name, _ in metrics}
    for wanted in ("SkusOverSold", "SkusAtZero", "ItemsPushed", "ItemsConfirmed", "ChangeToConfirmLatencyP95"):
        assert wanted in shown
    assert {"SlotsUsedInHour", "PushErrors", "SecondsSinceCompleteListing", "CatalogDrift"} <= shown


def test_the_dashboard_shows_every_dead_letter_and_work_queue_and_its_url_is_an_output() -> None:
    body = dashboard_body()
    dlqs = {n for n in resources_of("AWS::SQS::Queue") if n.endswith("DeadLetterQueue")}
    conditional = {"WebhookDeadLetterQueue", "ShopifyOrdersDeadLetterQueue", "WebhookQueue", "ShopifyOrdersQueue"}
    schedule_only = {n for n in dlqs if "Schedule" in n}  # the scheduler's: alarmed, not graphed
    for queue in (dlqs | set(work_queues())) - conditional - schedule_only:
        assert f"${{{queue}.QueueName}}" in body, queue
    variables = translated()["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][1]
    assert {v["Fn::If"][1]["Fn::GetAtt"][0] for v in variables.values()} == conditional
    assert "${OperationsDashboard}" in translated()["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_the_dashboard_name_carries_the_stack_name() -> None:
    name = translated()["Resources"]["OperationsDashboard"]["Properties"]["DashboardName"]
    assert name == {"Fn::Sub": "${AWS::StackName}-stocksync"}
