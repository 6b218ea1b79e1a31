"""What a PostgreSQL image accepts: its settings (names, types, bounds) and preloadable libraries.

The data is read from the image itself (`setup/describe-postgres-image.py` writes
`postgres<major>.json`; tests/integration/test_image_catalogue.py keeps it equal to the image).
A server given an unknown setting, a value of the wrong type or out of range, or a library the
image lacks refuses to start, half-way through `pulumi up`; a module's setting with a bad name or
value is dropped with only a warning in the server log. Both are refused at load instead.
The value rules follow PostgreSQL's own parsers (guc.c `parse_int`, `parse_real`, `parse_bool`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent

# Units relative to a base unit, per kind (guc.c memory_unit_conversion_table and the time one).
_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_BASE_UNITS = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024**2, "ms": 1, "s": 1000, "min": 60_000}
# strtol(..., 0) then strtod: decimal, 0x hex, 0 octal; or a decimal fraction / exponent
_INTEGER = re.compile(r"\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_REAL = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_HEX_REAL = re.compile(r"\s*[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_INT_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Setting:
    """One server setting as `pg_settings` describes it."""

    name: str
    type: str
    """bool, integer, real, enum or string."""
    unit: str | None
    min: float | None
    max: float | None
    values: tuple[str, ...]
    """An enum's values; a boolean's of 'on' and 'off' that this build takes (bonjour: off only)."""
    aliases: tuple[str, ...]
    """Other spellings the server takes for an enum's values (true for on, hot_standby...)."""
    context: str
    default: str | None
    in_file: bool
    """A server's configuration may carry it (not transaction_isolation, data_directory...)."""


@dataclass(frozen=True)
class Catalogue:
    image: str
    major: int
    libraries: frozenset[str]
    settings: dict[str, Setting]

    def number(self, name: str, value: str | None = None) -> float:
        """A numeric setting's value (its default when None) in its own unit."""
        setting = self.settings[name]
        parsed = _number(setting, value if value is not None else setting.default or "")
        if parsed is None:
            raise ValueError(f"{name}={value!r} is not a number")
        return parsed

    @property
    def modules(self) -> frozenset[str]:
        """Prefixes of the settings the image's modules define (pg_stat_statements, auto_explain...)."""
        return frozenset(name.split(".", 1)[0] for name in self.settings if "." in name)


#: The majors with a catalogue, written by setup/describe-postgres-image.py from the project's image.
CATALOGUED = (15, 17)


@cache
def catalogue(major: int) -> Catalogue | None:
    """The catalogue of the project's image of this PostgreSQL major version, if there is one."""
    if major not in CATALOGUED:
        return None
    path = _HERE / f"postgres{major}.json"
    if not path.exists():
        # an install without its package data would check nothing and say nothing
        raise FileNotFoundError(f"{path} is missing: install pgfleet with its package data (stacks/config/*.json)")
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    settings = {
        name: Setting(
            name=name, type=spec["type"], unit=spec["unit"],
            min=float(spec["min"]) if spec["min"] is not None else None,
            max=float(spec["max"]) if spec["max"] is not None else None,
            values=tuple(spec.get("takes", ())),
            aliases=tuple(spec.get("aliases", ())),
            context=spec["context"],
            default=spec["default"],
            in_file=spec.get("in_file", False),
        )
        for name, spec in raw["settings"].items()
    }
    # check_max_stack_depth: at most the stack limit less 512kB of slop, which the server keeps
    # for itself (the image's limit, 8MB under Docker's and Kubernetes' defaults)
    if "max_stack_depth" in settings and "stack_limit_kb" in raw:
        depth = settings["max_stack_depth"]
        ceiling = float(raw["stack_limit_kb"] - 512)
        settings["max_stack_depth"] = replace(depth, max=min(depth.max or ceiling, ceiling))
    return Catalogue(raw["image"], raw["server_version_num"] // 10_000, frozenset(raw["libraries"]), settings)


def _units(setting: Setting) -> dict[str, float] | None:
    """Unit -> how many of the setting's own unit it is; None when the setting takes no unit."""
    if setting.unit is None:
        return None
    base = _BASE_UNITS[setting.unit]
    table = _MEMORY_UNITS if setting.unit in ("B", "kB", "8kB", "MB") else _TIME_UNITS
    return {unit: size / base for unit, size in table.items()}


def _unit_hint(setting: Setting) -> str:
    units = _units(setting)
    return f" with an optional unit ({', '.join(units)})" if units else ""


def _strtol(text: str) -> int:
    """C strtol with base 0: 0x hex, a leading 0 octal, else decimal."""
    digits = text.strip()
    body = digits.lstrip("+-")
    base = 16 if body[:2].lower() == "0x" else 8 if body.startswith("0") and len(body) > 1 else 10
    return int(digits, base)


def _number(setting: Setting, value: str) -> float | None:
    """The value in the setting's own unit, as PostgreSQL parses it; None when it does not parse."""
    match = _INTEGER.match(value) if setting.type == "integer" else None
    if match and value[match.end():match.end() + 1] not in (".", "e", "E"):
        number: float = _strtol(match.group(0))
    elif match := _HEX_REAL.match(value):  # C strtod reads hexadecimal too
        text = match.group(0).strip()
        number = float.fromhex(text if "p" in text.lower() else text + "p0")
    else:
        match = _REAL.match(value)
        if not match:
            return None
        number = float(match.group(0))
    rest = value[match.end():].strip()
    if rest:
        units = _units(setting)
        if units is None or rest not in units:
            return None
        number *= units[rest]
    return float(round(number)) if setting.type == "integer" else number


def _bool(value: str) -> bool | None:
    """parse_bool: any prefix of true/false/yes/no, on, of/off, 1, 0 (case-insensitive)."""
    word = value.lower()
    if not word:
        return None
    if any(w.startswith(word) for w in ("true", "yes")) or word in ("on", "1"):
        return True
    if any(w.startswith(word) for w in ("false", "no")) or word in ("of", "off", "0"):
        return False
    return None


#: Settings no configuration may carry, and the ones that do what was meant.
_NOT_IN_FILE = {"transaction_isolation": "default_transaction_isolation",
                "transaction_read_only": "default_transaction_read_only",
                "transaction_deferrable": "default_transaction_deferrable"}


def value_problem(setting: Setting, value: str) -> str | None:
    """Why the server would refuse `value` for `setting`, with what it takes; None when it takes it."""
    if setting.context == "internal":
        return f"{setting.name!r} is read-only in PostgreSQL (it reports how the server was built); remove it"
    if not setting.in_file:
        instead = _NOT_IN_FILE.get(setting.name)
        return f"{setting.name!r} cannot be set in a server's configuration" + (f"; set {instead!r}" if instead else "")
    if setting.type == "bool":
        meaning = _bool(value)
        if meaning is None:
            return f"{value!r} is not a boolean: use on or off"
        if ("on" if meaning else "off") not in setting.values:
            return f"this build of PostgreSQL takes only {' or '.join(setting.values)} for {setting.name!r}"
        return None
    if setting.type == "enum":
        if value.lower() in (v.lower() for v in setting.values + setting.aliases):
            return None
        return f"{value!r} is not one of {', '.join(setting.values)}"
    if setting.type in ("integer", "real"):
        number = _number(setting, value)
        kind = "a whole number" if setting.type == "integer" else "a number"
        if number is None or math.isnan(number):
            return f"{value!r} is not {kind}{_unit_hint(setting)}"
        if setting.type == "integer" and not _INT_RANGE[0] <= number <= _INT_RANGE[1]:
            return f"{value!r} is out of range for an integer setting"
        low, high = setting.min, setting.max
        if (low is not None and number < low) or (high is not None and number > high):
            unit = f" (in units of {setting.unit})" if setting.unit else ""
            return f"{value!r} is outside the valid range {_plain(low)} .. {_plain(high)}{unit}"
        hook = _NUMBER_HOOKS.get(setting.name)
        if hook is not None:
            return hook(setting, value, number)
    return None  # strings: their own check hooks are not modelled


#: PostgreSQL 17's SLRU caches (check_slru_buffers): a whole number of banks of 16 buffers.
_SLRU_BUFFERS = ("commit_timestamp_buffers", "multixact_member_buffers", "multixact_offset_buffers",
                 "notify_buffers", "serializable_buffers", "subtransaction_buffers", "transaction_buffers")


def _slru_buffers(setting: Setting, value: str, number: float) -> str | None:
    if number % 16 == 0:
        return None
    return f"{value!r} is {_plain(number)} buffers: {setting.name!r} must be a multiple of 16"


def _vacuum_ring(setting: Setting, value: str, number: float) -> str | None:
    # check_vacuum_buffer_usage_limit: 0 (no ring) or 128kB .. 16GB
    if number == 0 or 128 <= number <= 16 * 1024 * 1024:
        return None
    return f"{value!r} is {_plain(number)}kB: {setting.name!r} must be 0 or between 128kB and 16GB"


#: Numeric settings whose check hooks refuse values inside pg_settings' bounds (PostgreSQL 17).
_NUMBER_HOOKS = {**{name: _slru_buffers for name in _SLRU_BUFFERS}, "vacuum_buffer_usage_limit": _vacuum_ring}


#: PostgreSQL's MAX_BACKENDS, and the settings whose sum (plus one) it bounds (check_max_connections...).
MAX_BACKENDS = 0x3FFFF
BACKEND_SETTINGS = ("max_connections", "autovacuum_max_workers", "max_worker_processes", "max_wal_senders")


def backends_problem(values: dict[str, float]) -> str | None:
    """Why the server would refuse these four counts together; None when it takes them."""
    total = sum(values[name] for name in BACKEND_SETTINGS) + 1
    if total > MAX_BACKENDS:
        listed = " + ".join(f"{name} {_plain(values[name])}" for name in BACKEND_SETTINGS)
        return f"{listed} + 1 is {_plain(total)}, over PostgreSQL's limit of {MAX_BACKENDS} processes"
    return None


def _plain(number: float | None) -> str:
    return "?" if number is None else (str(int(number)) if number.is_integer() and abs(number) < 1e18 else f"{number:g}")
