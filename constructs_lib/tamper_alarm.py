"""The tamper alarm: an email for every change to the cross-account role's policies, boundary or trust."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.cloudtrail import Cloudtrail
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import (
    S3BucketPublicAccessBlock,
)
from cdktf_cdktf_provider_aws.s3_bucket_replication_configuration import (
    S3BucketReplicationConfigurationA,
    S3BucketReplicationConfigurationRule,
    S3BucketReplicationConfigurationRuleDeleteMarkerReplication,
    S3BucketReplicationConfigurationRuleDestination,
    S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration,
    S3BucketReplicationConfigurationRuleFilter,
    S3BucketReplicationConfigurationRuleSourceSelectionCriteria,
    S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects,
)
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from constructs_lib import facts
from constructs_lib.props import CustomerName, validate
from dataplane.config.customer import AccountId, Email
from dataplane.config.settings import RoleName
from dataplane.policy import account_root, policy_json
from dataplane.tamper import (
    EVENTS_REGION,
    AlarmNames,
    role_change_pattern,
    service_trust,
)

LOG_RETENTION_DAYS = 365
"""How long the trail's records are kept: log files and S3's access logs expire after it, a version overwritten or
deleted is kept this long after, and the CloudWatch Logs copy as long (a year, the usual audit baseline)."""
INCOMPLETE_UPLOAD_DAYS = 7
FORCE_DESTROY = False
"""Destroying the stack never deletes the trail's records: `python -m dataplane destroy` keeps the buckets out of the
destroy (`dataplane/ops/fleet/offboard.py`), and any other destroy stops at a bucket holding any (see the README)."""


@dataclass(frozen=True)
class TamperAlarmProps:
    name: str
    account_id: str
    role_name: str
    """The cross-account role whose changes alarm."""
    email: str
    trail_provider: AwsProvider
    """The customer's region: the trail, its buckets, its CloudWatch Logs group."""
    events_provider: AwsProvider
    """us-east-1, where IAM's events arrive: the rule and the alarm's topic."""
    replica_provider: AwsProvider
    """Another region: the replicas of the trail's log files."""

    def __post_init__(self):
        validate(self, name=CustomerName, account_id=AccountId, role_name=RoleName, email=Email)
        if (region := self.events_provider.region) != EVENTS_REGION:
            raise ValueError(f"events_provider: in {region}, not {EVENTS_REGION}, where IAM's events arrive")
        if self.replica_provider.region == self.trail_provider.region:
            raise ValueError(f"replica_provider: in {self.trail_provider.region}, the trail's own region; the log "
                             "files are replicated to another")


class TamperAlarm(Construct):
    """Emails `email` whenever anyone changes the role's policies, boundary or trust, or deletes it.

    A multi-region CloudTrail trail (global service events, validated and KMS-encrypted log files, a copy in
    CloudWatch Logs) records IAM's calls; in us-east-1, where IAM's events arrive, an EventBridge rule matches
    `dataplane.tamper.ROLE_CHANGES` to the role and publishes them to an encrypted SNS topic with an email
    subscription, which the recipient must confirm. The log files are replicated to another region; each
    bucket logs its access in its own region::

        alarm = TamperAlarm(stack, "tamper-alarm", TamperAlarmProps(
            name="acme", account_id="123456789012", role_name="astronomer-remote-management",
            email="security@acme.example", trail_provider=aws, events_provider=aws, replica_provider=west))
        alarm.trail_arn, alarm.rule_name, alarm.topic_arn
    """

    FACTS = facts.TAMPER_ALARM

    def __init__(self, scope: Construct, id: str, props: TamperAlarmProps):
        super().__init__(scope, id)
        names = AlarmNames(props.name, props.account_id)
        home, replica = props.trail_provider, props.replica_provider
        region = home.region
        account = props.account_id
        trail_arn = names.trail_arn(region)
        log_group_arn = f"arn:aws:logs:{region}:{account}:log-group:{names.log_group}"

        home_key = self._key("trail-key", home, "The tamper alarm's trail: log files, log group, access logs",
                             _trail_key_policy(account, region, trail_arn, log_group_arn))
        replica_key = self._key("replica-key", replica, "Replicas of the tamper alarm's trail log files",
                                _key_policy(account, [_log_delivery_statement(account)]))
        home_key_arn, replica_key_arn = home_key.arn, replica_key.arn
        trail = self._bucket("trail-bucket", home, names.bucket("trail"), home_key, _trail_bucket_policy(
            names.bucket("trail"), account, trail_arn))
        access = self._bucket("access-bucket", home, names.bucket("access"), home_key, _access_bucket_policy(
            names.bucket("access"), account, names.bucket("trail")))
        trail_replica = self._bucket("trail-replica-bucket", replica, names.bucket("trail-r"), replica_key)
        access_replica = self._bucket("access-replica-bucket", replica, names.bucket("access-r"), replica_key,
                                      _access_bucket_policy(names.bucket("access-r"), account,
                                                            names.bucket("trail-r")))
        S3BucketLoggingA(self, "trail-bucket-access-logs", provider=home, bucket=trail.id, target_bucket=access.id,
                         target_prefix="trail/", depends_on=[access.policy])
        S3BucketLoggingA(self, "trail-replica-bucket-access-logs", provider=replica, bucket=trail_replica.id,
                         target_bucket=access_replica.id, target_prefix="trail-r/", depends_on=[access_replica.policy])

        replication_role = IamRole(
            self, "replication-role", provider=home, name=names.replication_role,
            description="Lets S3 replicate the tamper alarm's log files to another region",
            assume_role_policy=policy_json(service_trust("s3.amazonaws.com", account, [
                trail.static_arn, access_replica.static_arn])))
        IamRolePolicy(self, "replication-policy", provider=home, name="replicate-log-files", role=replication_role.id,
                      policy=policy_json(_replication_policy((trail, access_replica), (trail_replica, access),
                                                             (home_key_arn, replica_key_arn))))
        self._replicate("trail-replication", home, trail, trail_replica, replica_key_arn, replication_role)
        self._replicate("access-replication", replica, access_replica, access, home_key_arn, replication_role)

        log_group = CloudwatchLogGroup(self, "trail-log-group", provider=home, name=names.log_group,
                                       retention_in_days=LOG_RETENTION_DAYS, kms_key_id=home_key_arn)
        logs_role = IamRole(
            self, "trail-logs-role", provider=home, name=names.trail_logs_role,
            description="Lets CloudTrail write the tamper alarm's trail to CloudWatch Logs",
            assume_role_policy=policy_json(service_trust("cloudtrail.amazonaws.com", account, [trail_arn])))
        logs_policy = IamRolePolicy(
            self, "trail-logs-policy", provider=home, name="write-trail-log-group", role=logs_role.id,
            policy=policy_json({"Version": "2012-10-17", "Statement": [{
                "Sid": "WriteTrailLogStreams", "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": f"{log_group_arn}:log-stream:*"}]}))
        trail_topic_key = self._topic_key("trail-topic-key", home, account, "The tamper alarm's trail delivery topic",
                                          "cloudtrail.amazonaws.com")
        trail_topic = SnsTopic(self, "trail-topic", provider=home, name=names.trail_topic,
                               kms_master_key_id=trail_topic_key.arn)
        trail_topic_policy = SnsTopicPolicy(self, "trail-topic-policy", provider=home, arn=trail_topic.arn,
                                            policy=policy_json(_publish_policy(
                                                f"arn:aws:sns:{region}:{account}:{names.trail_topic}",
                                                "cloudtrail.amazonaws.com", "StringEquals", trail_arn)))
        cloudtrail = Cloudtrail(
            self, "trail", provider=home, name=names.trail, s3_bucket_name=trail.id,
            is_multi_region_trail=True, include_global_service_events=True, enable_log_file_validation=True,
            kms_key_id=home_key_arn, sns_topic_name=names.trail_topic,
            cloud_watch_logs_group_arn=f"{log_group.arn}:*", cloud_watch_logs_role_arn=logs_role.arn,
            depends_on=[trail.policy, trail_topic_policy, logs_policy])

        events = props.events_provider
        alarm_key = self._topic_key("alarm-key", events, account, "The tamper alarm's topic", "events.amazonaws.com")
        topic = SnsTopic(self, "alarm-topic", provider=events, name=names.topic, kms_master_key_id=alarm_key.arn)
        rule = CloudwatchEventRule(
            self, "rule", provider=events, name=names.rule, state="ENABLED",
            description=f"Changes to the role {props.role_name}: its policies, boundary, trust, or its deletion",
            event_pattern=json.dumps(role_change_pattern(props.role_name)))
        SnsTopicPolicy(self, "alarm-topic-policy", provider=events, arn=topic.arn, policy=policy_json(
            _publish_policy(names.topic_arn(), "events.amazonaws.com", "ArnEquals", names.rule_arn())))
        CloudwatchEventTarget(self, "rule-target", provider=events, rule=rule.name, target_id="alarm-topic",
                              arn=topic.arn)
        SnsTopicSubscription(self, "email", provider=events, topic_arn=topic.arn, protocol="email",
                             endpoint=props.email)

        self.trail_arn: str = cloudtrail.arn
        self.trail_bucket: str = trail.id
        self.rule_name: str = rule.name
        self.topic_arn: str = topic.arn

    def _key(self, id: str, provider: AwsProvider, description: str, policy: dict) -> KmsKey:
        return KmsKey(self, id, provider=provider, description=description, enable_key_rotation=True,
                      deletion_window_in_days=30, policy=policy_json(policy))

    def _topic_key(self, id: str, provider: AwsProvider, account_id: str, description: str, publisher: str) -> KmsKey:
        """A key for an encrypted SNS topic that `publisher`, an AWS service, publishes to (AWS's documented key
        statement, without conditions: a key of its own, so it widens no other key's use)."""
        return self._key(id, provider, description, _key_policy(account_id, [
            {"Sid": "ServicePublishes", "Effect": "Allow", "Principal": {"Service": publisher},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}]))

    def _bucket(self, id: str, provider: AwsProvider, name: str, key: KmsKey, policy: dict | None = None) -> _Bucket:
        """A private, versioned, KMS-encrypted bucket whose objects expire, announcing its events to EventBridge.

        It depends on its key, so a destroy that stops at it (holding logs) leaves the key too: the logs stay readable.
        """
        bucket = S3Bucket(self, id, provider=provider, bucket=name, force_destroy=FORCE_DESTROY, depends_on=[key])
        key_arn = key.arn
        bucket_id = bucket.id
        S3BucketPublicAccessBlock(self, f"{id}-public-access-block", provider=provider, bucket=bucket_id,
                                  block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
                                  restrict_public_buckets=True)
        versioning = S3BucketVersioningA(self, f"{id}-versioning", provider=provider, bucket=bucket_id,
                                         versioning_configuration=S3BucketVersioningVersioningConfiguration(
                                             status="Enabled"))
        S3BucketServerSideEncryptionConfigurationA(
            self, f"{id}-encryption", provider=provider, bucket=bucket_id,
            rule=[S3BucketServerSideEncryptionConfigurationRuleA(
                bucket_key_enabled=True,
                apply_server_side_encryption_by_default=(
                    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=key_arn)))])
        S3BucketLifecycleConfiguration(
            self, f"{id}-lifecycle", provider=provider, bucket=bucket_id, depends_on=[versioning],
            rule=[S3BucketLifecycleConfigurationRule(
                id="retention", status="Enabled", filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=LOG_RETENTION_DAYS)],
                noncurrent_version_expiration=[S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                    noncurrent_days=LOG_RETENTION_DAYS)],
                abort_incomplete_multipart_upload=[S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                    days_after_initiation=INCOMPLETE_UPLOAD_DAYS)])])
        S3BucketNotification(self, f"{id}-events", provider=provider, bucket=bucket_id, eventbridge=True)
        bucket_policy = policy and S3BucketPolicy(self, f"{id}-policy", provider=provider, bucket=bucket_id,
                                                  policy=policy_json(policy))
        return _Bucket(bucket_id, bucket.arn, f"arn:aws:s3:::{name}", versioning, bucket_policy)

    def _replicate(self, id: str, provider: AwsProvider, source: _Bucket, destination: _Bucket, key_arn: str,
                   role: IamRole) -> None:
        """Replicate `source`'s objects to `destination` (in another region), encrypted there with `key_arn`.

        Deletions are not replicated: a log file deleted at the source stays in the replica.
        """
        S3BucketReplicationConfigurationA(
            self, id, provider=provider, bucket=source.id, role=role.arn,
            depends_on=[source.versioning, destination.versioning],
            rule=[S3BucketReplicationConfigurationRule(
                id="log-files", status="Enabled", filter=S3BucketReplicationConfigurationRuleFilter(prefix=""),
                delete_marker_replication=S3BucketReplicationConfigurationRuleDeleteMarkerReplication(
                    status="Disabled"),
                source_selection_criteria=S3BucketReplicationConfigurationRuleSourceSelectionCriteria(
                    sse_kms_encrypted_objects=(
                        S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects(
                            status="Enabled"))),
                destination=S3BucketReplicationConfigurationRuleDestination(
                    bucket=destination.arn,
                    encryption_configuration=(
                        S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration(
                            replica_kms_key_id=key_arn))))])


@dataclass(frozen=True)
class _Bucket:
    id: str
    arn: str
    static_arn: str
    """The ARN from the name, for policies: readable, and no reference a policy would wait on."""
    versioning: ITerraformDependable
    policy: ITerraformDependable | None


def _key_policy(account_id: str, statements: list[dict]) -> dict:
    """A key the account administers through IAM, which `statements` let services use too."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": account_root(account_id)},
         "Action": "kms:*", "Resource": "*"}, *statements]}


def _log_delivery_statement(account_id: str) -> dict:
    """S3's server access log delivery may encrypt the access logs of this account's buckets."""
    return {"Sid": "S3AccessLogDelivery", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "kms:GenerateDataKey*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}}}


def _trail_key_policy(account_id: str, region: str, trail_arn: str, log_group_arn: str) -> dict:
    return _key_policy(account_id, [
        {"Sid": "CloudTrailEncryptsLogFiles", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn},
                       "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                      f"arn:aws:cloudtrail:*:{account_id}:trail/*"}}},
        {"Sid": "CloudTrailDescribesKey", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "kms:DescribeKey", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        {"Sid": "CloudWatchLogsEncryptsLogGroup", "Effect": "Allow",
         "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
         "Resource": "*", "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}}},
        _log_delivery_statement(account_id),
    ])


def _trail_bucket_policy(bucket: str, account_id: str, trail_arn: str) -> dict:
    """CloudTrail, for this trail only, may check the bucket's ACL and write log files it hands to the owner."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
        {"Sid": "CloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{account_id}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}},
    ]}


def _access_bucket_policy(bucket: str, account_id: str, source: str) -> dict:
    """S3's log delivery may write the access logs of `source`, and of nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "S3AccessLogDelivery", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account_id},
                       "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{source}"}}},
    ]}


def _replication_policy(sources: tuple[_Bucket, ...], destinations: tuple[_Bucket, ...],
                        keys: tuple[str, ...]) -> dict:
    """What S3 needs to replicate `sources` to `destinations`, reading and writing through `keys`."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadSourceConfiguration", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": [b.static_arn for b in sources]},
        {"Sid": "ReadSourceObjects", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
         "Resource": [f"{b.static_arn}/*" for b in sources]},
        {"Sid": "WriteReplicas", "Effect": "Allow", "Action": ["s3:ReplicateObject", "s3:ReplicateTags"],
         "Resource": [f"{b.static_arn}/*" for b in destinations]},
        {"Sid": "UseLogFileKeys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
         "Resource": list(keys)},
    ]}


def _publish_policy(topic_arn: str, service: str, operator: str, source_arn: str) -> dict:
    """Only `service`, publishing for `source_arn`, may publish to the topic."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "PublishFromSource", "Effect": "Allow", "Principal": {"Service": service}, "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {operator: {"aws:SourceArn": source_arn}}}]}
