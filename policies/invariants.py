"""pgfleet's invariants, each a check over the properties the engine hands a policy. A check
returns its findings as messages; the pack (pack.py) reports each as a violation.

They hold for the project's stacks and for any program built from its components: a user who
adds a raw container or claim beside them is held to the same rules."""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from .secrets import SecretStr

DOCKER_CONTAINER = "docker:index/container:Container"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DATABASE = "postgresql:index/database:Database"
#: The label pgfleet's components put on every process of a database server (components/platform).
SERVER_LABEL = "pgfleet.io/server"

#: Names of values that are credentials (lowercased, without "_" and "-").
CREDENTIAL_KEYS = frozenset({
    "password", "adminpassword", "secretid", "token", "clienttoken", "accesskey", "secretkey",
    "secretaccesskey", "privatekey", "passphrase", "apikey",
})
#: Environment variables that carry a credential; a *_FILE, *_PATH or *_DIR one names a place.
CREDENTIAL_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|API_KEY|CREDENTIAL)", re.I)
PLACE_ENV = re.compile(r"_(FILE|PATH|DIR|FILES)$", re.I)
#: A URL with a password in it: scheme://user:password@host.
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@", re.I)


@dataclass(frozen=True)
class Resource:
    """What a stack policy sees of one resource."""
    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool


def known(read: Any, default: Any = None) -> Any:
    """The value `read()` gives, or `default` when it is missing or not known until the update."""
    try:
        return read()
    except (KeyError, IndexError, TypeError, UnknownValueError):
        return default


def at(props: Any, *path: str | int) -> Any:
    """props[path...], None when any step is missing or unknown."""
    def read() -> Any:
        value = props
        for step in path:
            value = value[step]
        return value
    return known(read)


_MISSING = object()


def items(sequence: Any) -> Iterator[Any]:
    """The known elements of a list property (one not known until the update is skipped)."""
    if isinstance(sequence, Sequence) and not isinstance(sequence, str):
        for index in range(len(sequence)):
            element = known(lambda i=index: sequence[i], _MISSING)
            if element is not _MISSING:
                yield element


def _normalized(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, leaf) of a property tree; unknown leaves are left out."""
    if isinstance(value, Mapping):
        for key in list(value):
            child = known(lambda k=key: value[k], _MISSING)
            if child is not _MISSING:
                yield from _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        for index in range(len(value)):
            child = known(lambda i=index: value[i], _MISSING)
            if child is not _MISSING:
                yield from _walk(child, f"{path}[{index}]")
    else:
        yield path, value


# -- docker-ports-on-loopback ------------------------------------------------------------------

def ports_beyond_loopback(props: Mapping[str, Any]) -> list[str]:
    """A container's published ports that answer on more than this machine."""
    found = []
    for index, port in enumerate(items(at(props, "ports"))):
        try:
            ip = port["ip"] if "ip" in port else None
        except UnknownValueError:
            continue  # not known until the update: checked then
        try:
            loopback = bool(ip) and ipaddress.ip_address(ip).is_loopback
        except ValueError:
            loopback = ip == "localhost"
        if not loopback:
            shown = ip or "0.0.0.0 (every interface)"
            found.append(f"ports[{index}] (container port {at(port, 'internal')}) is published on {shown}; "
                         f"bind it to 127.0.0.1")
    return found


# -- no-plain-credential-env -------------------------------------------------------------------

def _containers(props: Any) -> Iterator[tuple[str, Any]]:
    """Every container spec in a Kubernetes object's properties, with its path."""
    stack: list[tuple[str, Any]] = [("", props)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping):
            for key in list(value):
                child = known(lambda k=key: value[k])
                here = f"{path}.{key}" if path else key
                if key in ("containers", "initContainers"):
                    for index, container in enumerate(items(child)):
                        yield f"{here}[{index}]", container
                elif isinstance(child, (Mapping, Sequence)) and not isinstance(child, str):
                    stack.append((here, child))


def plain_credential_env(type_: str, props: Mapping[str, Any]) -> list[str]:
    """Credentials set in a container's environment as plain values (the components deliver them
    as files or Kubernetes Secret references, out of the container spec)."""
    found = []
    if type_ == DOCKER_CONTAINER:
        for entry in items(at(props, "envs")):
            name, _, value = str(entry).partition("=")
            if CREDENTIAL_ENV.search(name) and not PLACE_ENV.search(name) and value:
                found.append(f"envs sets {name} in plain text; deliver it as a file (*_FILE)")
        return found
    for path, container in _containers(props):
        for entry in items(at(container, "env")):
            name = at(entry, "name") or ""
            if CREDENTIAL_ENV.search(name) and not PLACE_ENV.search(name) and at(entry, "value"):
                found.append(f"{path} env {name} has a plain value; use valueFrom.secretKeyRef or a mounted Secret")
    return found


# -- credentials-are-secret --------------------------------------------------------------------

def plaintext_credentials(props: Mapping[str, Any]) -> list[str]:
    """Credentials among a resource's outputs (or a stack's exports) not held as secrets."""
    found = []
    for path, value in _walk(props):
        if not isinstance(value, str) or not value or isinstance(value, SecretStr):
            continue
        key = re.split(r"[.\[]", path)[-1] if path else ""
        if _normalized(key) in CREDENTIAL_KEYS:
            found.append(f"{path} is a credential in plain text; make it secret (pulumi.Output.secret)")
        elif URL_WITH_PASSWORD.match(value):
            found.append(f"{path} is a URL with a password in plain text; make it secret")
    return found


# -- prod-data-kept ----------------------------------------------------------------------------

def runs_on_kubernetes(resources: Iterable[Resource]) -> bool:
    """pgfleet's production platform is Kubernetes; Docker is the developer's machine."""
    return any(r.type in (STATEFULSET, DEPLOYMENT, CLAIM) for r in resources)


def unkept_data(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    """(urn, message) for each stateful resource of a production stack that a destroy, a scale
    down or a replacement could delete."""
    if not runs_on_kubernetes(resources):
        return []
    found = []
    for r in resources:
        if r.type == STATEFULSET and at(r.props, "spec", "volumeClaimTemplates"):
            if not r.protect:
                found.append((r.urn, f"StatefulSet {r.name} holds data and is not protected"))
            for when in ("whenDeleted", "whenScaled"):
                if at(r.props, "spec", "persistentVolumeClaimRetentionPolicy", when) == "Delete":
                    found.append((r.urn, f"StatefulSet {r.name} deletes its claims {when}; set Retain"))
        elif r.type in (CLAIM, DATABASE) and not r.protect:
            kind = "PersistentVolumeClaim" if r.type == CLAIM else "database"
            found.append((r.urn, f"{kind} {r.name} is not protected"))
    return found


# -- database-servers-behind-network-policy ----------------------------------------------------

def _selects(policy: Resource, namespace: str | None, pod_labels: Mapping[str, Any]) -> bool:
    policy_namespace = at(policy.props, "metadata", "namespace")
    if namespace and policy_namespace and policy_namespace != namespace:
        return False
    spec = at(policy.props, "spec") or {}
    types = at(spec, "policyTypes") or (["Ingress"] if at(spec, "ingress") is not None else [])
    if "Ingress" not in list(types) or at(spec, "podSelector", "matchExpressions"):
        return False
    wanted = at(spec, "podSelector", "matchLabels") or {}
    return bool(wanted) and all(pod_labels.get(k) == at(wanted, k) for k in list(wanted))


def servers_without_network_policy(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    """(urn, message) for each database server workload no ingress NetworkPolicy selects: its
    port would be open to every pod of the cluster."""
    policies = [r for r in resources if r.type == NETWORK_POLICY]
    found = []
    for r in resources:
        if r.type not in (STATEFULSET, DEPLOYMENT):
            continue
        pod_labels = dict(at(r.props, "spec", "template", "metadata", "labels") or {})
        if r.type == DEPLOYMENT and SERVER_LABEL not in pod_labels:
            continue  # a Deployment is a database server's only when it is one of its processes
        namespace = at(r.props, "metadata", "namespace")
        if not any(_selects(p, namespace, pod_labels) for p in policies):
            found.append((r.urn, f"{r.type.split(':')[-1]} {r.name} is admitted by no ingress NetworkPolicy"))
    return found
