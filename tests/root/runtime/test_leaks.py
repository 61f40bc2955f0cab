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
