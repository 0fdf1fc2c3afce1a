"""Local AWS: moto in server mode with template.yaml deployed into it through CloudFormation.

Tests, the demo and the replay get their tables, queues and bus by deploying the real template, so nothing keeps a
second description of them that could drift. The handlers reach moto the way they reach AWS in Lambda: through
boto3 and the environment (``function_environment()``), with ``AWS_ENDPOINT_URL`` as the only difference.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3
from botocore.exceptions import ClientError, WaiterError
from moto.backends import get_backend
from moto.cloudformation.parsing import resource_class_from_type
from moto.server import ThreadedMotoServer

from stocksync_dev.local import in_process, moto_fixes, moto_speedups
from stocksync_dev.local.template import (
    ARTIFACT_BUCKET,
    TEMPLATE_PATH,
    LocalArtifact,
    load_template,
    local_artifacts,
    parameter_values,
    translate,
)

# Fake, and named so: moto accepts any credentials, and nothing here can reach a real account.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# The local stack polls the simulator's Commerce order API (it still serves v25.0) besides taking order events, and
# has the signed webhook endpoint, so every function can be replayed.
DEFAULT_PARAMETERS = {
    "CatalogId": "1001",
    "OrderSources": "events,meta_commerce",
    "CommerceMerchantSettingsId": "2001",
    "WebhookEndpoint": "function-url",
}
# The source each kind of event is sent with: the one the template's bus rules accept by default (OrderEventSources,
# WarehouseEventSources, SettingsEventSources). The replay, tests and benchmarks send these, as a producer must; an
# event with another source is dropped by the rule (tests/integration/test_bus_sources.py).
BUS_SOURCES = {
    "Order Changed": "stocksync.orders",
    "Warehouse Stock Levels": "stocksync.warehouse",
    "Warehouse Orders Synced": "stocksync.warehouse",
    "SKU Settings Changed": "stocksync.settings",
}
# The secrets the webhook samples in events/ are signed with (docs/connectors.md): never a real shop's.
SAMPLE_WEBHOOK_SECRETS = {
    "woocommerce": "stocksync-sample-woocommerce-secret",
    "shopify": "stocksync-sample-shopify-secret",
    "generic": "stocksync-sample-generic-secret",
}
# Extra stack outputs that make CloudFormation (moto) itself resolve each Globals.Function environment variable.
_ENV_OUTPUT_PREFIX = "StockSyncLocalFunctionEnv"
# moto refuses a second PurgeQueue within 60 s, as SQS does; reset_data() purges before every test.
_PURGE_LIMIT_SETTING = "MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"


class LocalAwsError(RuntimeError):
    """The local stack could not be deployed or used; the message says which resource or call failed."""


class LocalAws:
    """moto server + the deployed stack. Use as a context manager; one per test session is enough.

    ``parameter_overrides`` are the template parameters of a ``sam deploy --parameter-overrides``; they are checked
    against the template's AllowedPattern/AllowedValues as CloudFormation would (moto does not).

    ``in_process``: boto3 calls of this process to the server are answered by the server's own application without
    a socket (stocksync_dev.local.in_process); the server still listens for anything else.
    """

    def __init__(
        self,
        template_path: Path | str = TEMPLATE_PATH,
        parameter_overrides: Mapping[str, str] | None = None,
        stack_name: str = "stocksync-local",
        region: str = "us-east-1",
        *,
        in_process: bool = False,
    ) -> None:
        self.template_path = Path(template_path)
        self.parameter_overrides = {**DEFAULT_PARAMETERS, **(parameter_overrides or {})}
        self.stack_name = stack_name
        self.region = region
        self.in_process = in_process
        self.deploy_seconds = 0.0
        self._server: ThreadedMotoServer | None = None
        self._endpoint_url: str | None = None
        self._clients: dict[str, Any] = {}
        self._outputs: dict[str, str] = {}
        self._function_environment: dict[str, str] = {}
        self._resources: dict[str, tuple[str, str]] = {}
        self._skipped: dict[str, str] = {}
        self._account_id = ""
        self._saved_purge_setting: str | None = None
        self._saved_request_log_level = logging.NOTSET

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start moto on a free port of 127.0.0.1 and deploy the template into it.

        Raises ConfigurationError naming the parameter when an override would fail a real deploy, before anything
        starts.
        """
        if self._server is not None:
            raise LocalAwsError("already started")
        sam_template = load_template(self.template_path)
        parameters = parameter_values(sam_template, self.parameter_overrides)
        self._saved_purge_setting = os.environ.get(_PURGE_LIMIT_SETTING)
        os.environ[_PURGE_LIMIT_SETTING] = "false"  # read by the in-process server at every PurgeQueue
        request_log = logging.getLogger("werkzeug")  # one line per request would bury the test output
        self._saved_request_log_level = request_log.level
        request_log.setLevel(logging.WARNING)
        moto_speedups.install()  # moto's transaction rollback copies whole tables: quadratic ingest otherwise
        moto_fixes.install()  # partner event bus names (slashes and all), as EventBridge takes them
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        if self.in_process:
            in_process.route(self._endpoint_url, self._server._server)  # type: ignore[arg-type]
        try:
            started = time.perf_counter()
            with _quiet_about_unsupported_types():
                self._deploy(sam_template, parameters)
            self.deploy_seconds = time.perf_counter() - started
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._endpoint_url is not None:
            in_process.unroute(self._endpoint_url)
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._endpoint_url = None
        self._clients.clear()
        logging.getLogger("werkzeug").setLevel(self._saved_request_log_level)
        if self._saved_purge_setting is None:
            os.environ.pop(_PURGE_LIMIT_SETTING, None)
        else:
            os.environ[_PURGE_LIMIT_SETTING] = self._saved_purge_setting

    # ------------------------------------------------------------------ what the stack offers
    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise LocalAwsError("not started: use `with LocalAws() as aws:` or call start()")
        return self._endpoint_url

    @property
    def outputs(self) -> dict[str, str]:
        """The template's Outputs, as the deployed stack reports them (OutputKey -> value)."""
        return dict(self._outputs)

    @property
    def resources(self) -> dict[str, tuple[str, str]]:
        """Every created resource: logical id -> (resource type, physical id)."""
        return dict(self._resources)

    @property
    def skipped_resources(self) -> dict[str, str]:
        """Resources of the template the stack did not create (logical id -> type): the types moto's CloudFormation
        does not support (alarms, schedules, queue policies...) and those whose Condition is false.
        """
        return dict(self._skipped)

    def client(self, service_name: str) -> Any:
        """A boto3 client bound to this moto server (for tests and tools; the product uses stocksync.dal.aws)."""
        if service_name not in self._clients:
            session = boto3.session.Session(
                aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=self.region,
            )
            self._clients[service_name] = session.client(service_name, endpoint_url=self.endpoint_url)
        return self._clients[service_name]

    def function_environment(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment the stack's functions get from Globals.Function and their own Environment (references
        resolved by the stack), plus what points boto3 at moto: endpoint, fake credentials, region. ``overrides`` win.
        """
        return {
            **self._function_environment,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **FAKE_CREDENTIALS,
            **(overrides or {}),
        }

    # ------------------------------------------------------------------ test support
    def reset_data(self) -> None:
        """Empty every table and purge every queue of the stack (tables, queues, bus and secrets stay).

        Done on moto's in-process backends: about 0.2 ms, against about 75 ms through the API (a Scan and a
        PurgeQueue request per store) and about 2.5 s for a fresh deploy, and every test calls it.
        tests/integration/test_local_aws.py proves it still empties everything whenever moto is upgraded.
        """
        dynamodb = get_backend("dynamodb")[self._account_id][self.region]
        sqs = get_backend("sqs")[self._account_id][self.region]
        for resource_type, physical_id in self._resources.values():
            if resource_type == "AWS::DynamoDB::Table":
                dynamodb.get_table(physical_id).items.clear()
            elif resource_type == "AWS::SQS::Queue":
                sqs.purge_queue(physical_id.rsplit("/", 1)[-1])  # the physical id is the queue URL

    def put_webhook_secrets(self, secrets: Mapping[str, str] = SAMPLE_WEBHOOK_SECRETS) -> str:
        """Store the signed webhooks' shared secrets where WEBHOOK_SECRET_NAME points; returns the secret's ARN."""
        name = self._function_environment.get("WEBHOOK_SECRET_NAME", "")
        if not name:
            raise LocalAwsError("this stack has no signed webhook endpoint (WebhookEndpoint=none)")
        return self._put_secret(name, json.dumps(dict(secrets)))

    def put_graph_credentials(self, access_token: str, app_secret: str) -> str:
        """Store the Graph API credentials where STOCKSYNC_GRAPH_CREDENTIALS points; returns the secret's ARN."""
        reference = self._function_environment.get("STOCKSYNC_GRAPH_CREDENTIALS", "")
        kind, _, secret_name = reference.partition(":")
        if kind != "secretsmanager" or not secret_name:
            raise LocalAwsError(f"STOCKSYNC_GRAPH_CREDENTIALS {reference!r} does not name a Secrets Manager secret")
        return self._put_secret(secret_name, json.dumps({"access_token": access_token, "app_secret": app_secret}))

    def _put_secret(self, secret_name: str, secret: str) -> str:
        secrets = self.client("secretsmanager")
        try:
            return str(secrets.put_secret_value(SecretId=secret_name, SecretString=secret)["ARN"])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        return str(secrets.create_secret(Name=secret_name, SecretString=secret)["ARN"])

    # ------------------------------------------------------------------ deploy
    def _deploy(self, sam_template: dict[str, Any], parameters: dict[str, str]) -> None:
        template = translate(sam_template, self.template_path.parent, parameters, region=self.region)
        env_names = _add_environment_outputs(template, sam_template)
        _disable_event_source_mappings(template)
        _drop_outputs_moto_cannot_resolve(template)
        self._upload_artifacts(local_artifacts(sam_template, self.template_path.parent))

        cloudformation = self.client("cloudformation")
        cloudformation.create_stack(
            StackName=self.stack_name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        try:
            cloudformation.get_waiter("stack_create_complete").wait(
                StackName=self.stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
        except WaiterError as error:
            events = cloudformation.describe_stack_events(StackName=self.stack_name)["StackEvents"]
            failures = [
                f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', event['ResourceStatus'])}"
                for event in events
                if event["ResourceStatus"].endswith("FAILED")
            ]
            raise LocalAwsError(f"stack {self.stack_name} was not created: {failures or error}") from error
        stack = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        # A conditional function's own variables have no output when its condition is false: nothing to set.
        self._function_environment = {name: outputs.pop(key) for key, name in env_names.items() if key in outputs}
        self._outputs = outputs
        paginator = cloudformation.get_paginator("list_stack_resources")
        self._resources = {
            summary["LogicalResourceId"]: (summary["ResourceType"], summary.get("PhysicalResourceId", ""))
            for page in paginator.paginate(StackName=self.stack_name)
            for summary in page["StackResourceSummaries"]
            if summary["LogicalResourceId"]  # moto lists the resources it skipped without one
        }
        self._skipped = {
            logical_id: resource["Type"]
            for logical_id, resource in template["Resources"].items()
            if logical_id not in self._resources
        }
        self._account_id = self.client("sts").get_caller_identity()["Account"]

    def _upload_artifacts(self, artifacts: Iterator[LocalArtifact]) -> None:
        s3 = self.client("s3")
        # Another LocalAws of this process may have made it: moto's state is per process, not per server.
        with suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=ARTIFACT_BUCKET)
        for artifact in artifacts:
            if not artifact.source.is_dir():
                raise LocalAwsError(f"{artifact.logical_id}: code folder {artifact.source} does not exist")
            s3.put_object(Bucket=ARTIFACT_BUCKET, Key=artifact.key, Body=artifact.zip())


def _add_environment_outputs(template: dict[str, Any], sam_template: dict[str, Any]) -> dict[str, str]:
    """Add one output per environment variable the functions get: Globals.Function's, and those a function sets
    for itself (under the function's own Condition), so the stack resolves every Ref, Sub and GetAtt exactly as it
    does for a function. The local tools run every function in one process, so a function's own variables join the
    shared environment; a name set twice with different values is refused. Returns output key -> variable name.
    """
    outputs = template.setdefault("Outputs", {})
    env_names: dict[str, str] = {}
    declared: dict[str, Any] = {}

    def add(name: str, value: Any, condition: str | None) -> None:
        if name in declared and declared[name] != value:
            raise LocalAwsError(f"environment variable {name} is set to two different values; the local tools cannot")
        declared[name] = value
        key = f"{_ENV_OUTPUT_PREFIX}{len(env_names)}"
        outputs[key] = {"Value": value, "Description": name, **({"Condition": condition} if condition else {})}
        env_names[key] = name

    variables = sam_template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for name, value in variables.items():
        add(name, value, None)
    for resource in sam_template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        own = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for name, value in own.items():
            if name not in variables:  # a function's own value of a Globals name only differs for that function
                add(name, value, resource.get("Condition"))
    return env_names


def _disable_event_source_mappings(template: dict[str, Any]) -> None:
    """moto would run a queue's function on every SendMessage, which needs Docker; tests and the replay call
    handlers directly instead, so the queues keep their messages for them.
    """
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            resource.setdefault("Properties", {})["Enabled"] = False


def _drop_outputs_moto_cannot_resolve(template: dict[str, Any]) -> None:
    """moto refuses a whole stack whose Outputs read an attribute of a type it does not create (the webhook
    endpoint's ``AWS::Lambda::Url``): such outputs are left out locally, as the resource itself is.
    """
    resources = template.get("Resources", {})
    for name, output in list(template.get("Outputs", {}).items()):
        value = output.get("Value")
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            target = resources.get(value["Fn::GetAtt"][0], {})
            if resource_class_from_type(target.get("Type", "")) is None:
                del template["Outputs"][name]


@contextmanager
def _quiet_about_unsupported_types() -> Iterator[None]:
    """moto's CloudFormation says, twice per resource, that it skips some types (alarms, schedules, policies);
    ``LocalAws.skipped_resources`` lists them once, and the template checks cover them.
    """
    moto_log = logging.getLogger("moto")
    unsupported = _DropMessages("No Moto CloudFormation support for ")
    moto_log.addFilter(unsupported)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Tried to parse AWS::", UserWarning)
            yield
    finally:
        moto_log.removeFilter(unsupported)


class _DropMessages(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()
