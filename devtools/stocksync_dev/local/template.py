"""template.yaml, translated offline: what the template checks lint and what the local AWS deploy creates.

The SAM transform normally runs inside CloudFormation. Running it here (samtranslator, no AWS call) turns the
template into plain CloudFormation that cfn-lint can check resource by resource and that moto can deploy, so the
template stays the single description of every table, queue and function.
"""

from __future__ import annotations

import copy
import io
import os
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.metrics.metrics import Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from stocksync.errors import ConfigurationError


def find_repo_root() -> Path:
    """The checkout whose template.yaml and functions/ the local tools deploy and run.

    ``STOCKSYNC_REPO_ROOT`` when set; otherwise the nearest folder holding both, looking up from this file (an
    editable install lives in the checkout) and then from the working directory (an installed copy run from a
    checkout). Why not a fixed number of parents: the file's depth changes whenever a package moves, and a wrong
    guess would deploy nothing with no error until much later.
    """
    override = os.environ.get("STOCKSYNC_REPO_ROOT")
    if override:
        return Path(override).resolve()
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "template.yaml").is_file() and (folder / "functions").is_dir():
                return folder
    raise ConfigurationError("no template.yaml with a functions/ folder above this package or the working directory")


REPO_ROOT = find_repo_root()
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
# Local code locations become objects of this (fake) bucket; the local deploy creates it in moto.
ARTIFACT_BUCKET = "stocksync-local-artifacts"

_ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed timestamps: the same code gives the same zip (and CodeSha256)
_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class _IntrinsicsLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms (!Ref, !Sub, !GetAtt a.b ...) as their long forms.

    A subclass, so the global SafeLoader (used by anyone else's yaml.safe_load) is left alone.
    """


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in {"Ref", "Condition"} else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_IntrinsicsLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """The SAM template as data, intrinsics in their long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``)."""
    with Path(path).open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_IntrinsicsLoader)
    if not isinstance(template, dict):
        raise ValueError(f"{path}: not a template (top level is {type(template).__name__})")
    return template


@dataclass(frozen=True)
class LocalArtifact:
    """A function's or layer's local code folder and the fake S3 object that stands for it once translated."""

    logical_id: str
    source: Path
    key: str
    is_layer: bool

    @property
    def uri(self) -> str:
        return f"s3://{ARTIFACT_BUCKET}/{self.key}"

    def zip(self) -> bytes:
        """The folder as Lambda expects it: a function's files at the root, a layer's Python code under python/."""
        buffer = io.BytesIO()
        prefix = "python/" if self.is_layer else ""
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(self.source.rglob("*")):
                relative = path.relative_to(self.source)
                if path.is_dir() or path.suffix == ".pyc" or any(_is_build_litter(part) for part in relative.parts):
                    continue
                info = zipfile.ZipInfo(prefix + relative.as_posix(), _ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return buffer.getvalue()


def _is_build_litter(name: str) -> bool:
    return name == "__pycache__" or name.endswith(".egg-info")


def local_artifacts(template: dict[str, Any], base_dir: Path) -> Iterator[LocalArtifact]:
    """Every CodeUri/ContentUri that names a local folder (relative to the template), in template order.

    A function without its own CodeUri inherits Globals.Function.CodeUri, as SAM does.
    """
    global_code = template.get("Globals", {}).get("Function", {}).get("CodeUri")
    for logical_id, resource in template.get("Resources", {}).items():
        code_property = _CODE_PROPERTIES.get(resource.get("Type", ""))
        if code_property is None:
            continue
        properties = resource.get("Properties", {})
        if "InlineCode" in properties or "ImageUri" in properties:
            continue
        location = properties.get(code_property, global_code if code_property == "CodeUri" else None)
        if not isinstance(location, str) or location.startswith("s3://"):
            continue  # inline code, an image, an S3 object or an intrinsic: nothing local to package
        relative = location.strip("/") or "."
        yield LocalArtifact(
            logical_id=logical_id,
            source=(base_dir / location).resolve(),
            key=f"{logical_id}/{relative.replace('/', '-')}.zip",
            is_layer=code_property == "ContentUri",
        )


def translate_template(
    path: Path | str = TEMPLATE_PATH,
    parameter_values: dict[str, str] | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Plain CloudFormation for the SAM template at ``path``, made without AWS (see ``translate``)."""
    path = Path(path)
    return translate(load_template(path), path.parent, parameter_values, region)


def translate(
    template: dict[str, Any],
    base_dir: Path,
    parameter_values: dict[str, str] | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Plain CloudFormation for a loaded SAM ``template`` whose code folders are relative to ``base_dir``.

    Local code folders become ``s3://`` objects of ARTIFACT_BUCKET (see ``local_artifacts``); managed policy names
    are not looked up. Raises samtranslator's ``InvalidDocumentException`` (its ``causes`` list every problem).
    """
    template = copy.deepcopy(template)  # the transform rewrites the template it is given
    for artifact in list(local_artifacts(template, base_dir)):
        code_property = "ContentUri" if artifact.is_layer else "CodeUri"
        template["Resources"][artifact.logical_id].setdefault("Properties", {})[code_property] = artifact.uri
    session = boto3.session.Session(region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    metrics = Metrics()  # its default publisher drops everything: nothing leaves the machine
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session, metrics=metrics)
    try:
        return translator.translate(
            sam_template=template,
            parameter_values=dict(parameter_values or {}),
            get_managed_policy_map=dict,  # no lookup: policy ARNs stay as written
        )
    finally:
        metrics.publish()  # unpublished metrics would be logged as a warning on every translation


def parameter_values(template: dict[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every parameter's value (defaults + overrides), checked as CloudFormation checks them at deploy time.

    moto accepts any value; checking here keeps a local deploy as strict as a real one, so a pattern in the template
    that is too loose or too tight shows up in tests. Raises ConfigurationError naming the parameter.
    """
    declared: dict[str, dict[str, Any]] = template.get("Parameters", {})
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise ConfigurationError(unknown[0], "not a parameter of the template")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        value = (overrides or {}).get(name, spec.get("Default"))
        if value is None:
            raise ConfigurationError(name, "required parameter without a value")
        value = str(value)
        problem = _parameter_problem(spec, value)
        if problem:
            raise ConfigurationError(name, f"{value!r} {problem}")
        values[name] = value
    for rule_name, rule in template.get("Rules", {}).items():
        if not _evaluate(rule.get("RuleCondition", True), values):
            continue
        for assertion in rule.get("Assertions", []):
            if not _evaluate(assertion["Assert"], values):
                raise ConfigurationError(rule_name, assertion.get("AssertDescription", "rule assertion failed"))
    return values


def _evaluate(expression: Any, values: Mapping[str, str]) -> Any:
    """A Rules expression (Ref to a parameter, Fn::Equals/Not/And/Or, Fn::Contains) against the parameter values:
    CloudFormation refuses a deploy whose rule fails, so a local deploy does too (moto ignores Rules)."""
    if not isinstance(expression, dict):
        return expression
    [(function, argument)] = expression.items()
    if function == "Ref":
        return values[argument]
    arguments = [_evaluate(item, values) for item in argument]
    if function == "Fn::Equals":
        return str(arguments[0]) == str(arguments[1])
    if function == "Fn::Not":
        return not arguments[0]
    if function == "Fn::And":
        return all(arguments)
    if function == "Fn::Or":
        return any(arguments)
    if function == "Fn::Contains":
        return str(arguments[1]) in [str(item) for item in arguments[0]]
    raise ConfigurationError("Rules", f"{function} is not supported by the local stack's rule check")


def _parameter_problem(spec: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse ``value`` for a parameter declared as ``spec`` (None: it would not)."""
    help_text = spec.get("ConstraintDescription")
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(item) for item in allowed]:
        return f"is not one of {allowed}"
    pattern = spec.get("AllowedPattern")
    # CloudFormation matches a CommaDelimitedList's pattern against each item, not against the whole list.
    items = value.split(",") if spec.get("Type") == "CommaDelimitedList" else [value]
    if pattern is not None and not all(re.fullmatch(pattern, item) for item in items):
        return f"does not match {pattern} ({help_text or 'AllowedPattern'})"
    if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", len(value)):
        return "has a length outside MinLength/MaxLength"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return "is not a number"
        if not spec.get("MinValue", number) <= number <= spec.get("MaxValue", number):
            return f"is outside MinValue/MaxValue ({help_text or 'range'})"
    return None
