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
    """How adopt finds the live resource of a type; `dataplane/ops/fleet/adopt.py` implements each."""

    ROLE_BY_NAME = "role by name"
    INLINE_POLICY = "inline policy of an adopted role"
    ROLE_ATTACHMENT = "managed policy attached to an adopted role"
    TAGGED_VPC = "tagged VPC by CIDR"
    TAGGED_SUBNET = "tagged subnet by VPC and CIDR"
    TAGGED_ROUTE_TABLE = "tagged route table in VPC"
    ASSOCIATION = "association of adopted subnet and table"
    TAGGED_PEERING = "tagged peering by its two VPCs"
    PEERING_ROUTE = "route through this stack's peering"
    PEERING_ACCEPTER = "adopts itself; stands for the peering it accepts"
    ADOPTS_ITSELF = "adopts itself"
    DATA_SOURCE = "data source"
    NOT_LOOKED_UP = "not looked up: a deploy after a killed one stops on it by name, to be imported by hand"


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

MANAGED_POLICY_ATTACHMENTS = (
    ResourceFacts("aws_iam_role_policy_attachment", Adoption.ROLE_ATTACHMENT,
                  ("iam:AttachRolePolicy", "iam:ListAttachedRolePolicies")),
)
"""The role's attachments, with the `managedPolicyArns` setting."""

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

TAMPER_ALARM = (
    ResourceFacts("aws_kms_key", Adoption.NOT_LOOKED_UP, (
        "kms:CreateKey", "kms:DescribeKey", "kms:EnableKeyRotation", "kms:TagResource")),
    ResourceFacts("aws_s3_bucket", Adoption.NOT_LOOKED_UP, (
        "s3:CreateBucket", "s3:ListBucket", "s3:PutBucketTagging",
        "s3:ListAllMyBuckets", "s3:GetBucketTagging")),  # preflight: is each name free, or already the customer's?
    ResourceFacts("aws_s3_bucket_public_access_block", Adoption.ADOPTS_ITSELF, ("s3:PutBucketPublicAccessBlock",)),
    ResourceFacts("aws_s3_bucket_versioning", Adoption.ADOPTS_ITSELF, ("s3:PutBucketVersioning",)),
    ResourceFacts("aws_s3_bucket_server_side_encryption_configuration", Adoption.ADOPTS_ITSELF,
                  ("s3:PutEncryptionConfiguration",)),
    ResourceFacts("aws_s3_bucket_lifecycle_configuration", Adoption.ADOPTS_ITSELF, ("s3:PutLifecycleConfiguration",)),
    ResourceFacts("aws_s3_bucket_notification", Adoption.ADOPTS_ITSELF, ("s3:PutBucketNotification",)),
    ResourceFacts("aws_s3_bucket_policy", Adoption.ADOPTS_ITSELF, ("s3:PutBucketPolicy",)),
    ResourceFacts("aws_s3_bucket_logging", Adoption.ADOPTS_ITSELF, ("s3:PutBucketLogging",)),
    ResourceFacts("aws_s3_bucket_replication_configuration", Adoption.ADOPTS_ITSELF,
                  ("s3:PutReplicationConfiguration",)),
    ResourceFacts("aws_cloudwatch_log_group", Adoption.NOT_LOOKED_UP, (
        "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource")),
    ResourceFacts("aws_sns_topic", Adoption.ADOPTS_ITSELF, ("sns:CreateTopic", "sns:TagResource")),
    ResourceFacts("aws_sns_topic_policy", Adoption.ADOPTS_ITSELF, ("sns:SetTopicAttributes",)),
    ResourceFacts("aws_sns_topic_subscription", Adoption.ADOPTS_ITSELF, ("sns:Subscribe",)),
    ResourceFacts("aws_cloudtrail", Adoption.NOT_LOOKED_UP, (
        "cloudtrail:CreateTrail", "cloudtrail:StartLogging", "cloudtrail:AddTags",
        "iam:PassRole")),  # the trail's role, and the replication's
    ResourceFacts("aws_cloudwatch_event_rule", Adoption.ADOPTS_ITSELF, ("events:PutRule", "events:TagResource")),
    ResourceFacts("aws_cloudwatch_event_target", Adoption.ADOPTS_ITSELF, ("events:PutTargets",)),
)
"""Its two service roles and their inline policies are roles like the cross-account role (`CROSS_ACCOUNT_ROLE`),
adopted by name when tagged as the stack's. The sub-resources of a bucket, a topic and a rule are idempotent puts;
a bucket, trail or log group left by a killed deploy stops the next by name (import it with `terraform import`), and
a key left so stays unused (schedule its deletion)."""

ALL = CROSS_ACCOUNT_ROLE + MANAGED_POLICY_ATTACHMENTS + DATA_PLANE_NETWORK + VPC_PEERING + TAMPER_ALARM
"""Every construct's facts, in dependency order (a route needs its table and its connection): adopt looks up in it."""
