"""`nodeagent doctor`: can this machine be a node? One line per requirement, each with a verdict and
a fix.

    checks.py   the checks themselves, each a small function over a DoctorEnv (what the host is)
    report.py   the table for humans and the JSON for machines

The checks only read, except for the cgroup probe, which creates and removes one empty cgroup under
our own cgroup per hierarchy to prove that we may (runtime/cgroups/probe.py).
"""

from nodeagent.doctor.checks import DoctorEnv, Finding, Verdict, run_checks

__all__ = ["DoctorEnv", "Finding", "Verdict", "run_checks"]
