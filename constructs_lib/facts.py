"""What operations need to know about each construct's resources, kept beside the constructs.

For every resource type a construct synthesizes: how `adopt` finds the live resource when the
state lacks it, and what the deployer's credentials need to create it (`preflight` simulates
these). Each construct exposes its own facts (`DataPlaneNetwork.FACTS`); a resource type no
construct describes is refused by adopt, and a test checks every synthesized type is described.
Standard library only: adopt and preflight import this module without starting jsii.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Adoption(Enum):
    """How adopt finds the live resource of a type; `dataplane/ops/adopt.py` implements each."""

    ROLE_BY_NAME = "role by name"
    INLINE_POLICY = "inline policy of an adopted role"
    TAGGED_VPC = "tagged VPC by CIDR"
    TAGGED_SUBNET = "tagged subnet by VPC and CIDR"
    TAGGED_ROUTE_TABLE = "tagged route table in VPC"
    ASSOCIATION = "association of adopted subnet and table"
    TAGGED_PEERING = "tagged peering by its two VPCs"
    PEERING_ROUTE = "route through this stack's peering"
    PEERING_ACCEPTER = "adopts itself; stands for the peering it accepts"
    ADOPTS_ITSELF = "adopts itself"
    DATA_SOURCE = "data source"


@dataclass(frozen=True)
class ResourceFacts:
    """One Terraform resource (or data source) type of a construct."""

    type: str
    adoption: Adoption
    deployer_actions: tuple[str, ...] = ()


CROSS_ACCOUNT_ROLE = (
    ResourceFacts("aws_iam_role", Adoption.ROLE_BY_NAME),
    ResourceFacts("aws_iam_role_policy", Adoption.INLINE_POLICY),
)
"""The role's deployer actions are the activation actions (`dataplane.policy`), which preflight checks first."""

DATA_PLANE_NETWORK = (
    ResourceFacts("aws_vpc", Adoption.TAGGED_VPC, (
        "ec2:CreateVpc", "ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:ModifyVpcAttribute", "ec2:CreateTags")),
    ResourceFacts("aws_availability_zones", Adoption.DATA_SOURCE, ("ec2:DescribeAvailabilityZones",)),
    ResourceFacts("aws_subnet", Adoption.TAGGED_SUBNET, ("ec2:CreateSubnet", "ec2:DescribeSubnets")),
    ResourceFacts("aws_route_table", Adoption.TAGGED_ROUTE_TABLE, ("ec2:CreateRouteTable", "ec2:DescribeRouteTables")),
    ResourceFacts("aws_route_table_association", Adoption.ASSOCIATION, ("ec2:AssociateRouteTable",)),
    ResourceFacts("aws_default_security_group", Adoption.ADOPTS_ITSELF, (
        "ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress")),
)

VPC_PEERING = (
    ResourceFacts("aws_vpc_peering_connection", Adoption.TAGGED_PEERING, (
        "ec2:CreateVpcPeeringConnection", "ec2:DescribeVpcPeeringConnections")),
    ResourceFacts("aws_vpc_peering_connection_accepter", Adoption.PEERING_ACCEPTER),
    ResourceFacts("aws_vpc_peering_connection_options", Adoption.ADOPTS_ITSELF,
                  ("ec2:ModifyVpcPeeringConnectionOptions",)),
    ResourceFacts("aws_route", Adoption.PEERING_ROUTE, ("ec2:CreateRoute",)),
)

PEERING_ACCEPTANCE = ("ec2:AcceptVpcPeeringConnection",)
"""What accepting the peering needs: the deployer's own, unless an accepter role in the peer account accepts it."""

ALL = CROSS_ACCOUNT_ROLE + DATA_PLANE_NETWORK + VPC_PEERING
"""Every construct's facts, in dependency order (a route needs its table and its connection): adopt looks up in it."""
