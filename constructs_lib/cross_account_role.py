"""The IAM role the control plane assumes in the customer's account."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from constructs import Construct

from dataplane.policy import ACTIVATION_POLICY_NAME, permissions_policy, trust_policy


@dataclass(frozen=True)
class CrossAccountRoleSettings:
    role_name: str
    trusted_principal: str
    external_id: str
    max_session_duration: int = 3600
    permissions_boundary_arn: Optional[str] = None


class CrossAccountRole(Construct):
    """A role only the control plane can assume, and only with the customer's ExternalId.

    Its permissions are the activation permissions, as a separate inline policy::

        role = CrossAccountRole(stack, "role", CrossAccountRoleSettings(
            role_name="astronomer-remote-management",
            trusted_principal="arn:aws:iam::406882777402:root",
            external_id="astro-3f9c2b7e"))
        role.role_arn  # for outputs
    """

    def __init__(self, scope: Construct, id: str, settings: CrossAccountRoleSettings):
        super().__init__(scope, id)
        role = IamRole(
            self, "role",
            name=settings.role_name,
            description="Lets the Astro control plane activate and operate this data plane",
            assume_role_policy=json.dumps(trust_policy(settings.trusted_principal, settings.external_id)),
            max_session_duration=settings.max_session_duration,
            permissions_boundary=settings.permissions_boundary_arn,
        )
        IamRolePolicy(
            self, "activation",
            name=ACTIVATION_POLICY_NAME,
            role=role.id,
            policy=json.dumps(permissions_policy()),
        )
        self.role_arn: str = role.arn
        self.role_name: str = role.name
