"""Strict parameter binding, as Eucalyptus 4.4's query binding does it.

Eucalyptus maps each query parameter onto a field of the action's message class; whatever maps to
no field fails the request with "Failed to bind the following fields:" and the leftovers. The tables
below are the parameters the 4.4 message classes bind for the actions docker-euca uses (N and M stand
for 1-based list indexes). Notably absent: `TagSpecification.*` (tags must be set with CreateTags
after RunInstances), `MetadataOptions.*`, `IncludePublicKey`, `KeyType`, rule descriptions.
"""

import re

COMMON = ["Action", "Version", "DryRun"]

FILTERS = ["Filter.N.Name", "Filter.N.Value.M"]
PAGING = ["MaxResults", "NextToken"]

IP_PERMISSIONS = [
    "GroupId",
    "GroupName",
    "SourceSecurityGroupName",
    "SourceSecurityGroupOwnerId",
    "IpProtocol",
    "FromPort",
    "ToPort",
    "CidrIp",
    "IpPermissions.N.IpProtocol",
    "IpPermissions.N.FromPort",
    "IpPermissions.N.ToPort",
    "IpPermissions.N.Groups.M.GroupName",
    "IpPermissions.N.Groups.M.GroupId",
    "IpPermissions.N.Groups.M.UserId",
    "IpPermissions.N.IpRanges.M.CidrIp",
]

ACTIONS = {
    "DescribeAvailabilityZones": ["ZoneName.N", *FILTERS],
    "DescribeRegions": ["RegionName.N", *FILTERS],
    "RunInstances": [
        "ImageId",
        "MinCount",
        "MaxCount",
        "KeyName",
        "SecurityGroup.N",
        "SecurityGroupId.N",
        "AdditionalInfo",
        "UserData",
        "AddressingType",
        "InstanceType",
        "KernelId",
        "RamdiskId",
        "Placement.AvailabilityZone",
        "Placement.GroupName",
        "Placement.Tenancy",
        "BlockDeviceMapping.N.DeviceName",
        "BlockDeviceMapping.N.VirtualName",
        "BlockDeviceMapping.N.NoDevice",
        "BlockDeviceMapping.N.Ebs.SnapshotId",
        "BlockDeviceMapping.N.Ebs.VolumeSize",
        "BlockDeviceMapping.N.Ebs.DeleteOnTermination",
        "BlockDeviceMapping.N.Ebs.VolumeType",
        "BlockDeviceMapping.N.Ebs.Iops",
        "Monitoring.Enabled",
        "SubnetId",
        "DisableApiTermination",
        "InstanceInitiatedShutdownBehavior",
        "PrivateIpAddress",
        "ClientToken",
        "NetworkInterface.N.NetworkInterfaceId",
        "NetworkInterface.N.DeviceIndex",
        "NetworkInterface.N.SubnetId",
        "NetworkInterface.N.Description",
        "NetworkInterface.N.PrivateIpAddress",
        "NetworkInterface.N.SecurityGroupId.M",
        "NetworkInterface.N.DeleteOnTermination",
        "NetworkInterface.N.PrivateIpAddresses.M.PrivateIpAddress",
        "NetworkInterface.N.PrivateIpAddresses.M.Primary",
        "NetworkInterface.N.SecondaryPrivateIpAddressCount",
        "NetworkInterface.N.AssociatePublicIpAddress",
        "IamInstanceProfile.Arn",
        "IamInstanceProfile.Name",
        "EbsOptimized",
    ],
    "CreateTags": ["ResourceId.N", "Tag.N.Key", "Tag.N.Value"],
    "DeleteTags": ["ResourceId.N", "Tag.N.Key", "Tag.N.Value"],
    "DescribeTags": [*FILTERS, *PAGING],
    "DescribeInstances": ["InstanceId.N", *FILTERS, *PAGING],
    "DescribeInstanceStatus": ["InstanceId.N", "IncludeAllInstances", *FILTERS, *PAGING],
    "TerminateInstances": ["InstanceId.N"],
    "StopInstances": ["InstanceId.N", "Force"],
    "StartInstances": ["InstanceId.N", "AdditionalInfo"],
    "RebootInstances": ["InstanceId.N"],
    "CreateSecurityGroup": ["GroupName", "GroupDescription", "VpcId"],
    "AuthorizeSecurityGroupIngress": IP_PERMISSIONS,
    "RevokeSecurityGroupIngress": IP_PERMISSIONS,
    "DeleteSecurityGroup": ["GroupName", "GroupId"],
    "DescribeSecurityGroups": ["GroupName.N", "GroupId.N", *FILTERS],
    "ImportKeyPair": ["KeyName", "PublicKeyMaterial"],
    "CreateKeyPair": ["KeyName"],
    "DeleteKeyPair": ["KeyName"],
    "DescribeKeyPairs": ["KeyName.N", *FILTERS],
    "DescribeImages": ["ImageId.N", "Owner.N", "ExecutableBy.N", *FILTERS],
    "GetConsoleOutput": ["InstanceId"],
    "DescribeSubnets": ["SubnetId.N", *FILTERS],
    "DescribeVpcs": ["VpcId.N", *FILTERS],
    "DescribeInstanceAttribute": ["InstanceId", "Attribute"],
}


def _compile(pattern):
    parts = []
    for piece in pattern.split("."):
        parts.append(r"[1-9][0-9]*" if piece in ("N", "M") else re.escape(piece))
    return re.compile(r"\A" + r"\.".join(parts) + r"\Z")


_COMPILED = {action: [_compile(p) for p in COMMON + params] for action, params in ACTIONS.items()}


def known_action(action):
    return action in _COMPILED


def unbound(action, params):
    """The parameter names (in request order) that Eucalyptus would fail to bind for `action`."""
    patterns = _COMPILED[action]
    return [name for name in params if not any(p.match(name) for p in patterns)]


def failure_message(params, names):
    """Eucalyptus's wording: one `Name = value` line per leftover parameter."""
    lines = ["Failed to bind the following fields:"]
    for name in names:
        value = params.get(name, "")
        if len(value) > 64:
            value = value[:61] + "..."
        lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n"
