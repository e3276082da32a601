"""VPC peering from the data-plane VPC to the customer's VPC, with routes and DNS both ways."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.vpc_peering_connection import VpcPeeringConnection
from cdktf_cdktf_provider_aws.vpc_peering_connection_accepter import (
    VpcPeeringConnectionAccepterA,
)
from cdktf_cdktf_provider_aws.vpc_peering_connection_options import (
    VpcPeeringConnectionOptions,
    VpcPeeringConnectionOptionsAccepter,
    VpcPeeringConnectionOptionsRequester,
)
from constructs import Construct

from constructs_lib import facts
from constructs_lib.props import (
    CustomerName,
    PeerCidrs,
    PeerRouteTableIds,
    reference,
    validate,
)
from dataplane.config.customer import (
    AccountId,
    AwsRegion,
    DataPlaneCidr,
    RouteTableId,
    VpcId,
)


@dataclass(frozen=True)
class VpcPeeringProps:
    name: str
    vpc_id: str
    route_table_id: str
    data_plane_cidr: str
    peer_vpc_id: str
    peer_account_id: str
    peer_region: str
    peer_cidrs: tuple[str, ...]
    peer_route_table_ids: tuple[str, ...]
    accepter_provider: Optional[AwsProvider] = None
    """Provider acting in the peer's account and region; None when both are the data plane's."""

    def __post_init__(self):
        validate(self, name=CustomerName, vpc_id=reference(VpcId), route_table_id=reference(RouteTableId),
                 data_plane_cidr=DataPlaneCidr, peer_vpc_id=VpcId, peer_account_id=AccountId, peer_region=AwsRegion,
                 peer_cidrs=PeerCidrs, peer_route_table_ids=PeerRouteTableIds)


class VpcPeering(Construct):
    """Peers the data-plane VPC with the customer's VPC and routes between them.

    With an `accepter_provider` the request is accepted in the customer's account (and region);
    without one, both VPCs share account and region and the request is auto-accepted::

        peering = VpcPeering(stack, "peering", VpcPeeringProps(..., accepter_provider=peer))
        peering.peering_connection_id

    Unless `accepter_provider` assumes a role in the peer account, the deployer accepts the
    peering itself and needs `facts.PEERING_ACCEPTANCE` too.
    """

    FACTS = facts.VPC_PEERING

    def __init__(self, scope: Construct, id: str, props: VpcPeeringProps):
        super().__init__(scope, id)
        peer = props.accepter_provider
        connection = VpcPeeringConnection(
            self, "connection",
            vpc_id=props.vpc_id,
            peer_vpc_id=props.peer_vpc_id,
            peer_owner_id=props.peer_account_id,
            peer_region=props.peer_region if peer else None,
            auto_accept=None if peer else True,
            tags={"Name": f"{props.name}-data-plane-peering"},
        )
        if peer:
            accepted = VpcPeeringConnectionAccepterA(
                self, "accepter", provider=peer, vpc_peering_connection_id=connection.id, auto_accept=True,
                tags={"Name": f"{props.name}-data-plane-peering"})
            connection_id = accepted.vpc_peering_connection_id
            VpcPeeringConnectionOptions(
                self, "requester-dns", vpc_peering_connection_id=connection_id,
                requester=VpcPeeringConnectionOptionsRequester(allow_remote_vpc_dns_resolution=True))
            VpcPeeringConnectionOptions(
                self, "accepter-dns", provider=peer, vpc_peering_connection_id=connection_id,
                accepter=VpcPeeringConnectionOptionsAccepter(allow_remote_vpc_dns_resolution=True))
        else:
            connection_id = connection.id
            VpcPeeringConnectionOptions(
                self, "dns", vpc_peering_connection_id=connection_id,
                requester=VpcPeeringConnectionOptionsRequester(allow_remote_vpc_dns_resolution=True),
                accepter=VpcPeeringConnectionOptionsAccepter(allow_remote_vpc_dns_resolution=True))
        for cidr in props.peer_cidrs:
            Route(self, f"to-customer-{cidr.replace('/', '-')}", route_table_id=props.route_table_id,
                  destination_cidr_block=cidr, vpc_peering_connection_id=connection_id)
        for route_table_id in props.peer_route_table_ids:
            Route(self, f"from-customer-{route_table_id}", provider=peer, route_table_id=route_table_id,
                  destination_cidr_block=props.data_plane_cidr, vpc_peering_connection_id=connection_id)
        self.peering_connection_id: str = connection_id
