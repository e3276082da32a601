"""The data plane of one customer: providers, state backend, role, network, peering, tamper alarm, outputs."""

from __future__ import annotations

from cdktf import (
    CloudBackend,
    LocalBackend,
    NamedCloudWorkspace,
    S3Backend,
    TerraformOutput,
    TerraformStack,
)
from cdktf_cdktf_provider_aws.provider import (
    AwsProvider,
    AwsProviderAssumeRole,
    AwsProviderDefaultTags,
)
from constructs import Construct

from constructs_lib.cross_account_role import CrossAccountRole, CrossAccountRoleProps
from constructs_lib.data_plane_network import DataPlaneNetwork, DataPlaneNetworkProps
from constructs_lib.tamper_alarm import TamperAlarm, TamperAlarmProps
from constructs_lib.vpc_peering import VpcPeering, VpcPeeringProps
from dataplane import tamper
from dataplane.config.customer import Customer
from dataplane.config.settings import Settings
from dataplane.policy import MANAGED_BY, ownership_tags


class DataPlaneStack(TerraformStack):
    """Everything activation creates in one customer's account, named after the customer."""

    def __init__(self, scope: Construct, customer: Customer, settings: Settings):
        super().__init__(scope, customer.name)
        self.customer, self.settings = customer, settings
        self._backend()
        self.peer_provider, self.regional_providers = self._providers()
        self.role = self._role()
        self.network = self._network()
        self.peering = self._peering()
        self.tamper_alarm = self._tamper_alarm()
        self._outputs()

    def _backend(self) -> None:
        backend, name = self.settings.backend, self.customer.name
        if backend.type == "s3":
            s3 = S3Backend(self, bucket=backend.bucket, region=backend.region, key=backend.key(name), encrypt=True)
            s3.add_override("use_lockfile", True)
        elif backend.type == "cloud":
            CloudBackend(self, organization=backend.organization, hostname=backend.hostname,
                         workspaces=NamedCloudWorkspace(backend.workspace(name)))
        else:
            # Terraform runs in <outdir>/stacks/<name>; state lives beside the outdir, never inside it.
            LocalBackend(self, path=f"../../../{backend.state_dir}/{name}.tfstate")

    def _providers(self) -> tuple[AwsProvider | None, dict[str, AwsProvider]]:
        """The peer's provider, when the peering crosses into another account or region; and the customer's account
        by region: its own region (the default provider), and with the tamper alarm us-east-1 (alias `events`) and
        the log replicas' region (alias `replica`)."""
        c = self.customer
        tags = [AwsProviderDefaultTags(tags=ownership_tags(c.name))]
        regional = {c.region: AwsProvider(self, "aws", region=c.region, allowed_account_ids=[c.account_id],
                                          default_tags=tags)}
        peer = None
        if c.peering_crosses_boundary:
            assume = c.peering.accepter_role_arn and [AwsProviderAssumeRole(
                role_arn=c.peering.accepter_role_arn, session_name=f"{MANAGED_BY}-{c.name}")]
            peer = AwsProvider(self, "aws-peer", alias="peer", region=c.peer_region, assume_role=assume or None,
                               allowed_account_ids=[c.peering.account_id], default_tags=tags)
        for alias, region in (("events", tamper.EVENTS_REGION), ("replica", tamper.replica_region(c.region))):
            if c.tamper_alarm and region not in regional:
                regional[region] = AwsProvider(self, f"aws-{alias}", alias=alias, region=region,
                                               allowed_account_ids=[c.account_id], default_tags=tags)
        return peer, regional

    def _role(self) -> CrossAccountRole:
        s = self.settings
        return CrossAccountRole(self, "cross-account-role", CrossAccountRoleProps(
            role_name=s.role_name,
            trusted_principal=s.trusted_principal,
            external_id=self.customer.external_id,
            max_session_duration=s.max_session_duration,
            permissions_boundary_arn=s.permissions_boundary_arn(self.customer.account_id),
            managed_policy_arns=s.managed_policy_arns_in(self.customer.account_id),
            delegation_guard=s.delegation_guard(self.customer.account_id),
        ))

    def _network(self) -> DataPlaneNetwork | None:
        if not self.customer.network:
            return None
        return DataPlaneNetwork(self, "network", DataPlaneNetworkProps(
            name=self.customer.name, cidr=self.customer.network.cidr))

    def _peering(self) -> VpcPeering | None:
        c, peering = self.customer, self.customer.peering
        if not peering:
            return None
        return VpcPeering(self, "peering", VpcPeeringProps(
            name=c.name,
            vpc_id=self.network.vpc_id,
            route_table_id=self.network.route_table_id,
            data_plane_cidr=self.network.cidr,
            peer_vpc_id=peering.vpc_id,
            peer_account_id=peering.account_id,
            peer_region=c.peer_region,
            peer_cidrs=peering.cidrs,
            peer_route_table_ids=peering.route_table_ids,
            accepter_provider=self.peer_provider,
        ))

    def _tamper_alarm(self) -> TamperAlarm | None:
        """Changes to the role, emailed: the trail in the customer's region, the rule and topic in us-east-1 (through
        the alias `events` unless that is the customer's region), the log files' replicas in another region."""
        c, regional = self.customer, self.regional_providers
        if not c.tamper_alarm:
            return None
        return TamperAlarm(self, tamper.CONSTRUCT_ID, TamperAlarmProps(
            name=c.name, account_id=c.account_id, role_name=self.settings.role_name, email=c.tamper_alarm.email,
            trail_provider=regional[c.region], events_provider=regional[tamper.EVENTS_REGION],
            replica_provider=regional[tamper.replica_region(c.region)]))

    def _outputs(self) -> None:
        TerraformOutput(self, "role_arn", value=self.role.role_arn, description="Role the control plane assumes")
        TerraformOutput(self, "role_name", value=self.role.role_name)
        if self.network:
            TerraformOutput(self, "vpc_id", value=self.network.vpc_id)
        if self.peering:
            TerraformOutput(self, "peering_connection_id", value=self.peering.peering_connection_id)
