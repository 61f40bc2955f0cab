"""1,000 create/start/delete cycles leave nothing behind (acceptance): no mounts, no cgroups, no
processes, no open fds — each counted independently of the runtime's own bookkeeping.

The cycles run in a child interpreter that uses the runtime as a library (no CLI start-up per
cycle), with its own cgroup parent, so every cgroup it could leave is under one directory we count.
NODEAGENT_LEAK_CYCLES overrides the count for a quick local run; CI runs the full 1,000.
"""

from __future__ import annotations

import os

from tests.childproc import run_child

CYCLES = int(os.environ.get("NODEAGENT_LEAK_CYCLES", "1000"))


def test_create_start_delete_cycles_leave_nothing_behind(rt):
    parent = f"nodeagent-leak-{os.getpid()}"
    out = run_child(f"""
        import glob, time
        from runtime.spec.defaults import default_spec
        from runtime.container.create import create, CreateOptions
        from runtime.container.delete import delete

        def mounts():
            # Only ours: other people's tests mount and unmount on this host at the same time.
            mine = ("{rt.base}", "{rt.rootfs}", "{parent}")
            return [l for l in open("/proc/self/mountinfo").read().splitlines()
                    if any(m in l for m in mine)]

        def cgroups():
            return len([d for d in glob.glob("/sys/fs/cgroup/**/{parent}/*", recursive=True)
                        if os.path.isdir(d)])

        def our_processes():
            # Our supervisors and inits are forks of this interpreter: same command line.
            me = open("/proc/self/cmdline", "rb").read()
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if int(pid) != os.getpid() and open(f"/proc/{{pid}}/cmdline", "rb").read() == me:
                        found.append(pid)
                except OSError:
                    pass
            return found

        def fds():
            return sorted(os.listdir("/proc/self/fd"))

        spec = default_spec(("/bin/true",), "/unused", layers=("{rt.rootfs}",))
        opts = CreateOptions(root="{rt.root}", storage="{rt.storage}", cgroup_parent="{parent}")
        before = dict(mounts=mounts(), cgroups=cgroups(), processes=our_processes(), fds=fds())
        codes = set()
        for i in range({CYCLES}):
            cid = f"leak{{os.getpid()}}-{{i}}"
            c = create(cid, spec, opts)
            c.channel.send({{"op": "start"}})
            c.channel.recv()
            message, _ = c.channel.recv()
            codes.add(message["exited"]["exitCode"])
            c.channel.close()
            delete("{rt.root}", cid)
        deadline = time.monotonic() + 10          # the last supervisor may still be on its way out
        while our_processes() and time.monotonic() < deadline:
            time.sleep(0.01)
        after = dict(mounts=mounts(), cgroups=cgroups(), processes=our_processes(), fds=fds())
        left = dict(state=os.listdir("{rt.root}"), storage=os.listdir("{rt.storage}"))
        for d in glob.glob("/sys/fs/cgroup/**/{parent}", recursive=True):
            os.rmdir(d)                            # the shared parent we asked for
        report(dict(before=before, after=after, codes=sorted(codes), left=left))
    """, timeout=60 + CYCLES * 1.0)
    assert out["codes"] == [0]
    assert out["after"] == out["before"]
    assert out["before"]["processes"] == []
    assert out["left"] == {"state": [], "storage": []}


ZYGOTE_CYCLES = max(1, CYCLES // 5)


def test_cycles_through_a_zygote_leave_nothing_behind_either(rt):
    """The zygote's path is different: its warm workers become the supervisors, and a supervisor
    whose container fails to start undoes the creation itself. Every tenth container here fails
    (no such executable); nothing may stay behind of any of them."""
    out = run_child(f"""
        import glob, time
        from runtime.container.run import drive
        from runtime.errors import ContainerError
        from runtime.zygote import server as zygote

        root, storage, prefix = "{rt.root}", "{rt.storage}", "zleak{{}}-".format(os.getpid())
        def ours(line):
            return prefix in line or "{rt.base}" in line
        def mounts():
            return [l for l in open("/proc/self/mountinfo").read().splitlines() if ours(l)]
        def cgroups():
            return [d for d in glob.glob("/sys/fs/cgroup/*/**/" + prefix + "*", recursive=True)]
        zpid = zygote.start_detached(root)
        def zygote_children():
            out = []
            for p in filter(str.isdigit, os.listdir("/proc")):
                try:
                    fields = open(f"/proc/{{p}}/stat").read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == zpid:
                    out.append((p, fields[0]))
            return out
        time.sleep(0.5)
        idle = zygote_children()
        codes, errors = set(), 0
        try:
            for i in range({ZYGOTE_CYCLES}):
                cid = prefix + str(i)
                bundle = "{rt.bundle(['true'])}" if i % 10 else "{rt.bundle(['no-such-program'])}"
                request = {{"op": "create", "id": cid, "bundle": bundle, "root": root,
                            "storage": storage, "remove_on_exit": True, "foreground": True}}
                try:
                    record, channel = zygote.request_create(zygote.connect(root), request, [0, 1, 2])
                except ContainerError:
                    errors += 1
                    continue
                codes.add(drive(channel, record, root, cid, remove=True))
            deadline = time.monotonic() + 10     # the last supervisor may still be on its way out
            while len(zygote_children()) > len(idle) and time.monotonic() < deadline:
                time.sleep(0.01)
            after = dict(mounts=mounts(), cgroups=cgroups(), children=len(zygote_children()),
                         zombies=[p for p, state in zygote_children() if state == "Z"],
                         state=os.listdir(root), storage=os.listdir(storage) if os.path.isdir(storage) else [])
        finally:
            os.kill(zpid, 15)                     # the zygote this child started, by pid
        report(dict(after=after, idle=len(idle), codes=sorted(codes), errors=errors))
    """, timeout=60 + ZYGOTE_CYCLES * 1.0)
    assert out["codes"] == [0]
    assert out["errors"] == (ZYGOTE_CYCLES + 9) // 10
    after = out["after"]
    assert after["mounts"] == [] and after["cgroups"] == [] and after["zombies"] == []
    assert after["children"] == out["idle"] == 2          # only the zygote's two spare workers
    assert sorted(after["state"]) == ["zygote.pid", "zygote.sock"]
    assert after["storage"] == []
