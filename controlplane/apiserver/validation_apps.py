"""Validation of the workload kinds controllers act on: StatefulSet, ControllerRevision (apps),
Job, CronJob (batch) and PodDisruptionBudget (policy).

The rules and words are upstream's (pkg/apis/apps/validation, pkg/apis/batch/validation,
pkg/apis/policy/validation), limited to the fields our controllers depend on: what a controller
cannot sensibly act on is refused here, with the field's path, rather than stored.
"""

from __future__ import annotations

import re
import zoneinfo

from controlplane.apiserver import cron
from controlplane.apiserver.errors import (
    FieldError, forbidden_field, invalid, not_supported, required)
from controlplane.apiserver.selectors import selector_from_match
from controlplane.apiserver.validation import pod_spec

_PERCENT = re.compile(r"^[0-9]+%$")
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"


def _nonneg(spec: dict, key: str, path: str, errs: list[FieldError]) -> None:
    v = spec.get(key)
    if isinstance(v, int) and not isinstance(v, bool) and v < 0:
        errs.append(invalid(f"{path}.{key}", v, "must be greater than or equal to 0"))


def _enum(path: str, value, allowed: list[str], errs: list[FieldError]) -> None:
    if value is not None and value not in allowed:
        errs.append(not_supported(path, value, allowed))


def _template(spec: dict, path: str, errs: list[FieldError], restart: list[str]) -> dict:
    """The pod template of a controller: labels matched by the selector, a valid pod spec, and
    the restart policies the controller can live with."""
    tmpl = spec.get("template")
    if not isinstance(tmpl, dict):
        errs.append(required(f"{path}.template"))
        return {}
    errs += pod_spec(tmpl.get("spec"), f"{path}.template.spec")
    policy = (tmpl.get("spec") or {}).get("restartPolicy")
    if policy not in restart:
        errs.append(not_supported(f"{path}.template.spec.restartPolicy", policy, restart))
    return tmpl


def _selector_matches(spec: dict, tmpl: dict, path: str, errs: list[FieldError]) -> None:
    sel = spec.get("selector")
    if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(required(f"{path}.selector"))
        return
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    if not selector_from_match(sel).matches(labels):
        errs.append(invalid(f"{path}.template.metadata.labels", labels,
                            "`selector` does not match template `labels`"))


# ---- apps ----

def statefulset(obj: dict) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errs: list[FieldError] = []
    _nonneg(spec, "replicas", "spec", errs)
    _nonneg(spec, "minReadySeconds", "spec", errs)
    _enum("spec.podManagementPolicy", spec.get("podManagementPolicy"), ["OrderedReady", "Parallel"], errs)
    strategy = spec.get("updateStrategy") or {}
    _enum("spec.updateStrategy.type", strategy.get("type"), ["RollingUpdate", "OnDelete"], errs)
    if strategy.get("type") == "OnDelete" and strategy.get("rollingUpdate") is not None:
        errs.append(invalid("spec.updateStrategy.rollingUpdate", "",
                            "only allowed for updateStrategy 'RollingUpdate'"))
    _nonneg(strategy.get("rollingUpdate") or {}, "partition", "spec.updateStrategy.rollingUpdate", errs)
    for i, pvc in enumerate(spec.get("volumeClaimTemplates") or []):
        if not (pvc.get("metadata") or {}).get("name"):
            errs.append(required(f"spec.volumeClaimTemplates[{i}].metadata.name"))
    tmpl = _template(spec, "spec", errs, ["Always"])
    _selector_matches(spec, tmpl, "spec", errs)
    return errs


# What may change in a StatefulSet's spec after creation (ValidateStatefulSetUpdate).
_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def statefulset_update(old: dict, new: dict) -> list[FieldError]:
    o = {k: v for k, v in (old.get("spec") or {}).items() if k not in _STS_MUTABLE}
    n = {k: v for k, v in (new.get("spec") or {}).items() if k not in _STS_MUTABLE}
    if o != n:
        return [forbidden_field("spec", "updates to statefulset spec for fields other than "
                                "'replicas', 'ordinals', 'template', 'updateStrategy', "
                                "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' "
                                "and 'minReadySeconds' are forbidden")]
    return []


def controllerrevision(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    rev = obj.get("revision")
    if isinstance(rev, int) and rev < 0:
        errs.append(invalid("revision", rev, "must be greater than or equal to 0"))
    return errs


def controllerrevision_update(old: dict, new: dict) -> list[FieldError]:
    if old.get("data") != new.get("data"):
        return [invalid("data", "", "field is immutable")]
    return []


# ---- batch ----

def job_spec(spec: dict, path: str, errs: list[FieldError]) -> None:
    for f in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
              "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"):
        _nonneg(spec, f, path, errs)
    _enum(f"{path}.completionMode", spec.get("completionMode"), ["NonIndexed", "Indexed"], errs)
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    _enum(f"{path}.podReplacementPolicy", spec.get("podReplacementPolicy"),
          ["TerminatingOrFailed", "Failed"], errs)
    _template(spec, path, errs, ["OnFailure", "Never"])


def job(obj: dict) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errs: list[FieldError] = []
    job_spec(spec, "spec", errs)
    tmpl = spec.get("template") or {}
    if spec.get("manualSelector"):
        _selector_matches(spec, tmpl, "spec", errs)
    else:
        uid = (obj.get("metadata") or {}).get("uid")
        if spec.get("selector") != {"matchLabels": {JOB_UID_LABEL: uid}}:
            errs.append(invalid("spec.selector", "", "`selector` not auto-generated"))
        elif ((tmpl.get("metadata") or {}).get("labels") or {}).get(JOB_UID_LABEL) != uid:
            errs.append(invalid(f"spec.template.metadata.labels[{JOB_UID_LABEL}]", "",
                                f"must be '{uid}'"))
    return errs


def job_update(old: dict, new: dict) -> list[FieldError]:
    o, n = old.get("spec") or {}, new.get("spec") or {}
    errs = []
    for f in ("selector", "template", "completionMode", "podFailurePolicy", "backoffLimitPerIndex"):
        if o.get(f) != n.get(f):
            errs.append(invalid(f"spec.{f}", "", "field is immutable"))
    if o.get("completionMode") != "Indexed" and o.get("completions") != n.get("completions"):
        errs.append(invalid("spec.completions", n.get("completions"), "field is immutable"))
    return errs


def cronjob(obj: dict) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errs: list[FieldError] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 52:  # the controller appends "-<minutes since epoch>" to name its Jobs
        errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule"))
    else:
        try:
            cron.check(schedule)
        except cron.ScheduleError as e:
            errs.append(invalid("spec.schedule", schedule, str(e)))
        else:
            if cron.has_time_zone(schedule):
                errs.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in "
                                    "schedule, use timeZone field instead"))
    tz = spec.get("timeZone")
    if tz is not None:
        try:
            if not tz or tz.startswith(("/", ".")) or tz.lower() == "local":
                raise ValueError
            zoneinfo.ZoneInfo(tz)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            errs.append(invalid("spec.timeZone", tz, f"unknown time zone {tz}"))
    _enum("spec.concurrencyPolicy", spec.get("concurrencyPolicy"), ["Allow", "Forbid", "Replace"], errs)
    for f in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        _nonneg(spec, f, "spec", errs)
    template = spec.get("jobTemplate")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        errs.append(required("spec.jobTemplate.spec"))
    else:
        job_spec(template["spec"], "spec.jobTemplate.spec", errs)
    return errs


# ---- policy ----

def _int_or_percent(value, path: str, errs: list[FieldError]) -> None:
    if isinstance(value, int):
        if value < 0:
            errs.append(invalid(path, value, "must be greater than or equal to 0"))
    elif not isinstance(value, str) or not _PERCENT.match(value):
        errs.append(invalid(path, value, "a valid percent string must be a numeric string followed "
                            "by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                            "'[0-9]+%')"))
    elif int(value[:-1]) > 100:
        errs.append(invalid(path, value, "must not be greater than 100%"))


def poddisruptionbudget(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid("spec", "", "minAvailable and maxUnavailable cannot be both set"))
    for f in ("minAvailable", "maxUnavailable"):
        if spec.get(f) is not None:
            _int_or_percent(spec[f], f"spec.{f}", errs)
    _enum("spec.unhealthyPodEvictionPolicy", spec.get("unhealthyPodEvictionPolicy"),
          ["IfHealthyBudget", "AlwaysAllow"], errs)
    return errs
