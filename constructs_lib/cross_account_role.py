"""The IAM role the control plane assumes in the customer's account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from constructs import Construct

from constructs_lib import facts
from constructs_lib.props import (
    ManagedPolicyArns,
    PolicyArn,
    SessionDuration,
    TrustedPrincipal,
    validate,
    validate_role_policies,
)
from dataplane.config.customer import ExternalIds, RoleArn
from dataplane.config.settings import RoleName
from dataplane.policy import (
    ACTIVATION_POLICY_NAME,
    DelegationGuard,
    permissions_policy,
    policy_json,
    trust_policy,
)


@dataclass(frozen=True)
class CrossAccountRoleProps:
    role_name: str
    trusted_principal: str
    external_id: Union[str, tuple[str, ...]]
    max_session_duration: int = 3600
    permissions_boundary_arn: Optional[str] = None
    managed_policy_arns: tuple[str, ...] = ()
    delegation_guard: Optional[DelegationGuard] = None

    def __post_init__(self):
        validate(self, role_name=RoleName, trusted_principal=TrustedPrincipal, external_id=ExternalIds,
                 max_session_duration=SessionDuration, permissions_boundary_arn=Optional[PolicyArn],
                 managed_policy_arns=ManagedPolicyArns)
        if guard := self.delegation_guard:
            try:
                validate(guard, boundary_arn=PolicyArn, role_arn=RoleArn)
            except ValueError as e:
                raise ValueError(f"delegation_guard.{e}") from None
            if guard.role_arn.rsplit("/", 1)[1] != self.role_name:
                raise ValueError(f"delegation_guard.role_arn: {guard.role_arn} is not the role {self.role_name}")
        validate_role_policies(trust_policy(self.trusted_principal, self.external_id),
                               [permissions_policy(self.delegation_guard)])


class CrossAccountRole(Construct):
    """A role only the control plane can assume, and only with one of the customer's ExternalIds.

    Its permissions are the activation permissions, as a separate inline policy, with the escalation guard
    when a `delegation_guard` is given, and the `managed_policy_arns` attached; `external_id` is one id or a
    tuple of several (one per control-plane cluster)::

        role = CrossAccountRole(stack, "role", CrossAccountRoleProps(
            role_name="astronomer-remote-management",
            trusted_principal="arn:aws:iam::406882777402:root",
            external_id="astro-3f9c2b7e"))
        role.role_arn  # for outputs
    """

    FACTS = facts.CROSS_ACCOUNT_ROLE + facts.MANAGED_POLICY_ATTACHMENTS

    def __init__(self, scope: Construct, id: str, props: CrossAccountRoleProps):
        super().__init__(scope, id)
        role = IamRole(
            self, "role",
            name=props.role_name,
            description="Lets the Astro control plane activate and operate this data plane",
            assume_role_policy=policy_json(trust_policy(props.trusted_principal, props.external_id)),
            max_session_duration=props.max_session_duration,
            permissions_boundary=props.permissions_boundary_arn,
        )
        IamRolePolicy(
            self, "activation",
            name=ACTIVATION_POLICY_NAME,
            role=role.id,
            policy=policy_json(permissions_policy(props.delegation_guard)),
        )
        for policy_arn in props.managed_policy_arns:
            owner_and_name = policy_arn.split("::", 1)[1].replace(":policy/", "-").replace("/", "--")
            IamRolePolicyAttachment(self, f"managed-{owner_and_name}", role=role.id, policy_arn=policy_arn)
        self.role_arn: str = role.arn
        self.role_name: str = role.name
