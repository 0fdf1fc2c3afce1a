"""The functions' settings for a command run from a shell: from a deployed stack (``--stack-name``) or the environment.

A deployed function gets about 15 environment variables from template.yaml (table names, queue URLs, the bus name,
the catalog and Graph API settings, ...). A command that reaches AWS (``reconcile``, ``discontinue``, ``audit``,
``replay --function``, ``redrive``, ``status``, ``explain``) needs the same ones. With ``--stack-name`` they are read
from the stack itself: CloudFormation lists the stack's resources (ListStackResources), and the named function's
configuration (Lambda GetFunctionConfiguration) holds its variables exactly as the stack resolved them, so the command
runs with what that function runs with, function-specific variables included. Nothing else is read: the variables
hold no secret (STOCKSYNC_GRAPH_CREDENTIALS names where the credentials are stored, not the credentials).

Without ``--stack-name`` the variables come from the environment, as before. Either way every missing or invalid
setting is named in one error, not only the first.

    add_stack_arguments(parser)            # --stack-name, --profile, --region
    with deployment(args, function="ReconcileFunction") as settings:
        ...                                # os.environ as that function sees it; put back afterwards

Needs ``cloudformation:ListStackResources`` on the stack and ``lambda:GetFunctionConfiguration`` on its functions
(besides what the command itself does).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from stocksync.dal import aws
from stocksync.integrations.graph_api import clear_graph_client_cache
from stocksync.models.settings import Settings, get_settings
from stocksync_dev.cli.pipeline import function_folder
from stocksync_dev.local.template import load_template

# The function whose configuration a command borrows when it names none: every function gets the shared settings.
DEFAULT_FUNCTION = "RecomputeStockFunction"
_KEY_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class SettingsError(Exception):
    """The settings could not be found or are incomplete; the message names every problem."""


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """``--stack-name``, ``--profile`` and ``--region`` on a command that reaches AWS."""
    group = parser.add_argument_group("deployed stack (default: the functions' variables from the environment)")
    group.add_argument(
        "--stack-name", metavar="NAME", help="read the functions' settings from this deployed stack (sam deploy's)"
    )
    group.add_argument("--profile", metavar="NAME", help="AWS profile (default: the environment's)")
    group.add_argument("--region", metavar="NAME", help="AWS region of the stack (default: the profile's)")


def session(args: argparse.Namespace) -> Any:
    """A boto3 session with the command's ``--profile`` and ``--region`` (AWS_ENDPOINT_URL is honoured by its
    clients, so the same code reaches moto locally)."""
    try:
        return boto3.session.Session(profile_name=getattr(args, "profile", None), region_name=_region(args))
    except BotoCoreError as error:  # an unknown profile
        raise SettingsError(str(error)) from None


def stack_resources(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    """The stack's resources: logical id -> (resource type, physical id). Raises SettingsError when the stack
    cannot be read (no such stack, no credentials, no region)."""
    try:
        paginator = session(args).client("cloudformation").get_paginator("list_stack_resources")
        return {
            summary["LogicalResourceId"]: (summary["ResourceType"], summary.get("PhysicalResourceId", ""))
            for page in paginator.paginate(StackName=args.stack_name)
            for summary in page["StackResourceSummaries"]
            if summary.get("LogicalResourceId")
        }
    except (BotoCoreError, ClientError) as error:
        raise SettingsError(f"cannot read stack {args.stack_name!r}: {error}") from None


def stack_variables(args: argparse.Namespace, function: str = DEFAULT_FUNCTION) -> dict[str, str]:
    """The environment variables of ``function`` (a logical id of template.yaml, ``ReconcileFunction``) as the
    stack ``args.stack_name`` deployed it."""
    resources = stack_resources(args)
    kind, physical_id = resources.get(function, ("", ""))
    if kind != "AWS::Lambda::Function" or not physical_id:
        functions = sorted(name for name, (type_, _) in resources.items() if type_ == "AWS::Lambda::Function")
        raise SettingsError(
            f"stack {args.stack_name!r} has no function {function} (a function whose Condition is false is not "
            f"deployed); its functions: {', '.join(functions) or 'none'}"
        )
    try:
        configuration = session(args).client("lambda").get_function_configuration(FunctionName=physical_id)
    except (BotoCoreError, ClientError) as error:
        raise SettingsError(f"cannot read the configuration of {function} ({physical_id}): {error}") from None
    variables = configuration.get("Environment", {}).get("Variables", {})
    return {name: _text(value) for name, value in variables.items()}


def function_logical_id(folder: str) -> str:
    """The logical id template.yaml gives the function of ``functions/<folder>/`` (push_batch -> PushBatchFunction)."""
    for name, resource in load_template().get("Resources", {}).items():
        is_function = resource.get("Type") == "AWS::Serverless::Function"
        if is_function and function_folder(resource.get("Properties", {})) == folder:
            return str(name)
    raise SettingsError(f"template.yaml has no function in functions/{folder}/")


def resolve_settings(args: argparse.Namespace, function: str = DEFAULT_FUNCTION) -> dict[str, str]:
    """The environment a command runs with: the process's own, the stack's variables of ``function`` over it when
    ``--stack-name`` is given, and ``--profile``/``--region`` as AWS_PROFILE/AWS_REGION (a profile in place of any
    access keys of the environment). Not validated (see ``settings_from``)."""
    environment = dict(os.environ)
    if getattr(args, "profile", None):
        # Keys in the environment would win over AWS_PROFILE in botocore's credential chain: the profile asked for
        # is the one used, for the stack's settings and the command's own calls alike.
        for name in _KEY_VARIABLES:
            environment.pop(name, None)
        environment["AWS_PROFILE"] = args.profile
    region = _region(args)
    if region:
        environment["AWS_REGION"] = environment["AWS_DEFAULT_REGION"] = region
    if getattr(args, "stack_name", None):
        environment.update(stack_variables(args, function))
    return environment


def settings_from(environment: Mapping[str, str], *, stack_name: str | None = None) -> Settings:
    """Validated settings; SettingsError naming every missing or invalid variable at once."""
    problems = Settings.problems(environment)
    if not problems:
        return Settings.model_validate(dict(environment))
    where = (
        f"in stack {stack_name!r}"
        if stack_name
        else "in the environment (set the functions' variables, or give --stack-name of a deployed stack)"
    )
    lines = [f"{len(problems)} setting(s) missing or invalid {where}:"]
    lines += [f"  {name}: {problem}" for name, problem in problems]
    raise SettingsError("\n".join(lines))


@contextmanager
def deployment(args: argparse.Namespace, *, function: str = DEFAULT_FUNCTION) -> Iterator[Settings]:
    """os.environ as ``function`` sees it (``resolve_settings``), the process's cached settings and clients
    forgotten, the settings validated; everything put back afterwards (a command may run inside a longer process,
    a test). Raises SettingsError naming every problem."""
    environment = resolve_settings(args, function)
    settings = settings_from(environment, stack_name=getattr(args, "stack_name", None))
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    _forget_cached_environment()
    try:
        yield settings
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _forget_cached_environment()


def _forget_cached_environment() -> None:
    get_settings.cache_clear()
    aws.reset_clients()
    clear_graph_client_cache()


def _region(args: argparse.Namespace) -> str | None:
    return getattr(args, "region", None) or None


def _text(value: Any) -> str:
    """Lambda's variables are strings; moto's CloudFormation leaves a YAML number a number."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = [
    "DEFAULT_FUNCTION",
    "SettingsError",
    "add_stack_arguments",
    "deployment",
    "function_logical_id",
    "resolve_settings",
    "session",
    "settings_from",
    "stack_resources",
    "stack_variables",
]


def run_in_deployment(
    args: argparse.Namespace,
    command: str,
    function: str,
    body: Callable[[argparse.Namespace, Settings], int],
) -> int:
    """A command's run with ``function``'s settings (``deployment``): exit 2, naming every missing or invalid
    setting at once, when they cannot be had."""
    try:
        with deployment(args, function=function) as settings:
            return body(args, settings)
    except SettingsError as error:
        print(f"stocksync {command}: {error}", file=sys.stderr)
        return 2
