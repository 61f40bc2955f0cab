"""Containers through the RuntimeService: exit codes and reasons, OOM kills, stop with and without
a TERM handler, exec, a restart of the agent (kill -9) in the middle of a container's life, and
bad input refused with the right CRIError and nothing left behind."""

from __future__ import annotations

import os

import pytest


def test_exit_codes_reasons_and_image_env(node):
    out = node.agent('''
        sc = sandbox_config("ex")
        sid = await rt.run_pod_sandbox(sc)
        events = rt.container_events()
        ok = await run_container(sid, sc, "ok", "sh", "-c", 'echo "$FROM_IMAGE $MINE"',
                                 envs=(("MINE", "given"),))
        bad = await run_container(sid, sc, "bad", "sh", "-c", "exit 3")
        st_ok, st_bad = await wait_exited(ok, events), await wait_exited(bad, events)
        report({"ok": status_dict(st_ok), "bad": status_dict(st_bad),
                "log": read_log(st_ok.log_path)})
    ''')
    assert (out["ok"]["exit_code"], out["ok"]["reason"]) == (0, "Completed")
    assert (out["bad"]["exit_code"], out["bad"]["reason"]) == (3, "Error")
    assert out["bad"]["finished_at"] >= out["bad"]["started_at"] > 0
    assert out["log"][-1].endswith("stdout F yes given")


@pytest.mark.vm      # memory.events on cgroup v2, memory.oom_control on v1
def test_memory_limit_oom_kill_is_reported_as_oomkilled_137(node):
    out = node.agent('''
        sc = sandbox_config("oom")
        sid = await rt.run_pod_sandbox(sc)
        events = rt.container_events()
        c = await run_container(sid, sc, "hog", "sh", "-c",
                                'x=$(head -c 209715200 /dev/zero | tr "\\\\0" a); echo survived',
                                resources=LinuxContainerResources(memory_limit_in_bytes=64 << 20))
        report(status_dict(await wait_exited(c, events, timeout=60)))
    ''')
    assert (out["exit_code"], out["reason"]) == (137, "OOMKilled"), out


def test_stop_runs_a_term_trap_and_kills_a_term_ignoring_process_at_the_timeout(node):
    out = node.agent('''
        sc = sandbox_config("stop")
        sid = await rt.run_pod_sandbox(sc)
        polite = await run_container(sid, sc, "polite", "sh", "-c",
                                     'trap "echo got-term; exit 0" TERM; '
                                     'echo ready; while true; do sleep 0.1; done')
        stubborn = await run_container(sid, sc, "stubborn", "sh", "-c",
                                       'trap "" TERM; while true; do sleep 0.1; done')
        usr1 = await run_container(sid, sc, "usr1", "sh", "-c",
                                   'trap "exit 42" USR1; while true; do sleep 0.1; done',
                                   stop_signal="SIGUSR1")
        for _ in range(200):     # the trap is set once "ready" is logged
            if any(l.endswith("ready") for l in read_log((await rt.container_status(polite)).log_path)):
                break
            await asyncio.sleep(0.02)
        await rt.stop_container(polite, 30)
        await rt.stop_container(stubborn, 1)
        await rt.stop_container(usr1, 30)
        await rt.stop_container(stubborn, 1)            # idempotent
        sp, ss, su = [await rt.container_status(c) for c in (polite, stubborn, usr1)]
        report({"polite": status_dict(sp), "stubborn": status_dict(ss), "usr1": status_dict(su),
                "log": read_log(sp.log_path)})
    ''')
    assert out["polite"]["exit_code"] == 0 and any(l.endswith("got-term") for l in out["log"])
    assert out["stubborn"]["exit_code"] == 137
    assert out["usr1"]["exit_code"] == 42


def test_a_new_service_after_kill_9_sees_the_same_containers_and_the_exit_meanwhile(node, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    first = node.agent(f'''
        sc = sandbox_config("keep")
        sid = await rt.run_pod_sandbox(sc)
        mounts = (Mount("/flags", {str(flags)!r}),)
        stay = await run_container(sid, sc, "stay", "sleep", "1000")
        leave = await run_container(sid, sc, "leave", "sh", "-c",
                                    "while [ ! -e /flags/go ]; do sleep 0.05; done; exit 7",
                                    mounts=mounts)
        st = await rt.container_status(stay)
        report({{"sid": sid, "stay": stay, "leave": leave, "pid": st.pid}})
    ''', kill9=True)
    (flags / "go").touch()               # the container exits while no agent runs
    second = node.agent(f'''
        ids = sorted(c.id for c in await rt.list_containers())
        leave = await wait_exited({first["leave"]!r})
        stay = await rt.container_status({first["stay"]!r})
        out, _, code = await rt.exec_sync(stay.id, ["echo", "still here"], 10)
        events = rt.container_events()                # the new service watches the old container
        await rt.stop_container(stay.id, 1)
        ev = await asyncio.wait_for(events.__anext__(), 20)
        report({{"ids": ids, "leave": status_dict(leave), "stay": status_dict(stay),
                 "exec": [out.decode(), code], "event": [ev.container_id, ev.type.name],
                 "sandboxes": [s.id for s in await rt.list_pod_sandboxes()]}})
    ''')
    assert second["ids"] == sorted([first["stay"], first["leave"]])
    assert second["sandboxes"] == [first["sid"]]
    assert (second["leave"]["exit_code"], second["leave"]["reason"]) == (7, "Error")
    assert second["stay"]["state"] == "RUNNING" and second["stay"]["pid"] == first["pid"]
    assert second["exec"] == ["still here\n", 0]
    assert second["event"] == [first["stay"], "STOPPED"]


def test_a_call_made_while_a_new_service_scans_waits_for_the_scan(node):
    """A restarted agent's first calls come at once (the event subscription, a pod worker's stop).
    A stop that went ahead while the new service was still finding the old supervisors left its
    container unwatched: no STOPPED event ever came. A slow scan (a slow machine, many pods) is
    made here by delaying the listing of the state dir."""
    first = node.agent('''
        sc = sandbox_config("scan")
        sid = await rt.run_pod_sandbox(sc)
        report({"stay": await run_container(sid, sc, "stay", "sleep", "1000")})
    ''', kill9=True)
    second = node.agent(f'''
        listing = rt.store.container_ids
        def slow_listing():
            time.sleep(1.5)                 # in the service's thread, as a slow disk would be
            return listing()
        rt.store.container_ids = slow_listing
        events = rt.container_events()      # the first call: starts the scan
        await asyncio.sleep(0.2)            # ... which is now under way
        await rt.stop_container({first["stay"]!r}, 0)
        async def stopped():
            async for ev in events:
                if ev.container_id == {first["stay"]!r} and ev.type is ContainerEventType.STOPPED:
                    return True
        try:
            seen = await asyncio.wait_for(stopped(), 10)
        except asyncio.TimeoutError:
            seen = False
        st = await rt.container_status({first["stay"]!r})
        report({{"stopped_event": seen, "state": st.state.name}})
    ''')
    assert second == {"stopped_event": True, "state": "EXITED"}


@pytest.mark.vm
def test_bad_input_gets_the_cri_error_naming_the_cause_and_leaves_nothing(node):
    out = node.agent('''
        sc = sandbox_config("bad")
        sid = await rt.run_pod_sandbox(sc)
        cases = {
            "unknown image": container_config("a", "true", image="localhost/nope:1"),
            "no command": container_config("b", image="localhost/busybox:nocmd"),
            "cgroup value": container_config("c", "true",
                                             resources=LinuxContainerResources(cpu_quota=10)),
            "kernel refuses": container_config("d", "true",
                                               resources=LinuxContainerResources(pids_limit=10 ** 12)),
            "user": container_config("e", "true", security=SecurityContext(run_as_user=-1)),
            "no sandbox": None,
        }
        got = {}
        for name, cfg in cases.items():
            try:
                if cfg is None:
                    await rt.create_container("0" * 32, container_config("f", "true"), sc)
                else:
                    await rt.create_container(sid, cfg, sc)
                got[name] = "created"
            except CRIError as e:
                got[name] = [type(e).__name__, e.reason, e.message]
        try:
            await rt.create_container(sid, container_config("x", "no-such-program"), sc)
            got["start"] = "created"
        except CRIError as e:
            got["start"] = [type(e).__name__, e.reason, e.message]
        cid = await rt.create_container(sid, container_config("y", "true"), sc)   # never started
        st = await rt.container_status(cid)
        await rt.remove_container(cid)
        await rt.remove_container(cid)                 # idempotent
        for bad_id in ("../..", "..", "/", "x" * 32):    # name nothing: no-ops, never paths
            await rt.remove_pod_sandbox(bad_id)
            await rt.stop_pod_sandbox(bad_id)
            await rt.remove_container(bad_id)
            await rt.stop_container(bad_id, 1)
            try:
                await rt.container_status(bad_id)
                got["status " + bad_id] = "found"
            except NotFound:
                pass
        got["state dir kept"] = os.path.isdir(os.path.join(STATE, "cri", "sandboxes", sid))
        left = [c.id for c in await rt.list_containers()]
        runtime = sorted(os.listdir(os.path.join(STATE, "runtime")))
        await rt.remove_pod_sandbox(sid)
        report({"got": got, "start_status": status_dict(st), "left": left, "runtime": runtime})
    ''')
    got = out["got"]
    assert got["unknown image"][:2] == ["CreateContainerError", "CreateContainerError"]
    assert "localhost/nope:1" in got["unknown image"][2]
    assert got["no command"][1] == "CreateContainerError" and "no command specified" in got["no command"][2]
    assert got["cgroup value"][1] == "CreateContainerError" and "cpu_quota=10" in got["cgroup value"][2]
    assert got["kernel refuses"][1] == "CreateContainerError", got["kernel refuses"]
    assert "pids" in got["kernel refuses"][2] and "1000000000000" in got["kernel refuses"][2]
    assert "runAsUser" in got["user"][2]
    assert got["no sandbox"][0] == "NotFound"
    assert got["state dir kept"] and not any(k.startswith("status ") for k in got)
    assert got["start"][:2] == ["RunContainerError", "ContainerCannotRun"]
    assert "no-such-program" in got["start"][2]
    assert out["start_status"]["state"] == "CREATED", out["start_status"]
    assert out["left"] == []
    assert [n for n in out["runtime"] if not n.startswith("zygote")] == []
    assert node.leaks() == node.NONE


@pytest.mark.vm      # stats from cpu.stat/memory.current on v2, cpuacct/memory.usage_in_bytes on v1
def test_exec_with_stdin_with_a_tty_attach_and_stats(node):
    out = node.agent('''
        sc = sandbox_config("io")
        sid = await rt.run_pod_sandbox(sc)
        c = await run_container(sid, sc, "c", "sleep", "1000")
        t = await run_container(sid, sc, "t", "sh", tty=True)

        # exec -i: stdin in, stdout out, the exit code through the session
        s = await rt.exec(c, ["sh", "-c", "cat; echo err >&2; exit 5"], tty=False, stdin=True)
        os.write(s.stdin, b"hi from stdin\\n")
        os.close(s.stdin); s.stdin = -1
        got = await asyncio.to_thread(lambda: os.read(s.stdout, 100))
        err = await asyncio.to_thread(lambda: os.read(s.stderr, 100))
        code = await s.wait()
        s.close()

        # exec -t: one pty; what we type comes back through it
        s = await rt.exec(c, ["sh"], tty=True, stdin=True)
        s.resize(30, 100)
        os.write(s.tty_fd, b"stty size; exit 9\\n")
        seen = b""
        while b"30 100" not in seen:
            seen += await asyncio.to_thread(lambda: os.read(s.tty_fd, 1000))
        tty_code = await s.wait()
        s.close()

        # attach to a tty container: the shell's prompt and our command's output
        a = await rt.attach(t, stdin=True)
        os.write(a.tty_fd, b"echo attached-$((6*7))\\n")
        seen_a = b""
        while b"attached-42" not in seen_a:
            seen_a += await asyncio.to_thread(lambda: os.read(a.tty_fd, 1000))
        os.write(a.tty_fd, b"exit 4\\n")
        attach_code = await asyncio.wait_for(a.wait(), 20)
        a.close()

        # attach without a tty, to a container created with stdin (stdin_once): pipes
        i = await run_container(sid, sc, "i", "sh", "-c",
                                'while read l; do echo "got $l"; echo "err $l" >&2; done; '
                                'echo eof; exit 6', stdin=True, stdin_once=True)
        p = await rt.attach(i, stdin=True)
        os.write(p.stdin, b"one\\n")
        out_i = b""
        while b"got one" not in out_i:
            out_i += await asyncio.to_thread(lambda: os.read(p.stdout, 1000))
        os.write(p.stdin, b"two\\n")
        os.close(p.stdin); p.stdin = -1                 # stdin_once: the program sees EOF
        while chunk := await asyncio.to_thread(lambda: os.read(p.stdout, 1000)):
            out_i += chunk                              # ... to EOF: the container has ended
        err_i = await asyncio.to_thread(lambda: os.read(p.stderr, 1000))
        code_i = await asyncio.wait_for(p.wait(), 20)
        p.close()
        try:
            await rt.exec_sync(c, ["sleep", "31"], 0.5)
            timed_out = "no timeout"
        except ExecTimeout as e:
            timed_out = e.reason
        ps = await exec_out(c, "ps", "-o", "args")
        stats = await rt.container_stats(c)
        report({"got": got.decode(), "err": err.decode(), "code": code, "tty_code": tty_code,
                "attach_code": attach_code, "stats": stats, "timed_out": timed_out, "ps": ps,
                "pipes": [out_i.decode(), err_i.decode(), code_i]})
    ''')
    assert (out["got"], out["err"], out["code"]) == ("hi from stdin\n", "err\n", 5)
    assert out["tty_code"] == 9 and out["attach_code"] == 4
    assert out["timed_out"] == "Timeout" and "sleep 31" not in out["ps"]     # killed
    assert out["pipes"] == ["got one\ngot two\neof\n", "err one\nerr two\n", 6]
    stats = out["stats"]
    assert stats["memory_usage_bytes"] >= stats["memory_working_set_bytes"] > 0
    assert stats["memory_rss_bytes"] >= 0 and stats["cpu_usage_core_nano_seconds"] > 0
    assert stats["process_count"] >= 1          # pids.current: what PID-pressure ranking reads


def test_fifty_create_remove_cycles_leave_nothing(node):
    out = node.agent('''
        ips = set()
        for i in range(50):
            sc = sandbox_config(f"cyc{i}", port_mappings=(PortMapping(80, 18000 + i % 3),))
            sid = await rt.run_pod_sandbox(sc)
            ips.add((await rt.pod_sandbox_status(sid)).ip)
            c = await run_container(sid, sc, "c", "sleep", "1000")
            if i % 2:
                await rt.stop_pod_sandbox(sid)
            await rt.remove_pod_sandbox(sid)
        report({"ips": len(ips), "left": [s.id for s in await rt.list_pod_sandboxes()],
                "containers": [c.id for c in await rt.list_containers()]})
    ''', timeout=600)
    assert out["left"] == [] and out["containers"] == []
    assert node.leaks() == node.NONE
    nft = node.sh("nft", "list", "ruleset").stdout
    assert "/eth0" not in nft and "1800" not in nft    # no pod's address, hostPort or chain left
    assert node.cleanup() == []
    assert node.leaks(node_up=False) == node.NONE


def test_a_zygote_running_older_code_is_replaced_and_its_containers_carry_on(node):
    zygote = os.path.join(node.state, "runtime")
    first = node.agent('''
        sc = sandbox_config("z")
        sid = await rt.run_pod_sandbox(sc)
        c = await run_container(sid, sc, "c", "sleep", "1000")
        report({"sid": sid, "c": c, "zygote": open(os.path.join(STATE, "runtime", "zygote.pid")).read().split()[0]})
    ''')
    with open(os.path.join(zygote, "zygote.code"), "w") as f:
        f.write("code of an older agent")
    second = node.agent(f'''
        sc = sandbox_config("z")
        st = await rt.container_status({first["c"]!r})
        c2 = await run_container({first["sid"]!r}, sc, "c2", "sleep", "1000")
        report({{"state": st.state.name, "c2": (await rt.container_status(c2)).state.name,
                 "zygote": open(os.path.join(STATE, "runtime", "zygote.pid")).read().split()[0]}})
    ''')
    assert second["zygote"] != first["zygote"]
    assert not os.path.exists(f"/proc/{first['zygote']}/cmdline") or \
        b"start_detached" not in open(f"/proc/{first['zygote']}/cmdline", "rb").read()
    assert second["state"] == "RUNNING" and second["c2"] == "RUNNING"
