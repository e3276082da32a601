"""The layout's promises: importing changes nothing, and each concern imports only what it needs."""

from __future__ import annotations

import json
import subprocess
import sys

from dataplane.project import PROJECT_ROOT

PROBE = """
import importlib, json, os, sys
before = dict(os.environ)
for module in sys.argv[1:]:
    importlib.import_module(module)
print(json.dumps({"environ": sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)),
                  "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""
JSII = {"cdktf", "jsii", "cdktf_cdktf_provider_aws", "constructs"}


def imported(*modules: str) -> dict:
    """What importing `modules` in a fresh interpreter changed in `os.environ`, and the top-level packages loaded."""
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_any_module_but_the_stack_code_changes_no_environment_and_loads_neither_jsii_nor_the_provider():
    result = imported("dataplane", "dataplane.config", "dataplane.config.settings", "dataplane.policy",
                      "dataplane.runtime", "dataplane.synth_output", "dataplane.ops.cli", "dataplane.ops.pipeline.review",
                      "dataplane.ops.fleet.adopt", "dataplane.ops.account.preflight", "dataplane.ops.account.verify", "constructs_lib",
                      "constructs_lib.facts")
    assert result["environ"] == []
    assert set(result["modules"]) & JSII == set()


def test_the_policy_and_tamper_modules_are_standard_library_only():
    """The security gate's own venv imports them: they may not need pydantic, boto3 or cdktf."""
    assert set(imported("dataplane.policy", "dataplane.tamper")["modules"]) & {
        "pydantic", "boto3", "botocore", *JSII} == set()


def test_config_needs_no_aws_library():
    assert set(imported("dataplane.config.settings")["modules"]) & {"boto3", "botocore", *JSII} == set()
