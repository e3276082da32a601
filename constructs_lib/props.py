"""Props validation: a construct refuses what the loader would, by the loader's own rules and messages.

Each rule is a type of the loader (`dataplane.config`) or built from its patterns::

    validate(props, role_name=RoleName, external_id=ExternalIds)
    # ValueError: role_name: 'a b' is not an IAM role name (1-64 of A-Z a-z 0-9 + = , . @ _ -)

and a role's policies are checked by the rules the loader applies to them (`dataplane.policy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, WrapValidator

from dataplane.config.customer import (
    ACCOUNT_ID,
    NAME_RULE,
    ROLE_ARN,
    Peering,
    commercial_partition,
    distinct,
    pattern,
)
from dataplane.config.errors import problems_from_validation
from dataplane.config.settings import Settings
from dataplane.policy import (
    MANAGED_POLICIES_QUOTA,
    inline_policies_problems,
    trust_policy_problems,
)


def loader_rule(model, field: str) -> Any:
    """The type and constraints the loader applies to `model.field`."""
    info = model.model_fields[field]
    return Annotated[info.annotation, *info.metadata]


_EXPRESSION_PASSES = WrapValidator(
    lambda value, validate: value if isinstance(value, str) and "${" in value else validate(value))


def reference(rule: Any) -> Any:
    """`rule`, except that a Terraform expression (`${...}`, such as another resource's id) passes as it is.

    A cdktf token is one; asking cdktf (`Token.is_unresolved`) would cost a round trip to jsii's Node process.
    """
    return Annotated[rule, _EXPRESSION_PASSES]


CustomerName = Annotated[str, pattern(NAME_RULE.pattern, "a customer name (2-40 of a-z 0-9 -, starting with a letter, "
                                                         "not ending with a hyphen)")]
TrustedPrincipal = Annotated[str, AfterValidator(commercial_partition),
                             pattern(rf"arn:aws:iam::{ACCOUNT_ID}:root|{ROLE_ARN}",
                                     "an account root (arn:aws:iam::<account>:root) or an IAM role ARN "
                                     "(arn:aws:iam::<account>:role/<name>)")]
PolicyArn = Annotated[str, AfterValidator(commercial_partition),
                      pattern(rf"arn:aws:iam::(aws|{ACCOUNT_ID}):policy/[\w+=,./@-]+",
                              "an IAM policy ARN (arn:aws:iam::<account or aws>:policy/<name>)")]
ManagedPolicyArns = Annotated[tuple[PolicyArn, ...], Field(max_length=MANAGED_POLICIES_QUOTA), AfterValidator(distinct)]
SessionDuration = loader_rule(Settings, "max_session_duration")
PeerCidrs = loader_rule(Peering, "cidrs")
PeerRouteTableIds = loader_rule(Peering, "route_table_ids")


@cache
def _adapter(rule: Any) -> TypeAdapter:
    return TypeAdapter(rule)


def validate(props: object, **rules: Any) -> None:
    """Raise `ValueError` naming the first prop of `props` that breaks its rule, as `<prop>: <what is wrong>`."""
    for prop, rule in rules.items():
        try:
            _adapter(rule).validate_python(getattr(props, prop), strict=True)
        except ValidationError as e:
            raise ValueError("; ".join(f"{p.field}: {p.message}"
                                       for p in problems_from_validation("", e, prefix=prop))) from None


def validate_role_policies(trust: dict, inline: Sequence[dict]) -> None:
    """Raise `ValueError` for what IAM would refuse in a role's trust and inline policies, named as the loader names it
    (`external_id: the trust policy would be ...`, `(inline policies): ...`)."""
    problems = [f"external_id: {p}" for p in trust_policy_problems(trust)]
    problems += [f"(inline policies): {p}" for p in inline_policies_problems(inline)]
    if problems:
        raise ValueError("; ".join(problems))
