"""The data-plane VPC: private subnets in two availability zones, one private route table."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cdktf import Fn, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.data_aws_availability_zones import (
    DataAwsAvailabilityZones,
)
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from constructs import Construct

from constructs_lib import facts
from constructs_lib.props import CustomerName, validate
from dataplane.config.customer import DataPlaneCidr

ZONES = 2


def private_subnet_cidrs(cidr: str) -> list[str]:
    """The CIDR in quarters; the first `ZONES` quarters are the private subnets, the rest stay free."""
    network = ipaddress.IPv4Network(cidr)
    return [str(s) for s in network.subnets(prefixlen_diff=2)][:ZONES]


@dataclass(frozen=True)
class DataPlaneNetworkProps:
    name: str
    cidr: str

    def __post_init__(self):
        validate(self, name=CustomerName, cidr=DataPlaneCidr)


class DataPlaneNetwork(Construct):
    """A VPC on the customer's chosen CIDR with DNS on and the default security group locked down.

    Subnets are carved deterministically: a /19 gives two /21 private subnets in the region's
    first two available zones::

        network = DataPlaneNetwork(stack, "network", DataPlaneNetworkProps("acme", "172.20.0.0/19"))
        network.vpc_id, network.route_table_id, network.subnet_ids
    """

    FACTS = facts.DATA_PLANE_NETWORK

    def __init__(self, scope: Construct, id: str, props: DataPlaneNetworkProps):
        super().__init__(scope, id)
        # Each attribute read is a round trip to jsii's Node process: read every one once.
        vpc_id = Vpc(self, "vpc", cidr_block=props.cidr, enable_dns_support=True, enable_dns_hostnames=True,
                     tags={"Name": f"{props.name}-data-plane"}).id
        DefaultSecurityGroup(self, "default-security-group", vpc_id=vpc_id, ingress=[], egress=[],
                             tags={"Name": f"{props.name}-default-locked"})
        zone_names = DataAwsAvailabilityZones(self, "zones", state="available").names
        route_table_id = RouteTable(self, "private-route-table", vpc_id=vpc_id,
                                    tags={"Name": f"{props.name}-private"}).id
        subnet_ids = []
        for index, cidr in enumerate(private_subnet_cidrs(props.cidr)):
            subnet_id = Subnet(self, f"private-subnet-{index}", vpc_id=vpc_id, cidr_block=cidr,
                               availability_zone=Fn.element(zone_names, index),
                               tags={"Name": f"{props.name}-private-{index}"},
                               # a zone leaving the "available" list later must not replace the subnets
                               lifecycle=TerraformResourceLifecycle(ignore_changes=["availability_zone"])).id
            RouteTableAssociation(self, f"private-subnet-{index}-routes", subnet_id=subnet_id,
                                  route_table_id=route_table_id)
            subnet_ids.append(subnet_id)
        self.vpc_id: str = vpc_id
        self.cidr: str = props.cidr
        self.route_table_id: str = route_table_id
        self.subnet_ids: list[str] = subnet_ids
