"""Reusable constructs for a data plane: the cross-account role, the network, the peering.

Each takes one settings object and the provider(s) to use; none creates providers or backends.
"""

from constructs_lib.cross_account_role import CrossAccountRole, CrossAccountRoleSettings
from constructs_lib.data_plane_network import DataPlaneNetwork, DataPlaneNetworkSettings
from constructs_lib.vpc_peering import VpcPeering, VpcPeeringSettings

__all__ = [
    "CrossAccountRole", "CrossAccountRoleSettings",
    "DataPlaneNetwork", "DataPlaneNetworkSettings",
    "VpcPeering", "VpcPeeringSettings",
]
