"""How the stack is deployed and published (issue 17): samconfig.toml's environments, and the Serverless Application
Repository metadata `sam package` / `sam publish` read from template.yaml."""

from __future__ import annotations

import re
import tomllib

import stocksync
from stocksync_dev.local.template import REPO_ROOT, load_template


def samconfig() -> dict:
    return tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def test_default_and_prod_are_two_stacks_deployed_alike() -> None:
    config = samconfig()
    assert {"default", "prod"} <= config.keys()
    names = {env: config[env]["global"]["parameters"]["stack_name"] for env in ("default", "prod")}
    assert names["default"] != names["prod"]
    for env in ("default", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}, env
        assert deploy["confirm_changeset"] is True, env
        assert config[env]["validate"]["parameters"]["lint"] is True, env
        # Parameter overrides here would be replaced whole by any --parameter-overrides on the command line.
        assert "parameter_overrides" not in deploy, env
    assert config["prod"]["deploy"]["parameters"]["tags"] == "stocksync:environment=prod"


def test_the_serverless_repo_metadata_names_files_that_exist_and_the_package_version() -> None:
    application = load_template()["Metadata"]["AWS::ServerlessRepo::Application"]
    assert application["Name"] == "stocksync"
    assert application["SpdxLicenseId"] == "Apache-2.0"
    assert "Apache License" in (REPO_ROOT / application["LicenseUrl"]).read_text(encoding="utf-8")[:200]
    assert (REPO_ROOT / application["ReadmeUrl"]).is_file()
    assert application["SemanticVersion"] == stocksync.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", application["SemanticVersion"])
    assert 0 < len(application["Description"]) <= 256  # the repository's limit
    assert application["Author"] and all(len(label) <= 127 for label in application["Labels"])
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == stocksync.__version__
    assert pyproject["project"]["license"] == {"text": application["SpdxLicenseId"]}
