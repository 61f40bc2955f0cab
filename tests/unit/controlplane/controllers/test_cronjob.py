"""CronJobs: a Job per scheduled time (a missed time is run at once, which lets the test move
lastScheduleTime back instead of waiting a minute), concurrencyPolicy Forbid/Replace, history
limits, the missed-start deadline, time zones; the schedule itself in cron.py."""

import json
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from controlplane.controllers.cron import parse
from tests.unit.controlplane.controllers.conftest import get_json, items, wait_until


@pytest.fixture(scope="module", autouse=True)
def controllers(start_controllers):
    return start_controllers("--controllers=cronjob")


def cronjob(name, schedule="*/1 * * * *", **spec):
    return json.dumps({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": {
        "schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}, **spec}})


def rewind(kubectl, name, minutes):
    t = (datetime.now(timezone.utc) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kubectl("patch", "cronjob", name, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"lastScheduleTime": t}}))


def jobs_of(kubectl, name):
    uid = get_json(kubectl, "get", "cronjob", name)["metadata"]["uid"]
    return sorted((j for j in items(kubectl, "jobs") if any(r["uid"] == uid for r in j["metadata"].get("ownerReferences") or [])),
                  key=lambda j: j["metadata"]["name"])


def complete(kubectl, job):
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kubectl("patch", "job", job, "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
        "startTime": t, "completionTime": t, "succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": t},
            {"type": "Complete", "status": "True", "lastTransitionTime": t}]}}))


def test_schedule_math():
    s = parse("*/15 9-17 * * mon-fri")
    t = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)  # a Saturday
    assert s.next(t) == datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    assert parse("0 9 * * *", "Asia/Tokyo").next(t) == datetime(2026, 12, 6, 0, 0, tzinfo=timezone.utc)
    assert parse("CRON_TZ=America/New_York 30 1 1 * *").next(t) == datetime(2027, 1, 1, 6, 30, tzinfo=timezone.utc)
    assert parse("@hourly").next(t) == datetime(2026, 12, 5, 13, 0, tzinfo=timezone.utc)
    assert parse("0 0 13 * 5").next(t) == datetime(2026, 12, 11, 0, 0, tzinfo=timezone.utc)  # 13th OR Friday


def test_runs_missed_time_and_forbid_replace(kubectl):
    kubectl("apply", "-f", "-", input=cronjob("tick", concurrencyPolicy="Forbid"))
    rewind(kubectl, "tick", 3)
    jobs = wait_until(lambda: jobs_of(kubectl, "tick"), what="a Job")
    j = jobs[0]
    due = datetime.fromisoformat(j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
                                 .replace("Z", "+00:00"))
    assert j["metadata"]["name"] == f"tick-{int(due.timestamp()) // 60}"
    assert due <= datetime.now(timezone.utc) and due.second == 0
    st = wait_until(lambda: (s := get_json(kubectl, "get", "cronjob", "tick")["status"]).get("active") and s,
                    what="status.active")
    assert st["active"][0]["name"] == j["metadata"]["name"]
    rewind(kubectl, "tick", 3)  # another due time while one is active: Forbid skips it
    wait_until(lambda: any(e["reason"] == "JobAlreadyActive" for e in items(kubectl, "events")),
               what="JobAlreadyActive")
    assert len(jobs_of(kubectl, "tick")) == 1
    five_ago = (datetime.now(timezone.utc) - timedelta(minutes=5)).minute  # another due time, at once
    kubectl("patch", "cronjob", "tick", "--type=merge", "-p", json.dumps(
        {"spec": {"concurrencyPolicy": "Replace", "schedule": f"{five_ago} * * * *"}}))
    rewind(kubectl, "tick", 90)
    wait_until(lambda: (js := jobs_of(kubectl, "tick")) and js[0]["metadata"]["uid"] != j["metadata"]["uid"]
               and len(js) == 1, what="the active Job replaced")


def test_history_limit(kubectl):
    kubectl("apply", "-f", "-", input=cronjob("hist", successfulJobsHistoryLimit=1))
    names = []
    # two different due times without waiting a minute: the second schedule fires at a minute
    # five minutes back, the first at the latest minute
    five_ago = (datetime.now(timezone.utc) - timedelta(minutes=5)).minute
    for schedule in ("*/1 * * * *", f"{five_ago} * * * *"):
        kubectl("patch", "cronjob", "hist", "--type=merge", "-p", json.dumps({"spec": {"schedule": schedule}}))
        rewind(kubectl, "hist", 90)
        wait_until(lambda: len(jobs_of(kubectl, "hist")) == len(names) + 1, what="a new Job")
        new = [j["metadata"]["name"] for j in jobs_of(kubectl, "hist") if j["metadata"]["name"] not in names][0]
        names.append(new)
        time.sleep(1.1)  # distinct startTimes: history is ordered by them
        complete(kubectl, new)
    wait_until(lambda: [j["metadata"]["name"] for j in jobs_of(kubectl, "hist")] == names[1:],
               what="only the newest successful Job kept")
    st = get_json(kubectl, "get", "cronjob", "hist")["status"]
    assert st["lastSuccessfulTime"] and not st.get("active")


def test_missed_start_deadline(kubectl):
    kubectl("apply", "-f", "-", input=cronjob("yearly", "0 0 1 1 *", startingDeadlineSeconds=60))
    rewind(kubectl, "yearly", 60 * 24 * 400)
    wait_until(lambda: any(e["reason"] == "MissSchedule" and e["involvedObject"]["name"] == "yearly"
                           for e in items(kubectl, "events")), what="MissSchedule")
    assert not jobs_of(kubectl, "yearly")


def test_time_zone(kubectl):
    kubectl("apply", "-f", "-", input=cronjob("tokyo", "0 9 * * *", timeZone="Asia/Tokyo"))
    rewind(kubectl, "tokyo", 60 * 24 * 2)
    j = wait_until(lambda: jobs_of(kubectl, "tokyo"), what="a Job")[0]
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    due = now.replace(hour=9, minute=0, second=0, microsecond=0)
    if due > now:
        due -= timedelta(days=1)
    assert j["metadata"]["name"] == f"tokyo-{int(due.timestamp()) // 60}"
    assert j["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == due.isoformat()


def test_invalid_schedule_is_422(kubectl):
    p = kubectl.run("apply", "-f", "-", input=cronjob("bad", "61 * * * *"), check=False)
    assert p.returncode != 0 and "spec.schedule" in p.stderr
    assert kubectl.run("get", "cronjob", "bad", check=False).returncode == 1
