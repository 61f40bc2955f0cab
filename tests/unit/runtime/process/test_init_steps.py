"""The container's init (runtime/process/init.py), step by step, on the recording syscall fake: no
root, no namespaces — the init runs in a forked child of a fresh interpreter (it ends only in
execve or os._exit, and forking the pytest process would copy whatever threads it has), reports
"ready" over its channel like a real one, and the fake's execve hands back what was called."""

from __future__ import annotations

from tests.childproc import run_child

INIT = """
import json, os, tempfile
from runtime.process.channel import Channel
from runtime.process.init import ContainerPlan, container_init
from runtime.rootfs import RootfsPlan
from runtime.spec.defaults import default_spec
from tests.unit.runtime.recordingfs import RecordingWithFds

base = tempfile.mkdtemp()
for d in ("rootfs/bin", "lower", "upper", "work"):
    os.makedirs(os.path.join(base, d))
spec = default_spec(("/bin/sh", "-c", "true"), os.path.join(base, "rootfs"),
                    layers=(os.path.join(base, "lower"),), hostname="box")
plan = ContainerPlan(id="c1", spec=spec, rootfs=RootfsPlan(*(os.path.join(base, d) for d in ("rootfs", "upper", "work"))),
                     state_dir=base, cgroup=None, seccomp_program=None, stdio="inherit", log_path=None)
ours, theirs = Channel.pair()
r, w = os.pipe()

class Fake(RecordingWithFds):
    def execve(self, path, argv, env):
        super().execve(path, argv, env)
        os.write(w, json.dumps([[c.name, [a if isinstance(a, (int, str)) else repr(a) for a in c.args]]
                                for c in self.calls]).encode())

fake = Fake()
FAIL
pid = os.fork()
if pid == 0:
    os.chdir(base)
    container_init(fake, plan, theirs, (0, 1, 2), os.getppid())   # never returns
os.close(w)
message, fds = ours.recv()
if message.get("ready"):
    ours.send({"start": True})
calls = json.loads(os.read(r, 1 << 20) or b"[]")
_, status = os.waitpid(pid, 0)
report({"message": message, "calls": calls, "code": os.waitstatus_to_exitcode(status)})
"""


def _run(fail: str = "") -> dict:
    return run_child(INIT.replace("FAIL", fail))


def test_the_init_steps_in_order_from_pdeathsig_to_execve():
    from runtime.sys.consts import CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS

    out = _run()
    assert out["message"]["ready"] is True and out["code"] == 0
    names = [name for name, _ in out["calls"]]
    args = {name: a for name, a in reversed(out["calls"])}        # each call's first arguments
    # dies with its supervisor and stops being dumpable before it joins anything
    assert names[:2] == ["set_pdeathsig", "set_dumpable"]
    # its own namespaces, then (a new network namespace) its loopback up, then its hostname
    flags = args["unshare"][0]
    assert flags & (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) == \
        CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET
    assert names[names.index("unshare") + 1:names.index("unshare") + 3] == ["loopback_up", "sethostname"]
    assert args["sethostname"] == ["box"]
    # the root filesystem, then pivot_root, then confinement, and execve last
    order = [names.index(n) for n in ("sethostname", "mount", "pivot_root", "capset", "execve")]
    assert order == sorted(order)
    assert names[-1] == "execve" and args["execve"][1] == repr(("/bin/sh", "-c", "true"))


def test_a_failed_step_is_reported_by_name_and_nothing_after_it_runs():
    out = _run('fake.fail("sethostname", 1)')              # EPERM
    assert out["message"]["step"] == "set the hostname to box"
    assert "Operation not permitted" in out["message"]["error"]
    assert out["code"] == 1 and out["calls"] == []          # it never reached execve
