"""Reusable annotated types for the stack config, each with the rule it enforces."""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, Field

# PostgreSQL identifiers are capped at 63 bytes; role names add suffixes such as
# "_migrator", so the base name leaves room for them.
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_STORAGE = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti)$")
_DURATION = re.compile(r"^([1-9][0-9]*)(ms|s|m|h|d)$")
_MEMORY = re.compile(r"^[1-9][0-9]*(kb|mb|gb)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes resource quantities (apimachinery resource.Quantity): a decimal with an optional
# binary (Ki..Ei), decimal (m, k..E) or exponent suffix.
_QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
# Label values: up to 63 characters, alphanumeric at both ends, '-', '_' and '.' inside.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: Databases every server holds from initdb: the provider would adopt (and on destroy drop) them.
RESERVED_DATABASES = ("postgres", "template0", "template1")
#: Role names PostgreSQL refuses ("role name ... is reserved"); 'pg_' starts its predefined roles.
RESERVED_ROLES = ("public", "none")
#: Login roles pgfleet makes on a server for its replicas and exporter (SharedServer._login_role).
PGFLEET_ROLES = ("pgfleet_replicator", "pgfleet_monitor")
#: Schemas every new database has: a service's own schema must be its own.
RESERVED_SCHEMAS = ("public", "information_schema")
_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
# (field name, lowest, highest) for the five fields of a cron expression.
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-40 characters of lowercase letters, digits and "
            "underscores, starting with a letter (it becomes a PostgreSQL identifier)"
        )
    return value


def _not_pg_prefixed(value: str, what: str) -> None:
    if value.startswith("pg_"):
        raise ValueError(f"{value!r}: PostgreSQL reserves the 'pg_' prefix for {what}; choose a name without it")


def _database_name(value: str) -> str:
    if value in RESERVED_DATABASES:
        raise ValueError(
            f"{value!r} is a database every PostgreSQL server already holds ({', '.join(RESERVED_DATABASES)}); "
            "choose another name, e.g. the default '<service>_db'"
        )
    return value


def _role_name(value: str) -> str:
    _not_pg_prefixed(value, "its own roles")
    if value in RESERVED_ROLES:
        raise ValueError(f"{value!r} is a role name PostgreSQL reserves ({', '.join(RESERVED_ROLES)}); choose another")
    if value in PGFLEET_ROLES:
        raise ValueError(
            f"{value!r} is a role pgfleet makes on every server ({', '.join(PGFLEET_ROLES)}); choose another"
        )
    return value


def _schema_name(value: str) -> str:
    _not_pg_prefixed(value, "system schemas")
    if value in RESERVED_SCHEMAS:
        raise ValueError(
            f"{value!r} exists in every new database ({', '.join(RESERVED_SCHEMAS)}), so it would not be the "
            "service's own; choose another, e.g. the service's name (the default)"
        )
    return value


def _service_name(value: str) -> str:
    # its roles are '<name>_owner', '<name>_migrator', ...: PostgreSQL refuses them with 'pg_'
    _not_pg_prefixed(value, "its own roles, and the service's roles begin with its name")
    return value


def _quantity(value: str) -> str:
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity: use a number with an optional suffix, e.g. '500m' or '2' "
            "(CPU), '512Mi' or '4Gi' (memory); suffixes are case-sensitive: m, k, M, G, T, Ki, Mi, Gi, Ti"
        )
    if value.startswith("-") or float(match.group(1)) == 0:
        raise ValueError(f"{value!r} must be more than zero, e.g. '500m' (CPU) or '512Mi' (memory)")
    return value


def _label_name(value: str) -> str:
    if not _LABEL_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes label name: 1-63 letters, digits, '-', '_' or '.', "
            "beginning and ending with a letter or digit"
        )
    return value


def _label_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(
            f"{value!r}: the label key's prefix {prefix!r} is not a DNS subdomain (lowercase letters, digits, "
            "'-' and '.', up to 253 characters), e.g. 'example.com/team'"
        )
    _label_name(name)
    return value


def _label_value(value: str) -> str:
    if value and not _LABEL_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes label value: up to 63 letters, digits, '-', '_' or '.', "
            "beginning and ending with a letter or digit"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes object name: lowercase letters, digits, '-' and '.', "
                         "beginning and ending with a letter or digit, e.g. 'standard'")
    return value


def _s3_bucket(value: str) -> str:
    rules = "3-63 lowercase letters, digits, '.' and '-', beginning and ending with a letter or digit, e.g. 'acme-backups'"
    if not _S3_BUCKET.match(value):
        raise ValueError(f"{value!r} is not an S3 bucket name: use {rules}")
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError(f"{value!r} is not an S3 bucket name: no '..', '.-' or '-.'; use {rules}")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return value
    raise ValueError(f"{value!r} is not an S3 bucket name: it may not look like an IP address; use {rules}")


def _storage_size(value: str) -> str:
    if not _STORAGE.match(value):
        raise ValueError(f"{value!r} is not a storage size: use a whole number with Mi, Gi or Ti, e.g. '10Gi'")
    return value


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration: use a whole number with ms, s, m, h or d, e.g. '30s', '5m'")
    return value


def _memory(value: str) -> str:
    if not _MEMORY.match(value):
        raise ValueError(f"{value!r} is not a memory size: use a whole number with kb, mb or gb, e.g. '256mb'")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label: use up to 63 lowercase letters, digits and '-'")
    return value


def _cron_field(text: str, name: str, low: int, high: int) -> None:
    for part in text.split(","):
        body, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"the {name} field step {step!r} must be a positive whole number")
        if body == "*":
            continue
        bounds = body.split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            raise ValueError(f"the {name} field {part!r} must be '*', a number, a range a-b, or a list of them")
        numbers = [int(b) for b in bounds]
        if any(n < low or n > high for n in numbers) or numbers != sorted(numbers):
            raise ValueError(f"the {name} field {part!r} must lie within {low}-{high}")


def _cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a cron schedule: use five fields 'minute hour day-of-month month day-of-week', "
            "e.g. '0 0 * * *' for daily at 00:00"
        )
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        try:
            _cron_field(text, name, low, high)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a cron schedule: {error}") from None
    return value


def _loopback(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address; use 127.0.0.1") from None
    if not address.is_loopback:
        raise ValueError(f"{value!r} is not a loopback address: dev ports bind to 127.0.0.1 (or ::1) only")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise ValueError(f"{value!r} is not a CIDR block such as '10.0.0.0/16': {error}") from None


def duration_ms(value: str) -> int:
    """Milliseconds in a validated duration string ('30s' -> 30000)."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration")
    return int(match.group(1)) * _DURATION_MS[match.group(2)]


def duration_s(value: str) -> int:
    """Whole seconds in a validated duration string, at least 1."""
    return max(1, duration_ms(value) // 1000)


Identifier = Annotated[str, AfterValidator(_identifier)]
StorageSize = Annotated[str, AfterValidator(_storage_size)]
Duration = Annotated[str, AfterValidator(_duration)]
MemorySize = Annotated[str, AfterValidator(_memory)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
LoopbackAddress = Annotated[str, AfterValidator(_loopback)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Port = Annotated[int, Field(ge=1, le=65535)]
DatabaseName = Annotated[str, AfterValidator(_identifier), AfterValidator(_database_name)]
RoleName = Annotated[str, AfterValidator(_identifier), AfterValidator(_role_name)]
SchemaName = Annotated[str, AfterValidator(_identifier), AfterValidator(_schema_name)]
ServiceName = Annotated[str, AfterValidator(_identifier), AfterValidator(_service_name)]
Quantity = Annotated[str, AfterValidator(_quantity)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
S3Bucket = Annotated[str, AfterValidator(_s3_bucket)]
