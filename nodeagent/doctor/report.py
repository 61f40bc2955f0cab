"""Rendering doctor findings: a table for people, JSON for programs."""

from __future__ import annotations

import json
import shutil
import textwrap

from nodeagent.doctor.checks import Finding, Verdict


def overall(findings: list[Finding]) -> Verdict:
    if any(f.verdict is Verdict.FAIL and f.required for f in findings):
        return Verdict.FAIL
    if any(f.verdict is not Verdict.OK for f in findings):
        return Verdict.WARN
    return Verdict.OK


def exit_status(findings: list[Finding]) -> int:
    """1 when a required feature is missing, else 0 (warnings do not fail the node)."""
    return 1 if overall(findings) is Verdict.FAIL else 0


def to_json(findings: list[Finding]) -> str:
    cgroup = next((f.data for f in findings if f.check == "cgroup mode"), {})
    doc = {
        "verdict": overall(findings).value.lower(),
        "cgroup": cgroup,
        "checks": [
            {"check": f.check, "verdict": f.verdict.value.lower(), "required": f.required,
             "detail": f.detail, "fix": f.fix, "data": f.data}
            for f in findings
        ],
    }
    return json.dumps(doc, indent=2)


def to_table(findings: list[Finding], width: int | None = None) -> str:
    width = width or shutil.get_terminal_size((120, 24)).columns
    c1 = max(len("CHECK"), *(len(f.check) for f in findings))
    c2 = len("VERDICT")
    detail_width = max(30, width - c1 - c2 - 4)
    lines = [f"{'CHECK':<{c1}}  {'VERDICT':<{c2}}  DETAIL / FIX"]
    for f in findings:
        body = textwrap.wrap(f.detail, detail_width) or [""]
        if f.verdict is not Verdict.OK and f.fix:
            body += textwrap.wrap("fix: " + f.fix, detail_width)
        lines.append(f"{f.check:<{c1}}  {f.verdict.value:<{c2}}  {body[0]}")
        lines += [f"{'':<{c1}}  {'':<{c2}}  {rest}" for rest in body[1:]]
    fails = sum(f.verdict is Verdict.FAIL for f in findings)
    warns = sum(f.verdict is Verdict.WARN for f in findings)
    verdict = {Verdict.OK: "this machine can run nodeagent",
               Verdict.WARN: "this machine can run nodeagent; see the warnings",
               Verdict.FAIL: "this machine cannot run nodeagent until the failures are fixed"}
    lines.append("")
    lines.append(f"{fails} failed, {warns} warnings: {verdict[overall(findings)]}")
    return "\n".join(lines)
