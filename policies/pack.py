"""The policy pack: pgfleet's invariants (invariants.py) as mandatory policies."""
from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from . import PACK_NAME
from . import invariants as inv
from .secrets import keep_secret_marks


def _docker_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == inv.DOCKER_CONTAINER:
        for message in inv.ports_beyond_loopback(args.props):
            report(message)


def _plain_env(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == inv.DOCKER_CONTAINER or args.resource_type.startswith("kubernetes:"):
        for message in inv.plain_credential_env(args.resource_type, args.props):
            report(message)


def _resources(args: StackValidationArgs) -> list[inv.Resource]:
    return [inv.Resource(r.urn, r.resource_type, r.name, r.props, bool(r.opts.protect)) for r in args.resources]


def _secret_outputs(args: StackValidationArgs, report: ReportViolation) -> None:
    for r in args.resources:
        for message in inv.plaintext_credentials(r.props):
            report(message, r.urn)


def _data_kept(args: StackValidationArgs, report: ReportViolation) -> None:
    for urn, message in inv.unkept_data(_resources(args)):
        report(message, urn)


def _network_policies(args: StackValidationArgs, report: ReportViolation) -> None:
    for urn, message in inv.servers_without_network_policy(_resources(args)):
        report(message, urn)


POLICIES = [
    ResourceValidationPolicy(
        name="docker-ports-on-loopback",
        description="A container's published ports answer on this machine only (127.0.0.1).",
        validate=_docker_ports,
    ),
    ResourceValidationPolicy(
        name="no-plain-credential-env",
        description="No password, token or key is set in a container's environment in plain text.",
        validate=_plain_env,
    ),
    StackValidationPolicy(
        name="credentials-are-secret",
        description="Every password, token, secret_id and URL with a password is held as a secret.",
        validate=_secret_outputs,
    ),
    StackValidationPolicy(
        name="prod-data-kept",
        description="On Kubernetes, data claims are retained and StatefulSets, claims and databases protected.",
        validate=_data_kept,
    ),
    StackValidationPolicy(
        name="database-servers-behind-network-policy",
        description="Every database server's pods are admitted only by an ingress NetworkPolicy.",
        validate=_network_policies,
    ),
]


def serve() -> None:
    """Serve the pack to the engine (blocks; the engine stops it)."""
    keep_secret_marks()
    PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
