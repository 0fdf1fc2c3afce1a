"""The template check that catches what `sam validate --lint` and `cfn-lint template.yaml` let through.

cfn-lint no longer expands SAM resources and `sam validate` only runs the transform, so a ``!Ref`` to a missing
resource, a bad ``!GetAtt``, a misspelled event property or a nonexistent runtime all pass both. Linting the
*translated* template resource by resource catches them, before a deploy fails halfway.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cfnlint.api import lint
from cfnlint.config import ManualArgs
from samtranslator.model.exceptions import InvalidDocumentException

from stocksync_dev.local.template import load_template, local_artifacts, translate

# False positives of translated output: W2001 (a parameter that only the SAM part used looks unused), W3037 (IAM
# actions of SAM policy templates cfn-lint does not know yet), W1020 (a Fn::Sub that SAM left without variables).
IGNORED_ON_TRANSLATED = ["W2001", "W3037", "W1020"]


# Globals.Function only reaches the translated template through a function; this one makes sure it always does.
GLOBALS_PROBE = "StockSyncGlobalsProbe"


def template_problems(path: Path | str, region: str | None = None) -> list[str]:
    """Every problem found in the SAM template at ``path``, one line each, each naming where it is; [] if none."""
    path = Path(path)
    region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    template = load_template(path)
    problems = [
        f"{artifact.logical_id}: code folder {artifact.source} does not exist"
        for artifact in local_artifacts(template, path.parent)
        if not artifact.source.is_dir()
    ]
    try:
        translated = translate(_with_globals_probe(template), path.parent, region=region)
    except InvalidDocumentException as error:
        return problems + [f"SAM transform: {cause.message}" for cause in error.causes]
    matches = lint(
        json.dumps(translated),
        config=ManualArgs(regions=[region], ignore_checks=IGNORED_ON_TRANSLATED),
    )
    return problems + [f"{match.rule.id} {match.message} (at {_location(match.path)})" for match in matches]


def _with_globals_probe(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` with one more function that sets nothing itself, so it carries exactly the Globals.

    Without a global Runtime the probe would not be a valid function; the template's own functions (which must
    then name theirs) still carry the Globals.
    """
    function_globals = template.get("Globals", {}).get("Function", {})
    if "Runtime" not in function_globals:
        return template
    properties: dict[str, Any] = {"Handler": "index.handler"}
    if "CodeUri" not in function_globals:
        properties["InlineCode"] = "def handler(event, context):\n    return None\n"
    probe = {"Type": "AWS::Serverless::Function", "Properties": properties}
    return {**template, "Resources": {**template.get("Resources", {}), GLOBALS_PROBE: probe}}


def _location(path: Sequence[str | int]) -> str:
    location = "/".join(str(part) for part in path)
    return location.replace(f"Resources/{GLOBALS_PROBE}/Properties", "Globals/Function")
