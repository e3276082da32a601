"""The customer's bootstrap against the emulator (`tests/bootstrap_lifecycle.py` says how), for a customer with the
tamper alarm: hooli through its lifecycle with moto's IAM access control on; what moto does not evaluate of it
(`iam:PassRole`) checked from the state. A module of its own: the longest lifecycle runs beside the others.
"""

from __future__ import annotations

import json

import pytest

from dataplane.config.customer import load_customer
from tests.bootstrap_lifecycle import (
    GRANTED_UNUSED,
    Lifecycle,
    access_control,
    activation_passed,
    every_granted_action_allowed,
    lifecycle_passed,
    live,
)
from tests.conftest import EXTRA_FIXTURES, SUMMARY


@pytest.fixture(scope="module")
def hooli(emulator, settings, tmp_path_factory) -> Lifecycle:
    """hooli (role only, with the tamper alarm: in its region and in us-east-1) through its lifecycle."""
    customer = load_customer(EXTRA_FIXTURES / "hooli.toml", settings.control_plane_account_id)
    with access_control() as enforcement:
        return live(emulator, enforcement, customer, settings, tmp_path_factory.mktemp("hooli"))


def test_activation_through_the_bootstrap_role_passes_with_access_control_on(hooli):
    activation_passed(hooli)


def test_the_lifecycle_passes_through_the_bootstrap_role_with_access_control_on(hooli):
    lifecycle_passed(hooli)


def test_every_action_the_bootstrap_grants_is_one_moto_allowed_the_deploy_role(hooli, request):
    every_granted_action_allowed(hooli, GRANTED_UNUSED["role only"] | GRANTED_UNUSED["tamper alarm"],
                                 request.config.stash.setdefault(SUMMARY, []))


def test_the_alarm_passes_only_the_roles_the_bootstrap_lets_it(hooli):
    """What moto does not evaluate (`NOT_EVALUATED`): each role the deploy passed, the trail's to CloudWatch Logs and
    the replications' to S3, is one the bootstrap lets it pass, to the service the role trusts, and no other."""
    resources = {(r["type"], r["name"]): r["instances"][0]["attributes"] for r in hooli.state["resources"]}
    trusts = {a["arn"]: json.loads(a["assume_role_policy"])["Statement"][0]["Principal"].get("Service")
              for (type_, _), a in resources.items() if type_ == "aws_iam_role"}
    passed = {a["cloud_watch_logs_role_arn"] for (type_, _), a in resources.items() if type_ == "aws_cloudtrail"} | {
        a["role"] for (type_, _), a in resources.items() if type_ == "aws_s3_bucket_replication_configuration"}
    grants = {resource: s["Condition"]["StringEquals"]["iam:PassedToService"] for s in hooli.policy["Statement"]
              if "iam:PassRole" in s["Action"] for resource in s["Resource"]}
    assert len(passed) == 2 and grants == {arn: trusts[arn] for arn in passed}
