"""The Markdown report of a pull request's previews: per stack, what would be created, changed,
replaced or deleted, grouped by service and server, with whatever loses data and every policy
violation at the top. Deterministic: the same previews give the same text, so a re-run updates
a comment to the same body."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .digest import Preview, Step, name_of, type_of

#: Starts the PR comment, so the next run finds and updates it instead of adding another.
MARKER = "<!-- pgfleet-preview -->"

#: Resources whose deletion or replacement loses data (or, for a role, what it owns and is granted).
DATA_TYPES = {
    "postgresql:index/database:Database": "database",
    "postgresql:index/role:Role": "role",
    "postgresql:index/schema:Schema": "schema",
    "docker:index/volume:Volume": "volume",
    "kubernetes:core/v1:PersistentVolumeClaim": "PersistentVolumeClaim",
    "kubernetes:apps/v1:StatefulSet": "StatefulSet",
    "kubernetes:core/v1:Namespace": "namespace",
}
REPLACING_OPS = frozenset({"replace", "create-replacement", "delete-replaced", "import-replacement"})
DELETING_OPS = frozenset({"delete", "discard", "discard-replaced"})
#: How pgfleet's components group: the outermost component a resource belongs to.
GROUP_OF_TYPE = {
    "pgfleet:postgres:IsolatedDatabase": "service",
    "pgfleet:vault:VaultAppRole": "service",
    "pgfleet:postgres:SharedServer": "server",
    "pgfleet:backup:BackupBucket": "backups",
    "pgfleet:redis:RedisCache": "redis",
}
OP_ORDER = ("create", "update", "replace", "delete")


@dataclass(frozen=True)
class Change:
    """One resource's change, its replacement steps folded into one "replace"."""
    op: str
    urn: str
    type: str
    name: str
    group: str
    reasons: tuple[str, ...]

    @property
    def loses_data(self) -> bool:
        return self.type in DATA_TYPES and self.op in ("replace", "delete")


def _op(ops: set[str]) -> str:
    if ops & REPLACING_OPS:
        return "replace"
    if ops & DELETING_OPS:
        return "delete"
    return sorted(ops)[0]


def _group(urn: str, parents: dict[str, str | None]) -> str:
    """'service orders', 'server shared', ... for the outermost pgfleet component above `urn`;
    'stack' for what no component holds."""
    group, seen, current = "stack", set(), urn
    while current and current not in seen:
        seen.add(current)
        kind = GROUP_OF_TYPE.get(type_of(current))
        if kind:
            group = f"{kind} {name_of(current)}" if kind in ("service", "server") else kind
        current = parents.get(current)
    return group


def changes(preview: Preview) -> list[Change]:
    by_urn: dict[str, list[Step]] = defaultdict(list)
    for step in preview.changing_steps:
        by_urn[step.urn].append(step)
    found = []
    for urn, steps in by_urn.items():
        reasons = tuple(sorted({r for s in steps for r in s.reasons}))
        found.append(Change(_op({s.op for s in steps}), urn, steps[0].type, steps[0].name,
                            _group(urn, preview.parents), reasons))
    return sorted(found, key=lambda c: (c.group, _rank(c.op), c.type, c.name))


def _rank(op: str) -> int:
    return OP_ORDER.index(op) if op in OP_ORDER else len(OP_ORDER)


def _blocking(assessed: Sequence[tuple[Preview, list[Change]]], allow_data_loss: bool) -> list[str]:
    reasons = []
    for preview, found in assessed:
        if preview.errors:
            reasons.append(f"{preview.stack}: the preview failed")
        for v in preview.violations:
            if v.level in ("mandatory", "remediate"):
                reasons.append(f"{preview.stack}: policy {v.policy} is violated")
        if not allow_data_loss:
            reasons += [f"{preview.stack}: {c.op} of {DATA_TYPES[c.type]} {c.name} loses data"
                        for c in found if c.loses_data]
    return reasons


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _counts(found: Sequence[Change]) -> str:
    counted = defaultdict(int)
    for change in found:
        counted[change.op] += 1
    if not counted:
        return "no changes"
    return ", ".join(f"{counted[op]} to {op}" for op in sorted(counted, key=_rank))


def _stack_section(preview: Preview, found: Sequence[Change], allow_data_loss: bool) -> list[str]:
    lines = [f"## Stack {_code(preview.stack)}: {_counts(found)}", ""]
    if preview.errors:
        lines += ["> [!CAUTION]", "> **The preview failed:**"]
        lines += [f"> - {_code(e.splitlines()[0][:300])}" for e in preview.errors]
        lines.append("")
    losing = [c for c in found if c.loses_data]
    if losing:
        head = "allowed by the override" if allow_data_loss else "blocked unless the PR carries the override"
        lines += ["> [!CAUTION]", f"> **Loses data** ({head}):"]
        lines += [f"> - {c.op} of {DATA_TYPES[c.type]} {_code(c.name)} in {c.group}"
                  + (f" (because {', '.join(map(_code, c.reasons))} changed)" if c.reasons else "") for c in losing]
        lines.append("")
    if preview.violations:
        lines += ["> [!CAUTION]", "> **Policy violations:**"]
        lines += [f"> - {_code(v.policy)} ({v.level}){' on ' + _code(name_of(v.urn)) if v.urn else ''}: "
                  f"{v.message}"
                  for v in sorted(preview.violations, key=lambda v: (v.policy, v.urn or "", v.message))]
        lines.append("")
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in found:
        groups[change.group].append(change)
    for group in sorted(groups, key=lambda g: (g == "stack", g)):
        lines += [f"### {group}", "", "| | resource | type | because |", "|---|---|---|---|"]
        for c in groups[group]:
            flag = " **(loses data)**" if c.loses_data else ""
            because = ", ".join(map(_code, c.reasons))
            lines.append(f"| {c.op}{flag} | {_code(c.name)} | {_code(c.type)} | {because} |")
        lines.append("")
    return lines


@dataclass(frozen=True)
class Assessment:
    """The report of a pull request's previews, and why it must not merge (empty when it may)."""
    body: str
    reasons: list[str]


def assess(previews: Sequence[Preview], allow_data_loss: bool = False) -> Assessment:
    """Every stack's changes, worked out once, as one Markdown document and the check's verdict."""
    assessed = [(p, changes(p)) for p in previews]
    reasons = _blocking(assessed, allow_data_loss)
    lines = [MARKER, "# pgfleet preview", ""]
    if reasons:
        lines += ["**Not mergeable as it is:**", *[f"- {r}" for r in reasons], ""]
    elif allow_data_loss and any(c.loses_data for _, found in assessed for c in found):
        lines += ["**Mergeable: the data loss below is allowed by the PR's override.**", ""]
    for preview, found in sorted(assessed, key=lambda pair: pair[0].stack):
        lines += _stack_section(preview, found, allow_data_loss)
    return Assessment("\n".join(lines).rstrip() + "\n", reasons)


def render(previews: Sequence[Preview], allow_data_loss: bool = False) -> str:
    """The report of every stack's preview, as one Markdown document."""
    return assess(previews, allow_data_loss).body


def blocking(previews: Sequence[Preview], allow_data_loss: bool) -> list[str]:
    """Why the pull request must not merge as it is; empty when it may."""
    return assess(previews, allow_data_loss).reasons
