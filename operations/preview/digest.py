"""What one `pulumi preview` of a stack says it would do: its steps (from `--json`) and the
policy violations and errors (from `--event-log`, since the JSON digest leaves policy events out)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: The engine's closing line when a preview fails; said of violations it adds nothing.
ENGINE_FAILED = re.compile(r"^(error: )?preview failed$")
#: How much of what a failed program printed on stderr the report keeps.
PROGRAM_LINES = 10
#: Ops that change nothing: the report leaves them out (--show-sames brings them for the tree).
QUIET_OPS = frozenset({"same", "read", "refresh"})


@dataclass(frozen=True)
class Step:
    op: str
    urn: str
    type: str
    name: str
    parent: str | None
    #: The properties whose change makes the update (an update) or the replacement (a replace).
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    policy: str
    pack: str
    level: str
    message: str
    urn: str | None


@dataclass
class Preview:
    stack: str
    steps: list[Step] = field(default_factory=list)
    #: Every resource the preview knew (changed or not), urn -> parent urn: the grouping's tree.
    parents: dict[str, str | None] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def changing_steps(self) -> list[Step]:
        return [s for s in self.steps if s.op not in QUIET_OPS]


def name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def type_of(urn: str) -> str:
    return urn.split("::")[2].rsplit("$", 1)[-1]


def _step(raw: dict[str, Any]) -> Step:
    state = raw.get("newState") or raw.get("oldState") or {}
    urn = raw["urn"]
    reasons = raw.get("replaceReasons") or raw.get("diffReasons") or list(raw.get("detailedDiff") or {})
    return Step(op=raw["op"], urn=urn, type=state.get("type") or type_of(urn), name=name_of(urn),
                parent=state.get("parent") or None, reasons=tuple(sorted({str(r) for r in reasons})))


def _summary(message: str) -> str:
    """An error's gist: a traceback's last line (the exception), else its first."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if any(line.startswith("Traceback") for line in lines) else lines[0]


def _finding(policy: dict[str, Any]) -> str:
    """What the policy found: the event's message, less the policy's description it starts with."""
    lines = [line.strip() for line in str(policy.get("message", "")).strip().splitlines() if line.strip()]
    description = str(policy.get("description", "")).strip()
    if len(lines) > 1 and (lines[0] == description or not description):
        lines = lines[1:]
    return "; ".join(lines)


def read(stack: str, digest_json: str, event_lines: str = "") -> Preview:
    """The preview of `stack` from the text `pulumi preview --json` printed and its event log."""
    preview = Preview(stack)
    digest: dict[str, Any] = {}
    if digest_json.strip():
        try:
            digest = json.loads(digest_json)
        except json.JSONDecodeError:
            preview.errors.append("pulumi preview printed no JSON digest")
    for raw in digest.get("steps") or []:
        step = _step(raw)
        preview.steps.append(step)
        preview.parents[step.urn] = step.parent
    program_stderr: list[str] = []
    for diagnostic in digest.get("diagnostics") or []:
        message = str(diagnostic.get("message", ""))
        if diagnostic.get("severity") == "error":
            preview.errors.append(_summary(message))
        elif diagnostic.get("severity") == "info#err":
            program_stderr += [line.strip() for line in message.splitlines() if line.strip()]
    if preview.errors and program_stderr:  # what the program said of its failure comes first
        preview.errors = program_stderr[-PROGRAM_LINES:] + preview.errors
    for line in event_lines.splitlines():
        event = json.loads(line) if line.strip() else {}
        policy = event.get("policyEvent")
        if policy:
            preview.violations.append(Violation(
                policy=policy.get("policyName", ""), pack=policy.get("policyPackName", ""),
                level=policy.get("enforcementLevel", ""), message=_finding(policy),
                urn=policy.get("resourceUrn") or None))
        diagnostic = event.get("diagnosticEvent")
        if diagnostic and diagnostic.get("severity") == "error" and not digest:
            preview.errors.append(_summary(str(diagnostic.get("message", ""))))
    preview.errors = list(dict.fromkeys(e for e in preview.errors if e))
    if preview.violations:  # the engine's own line for the failure the violations made
        preview.errors = [e for e in preview.errors if not ENGINE_FAILED.match(e)]
    return preview
