"""Pod sandboxes with real containers: what two containers of one pod share, their logs in the CRI
format, hostNetwork pods, port-forward, and the sandbox's own life cycle (stop frees the IP,
remove leaves nothing)."""

from __future__ import annotations

import re

import pytest

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [FP] ")


@pytest.mark.vm
def test_two_containers_share_ip_hostname_and_ipc_and_log_in_cri_format(node):
    out = node.agent('''
        sc = sandbox_config("web")
        sid = await rt.run_pod_sandbox(sc)
        st = await rt.pod_sandbox_status(sid)
        a = await run_container(sid, sc, "a", "sh", "-c",
                                "echo out-line; echo err-line >&2; touch /dev/mqueue/from-a; "
                                "exec sleep 1000")
        b = await run_container(sid, sc, "b", "sleep", "1000")
        ip_a = await exec_out(a, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'")
        ip_b = await exec_out(b, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'")
        host_a, host_b = await exec_out(a, "hostname"), await exec_out(b, "hostname")
        ipc_b = await exec_out(b, "ls", "/dev/mqueue")       # POSIX queues: per IPC namespace
        ns_a = await exec_out(a, "ls", "-l", "/proc/self/ns/ipc", "/proc/self/ns/net", "/proc/self/ns/uts")
        ns_b = await exec_out(b, "ls", "-l", "/proc/self/ns/ipc", "/proc/self/ns/net", "/proc/self/ns/uts")
        hosts = await exec_out(b, "cat", "/etc/hosts")
        sa = await rt.container_status(a)
        listed = sorted(c.id for c in await rt.list_containers(sid))
        report({"sandbox_ip": st.ip, "state": st.state.name, "ip_a": ip_a, "ip_b": ip_b,
                "host_a": host_a, "host_b": host_b, "ipc_b": ipc_b, "ns": [ns_a, ns_b], "hosts": hosts,
                "a": status_dict(sa), "listed": listed, "ids": sorted([a, b]),
                "log": read_log(sa.log_path)})
    ''')
    assert out["state"] == "READY" and out["sandbox_ip"].startswith("10.244.7.")
    assert out["ip_a"] == out["ip_b"] == out["sandbox_ip"] + "/24"
    assert out["host_a"] == out["host_b"] == "web"
    assert "from-a" in out["ipc_b"]                     # the queue container a made
    links = [[ln.split("->")[1].strip() for ln in ns.splitlines()] for ns in out["ns"]]
    assert links[0] == links[1] and len(links[0]) == 3, out["ns"]
    assert f"{out['sandbox_ip']}\tweb" in out["hosts"]
    assert out["a"]["state"] == "RUNNING" and out["a"]["pid"] and out["a"]["started_at"]
    assert out["listed"] == out["ids"]
    assert out["a"]["log_path"].endswith("default_web_uid-web/a/0.log")
    log = out["log"]
    assert all(CRI_LINE.match(line) for line in log), log
    assert any(line.endswith(" stdout F out-line") for line in log), log
    assert any(line.endswith(" stderr F err-line") for line in log), log


@pytest.mark.vm
def test_stop_frees_the_ip_and_remove_leaves_nothing(node):
    out = node.agent('''
        sc = sandbox_config("p", port_mappings=(PortMapping(80, 18080),))
        sid = await rt.run_pod_sandbox(sc)
        ip = (await rt.pod_sandbox_status(sid)).ip
        c = await run_container(sid, sc, "c", "sleep", "1000")
        await rt.stop_pod_sandbox(sid)
        after_stop = await rt.pod_sandbox_status(sid)
        c_state = (await rt.container_status(c)).state.name
        await rt.stop_pod_sandbox(sid)                       # idempotent
        await rt.remove_pod_sandbox(sid)
        await rt.remove_pod_sandbox(sid)                     # idempotent
        try:
            await rt.pod_sandbox_status(sid)
            gone = False
        except NotFound:
            gone = True
        report({"ip": ip, "after_stop": after_stop.state.name, "c": c_state, "gone": gone,
                "left": [s.id for s in await rt.list_pod_sandboxes()]})
    ''')
    assert out["after_stop"] == "NOTREADY" and out["c"] == "EXITED" and out["gone"]
    assert out["left"] == []
    assert node.leaks() == node.NONE
    assert node.cleanup() == []
    assert node.leaks(node_up=False) == node.NONE


def test_host_network_pod_uses_the_nodes_namespaces(node):
    node.sh("ip", "link", "add", "marker0", "type", "veth", "peer", "name", "marker1")
    out = node.agent('''
        sc = sandbox_config("hn", host_network=True)
        sid = await rt.run_pod_sandbox(sc)
        st = await rt.pod_sandbox_status(sid)
        c = await run_container(sid, sc, "c", "sleep", "1000")
        links = await exec_out(c, "ip", "-o", "link", "show")
        report({"netns": st.netns_path, "links": links, "ip": st.ip})
    ''')
    assert out["netns"] is None and out["ip"] is None
    assert "marker0" in out["links"]                 # the node's links, seen from the container


def test_port_forward_reaches_a_server_inside_the_pod(node):
    out = node.agent('''
        sc = sandbox_config("pf")
        sid = await rt.run_pod_sandbox(sc)
        c = await run_container(sid, sc, "srv", "sh", "-c",
                                "mkdir -p /www && echo forwarded > /www/index.html && "
                                "exec httpd -f -p 127.0.0.1:8080 -h /www")
        # wait until the server listens: ask inside the pod, on an event-free retry of a probe
        for _ in range(100):
            o, e, code = await rt.exec_sync(c, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"], 5)
            if code == 0:
                break
            await asyncio.sleep(0.05)
        import socket
        fd = await rt.port_forward(sid, 8080)
        s = socket.socket(fileno=fd)
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        report({"reply": data.decode(errors="replace")})
    ''')
    assert out["reply"].startswith("HTTP/1.") and "forwarded" in out["reply"]


def test_a_host_port_already_taken_fails_the_second_sandbox_and_leaves_nothing(node):
    out = node.agent('''
        first = await rt.run_pod_sandbox(sandbox_config("one", port_mappings=(PortMapping(80, 18090),)))
        try:
            await rt.run_pod_sandbox(sandbox_config("two", port_mappings=(PortMapping(80, 18090),)))
            err = None
        except CRIError as e:
            err = [type(e).__name__, e.reason, e.message]
        report({"err": err, "left": [s.metadata.name for s in await rt.list_pod_sandboxes()],
                "first": (await rt.pod_sandbox_status(first)).state.name})
    ''')
    assert out["err"][:2] == ["SandboxError", "FailedCreatePodSandBox"]
    assert "18090" in out["err"][2], out["err"]
    assert out["left"] == ["one"] and out["first"] == "READY"
    veths = node.leaks()["veths"]
    assert len(veths) == 1, veths                       # the first pod's, nothing of the second


def test_many_pods_at_once(node):
    out = node.agent('''
        async def pod(i):
            sc = sandbox_config(f"par{i}")
            sid = await rt.run_pod_sandbox(sc)
            cid = await run_container(sid, sc, "c", "sh", "-c", f"echo pod-{i}; exec sleep 1000")
            return sid, cid, (await rt.pod_sandbox_status(sid)).ip
        t0 = time.perf_counter()
        pods = await asyncio.gather(*(pod(i) for i in range(12)))
        took = time.perf_counter() - t0
        states = [(await rt.container_status(c)).state.name for _, c, _ in pods]
        hostnames = [await exec_out(c, "hostname") for _, c, _ in pods]
        await asyncio.gather(*(rt.remove_pod_sandbox(s) for s, _, _ in pods))
        report({"ips": [ip for _, _, ip in pods], "states": states, "hostnames": hostnames,
                "took": took, "left": [s.id for s in await rt.list_pod_sandboxes()]})
    ''')
    print(f"12 pods (sandbox + container) at once: {out['took']:.2f} s")
    assert len(set(out["ips"])) == 12 and out["states"] == ["RUNNING"] * 12
    assert out["hostnames"] == [f"par{i}" for i in range(12)]
    assert out["left"] == [] and node.leaks() == node.NONE


def test_pod_sysctls_are_set_inside_and_a_node_wide_one_is_refused(node):
    out = node.agent('''
        sc = sandbox_config("sys", sysctls={"net.ipv4.ip_unprivileged_port_start": "80",
                                            "kernel.shmmni": "1234"})
        sid = await rt.run_pod_sandbox(sc)
        c = await run_container(sid, sc, "c", "sleep", "1000")
        got = [await exec_out(c, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"),
               await exec_out(c, "cat", "/proc/sys/kernel/shmmni")]
        try:
            await rt.run_pod_sandbox(sandbox_config("bad", sysctls={"kernel.panic": "1"}))
            err = None
        except SandboxError as e:
            err = e.message
        report({"got": got, "err": err, "names": [s.metadata.name for s in await rt.list_pod_sandboxes()]})
    ''')
    assert out["got"] == ["80", "1234"]
    assert "kernel.panic" in out["err"] and out["names"] == ["sys"]
    assert node.sh("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").stdout.strip() != "80"


def test_a_sandbox_whose_caller_gives_up_half_way_is_removed(node):
    out = node.agent('''
        for delay in (0.0, 0.005, 0.02):                # cancelled at different steps
            task = asyncio.ensure_future(rt.run_pod_sandbox(sandbox_config("gone")))
            await asyncio.sleep(delay)
            task.cancel()
            try:
                # a sandbox made in under `delay` was not given up half way: it stays, and
                # is removed here as its caller would
                await rt.remove_pod_sandbox(await task)
            except asyncio.CancelledError:
                pass
        sc = sandbox_config("kept")
        sid = await rt.run_pod_sandbox(sc)
        task = asyncio.ensure_future(rt.create_container(sid, container_config("c", "sleep", "9"), sc))
        await asyncio.sleep(0.005)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        names = [s.metadata.name for s in await rt.list_pod_sandboxes()]
        containers = len(await rt.list_containers())
        await rt.remove_pod_sandbox(sid)
        report({"sandboxes": names, "containers": containers})
    ''')
    assert out["sandboxes"] == ["kept"] and out["containers"] == 0
    assert node.leaks() == node.NONE


def test_spare_sandboxes_give_a_pod_the_same_sandbox_and_are_removed_by_the_next_service(node):
    """With spares (cri/spares.py), a pod's sandbox is a pre-made network plus its own ipc/uts:
    what its containers see is what a sandbox made from scratch gives them. hostPort pods make
    their own. Spares are nobody's pods; the next service removes the ones left behind."""
    out = node.agent('''
        rt.close()
        rt2, _ = open_runtime(STATE, cni=CNI, image_store=IMAGE_STORE, spare_sandboxes=2)
        listed_first = [s.id for s in await rt2.list_pod_sandboxes()]   # starts the spares
        def spares():
            return sorted(s for s in rt2.store.sandbox_ids()
                          if (rt2.store.sandbox(s) or {}).get("phase") == "spare")
        for _ in range(1500):
            if len(spares()) == 2:
                break
            await asyncio.sleep(0.02)
        made = spares()
        sc = sandbox_config("web")
        sid = await rt2.run_pod_sandbox(sc)
        st = await rt2.pod_sandbox_status(sid)
        a = await rt2.create_container(sid, container_config("a", "sh", "-c",
                                       "touch /dev/mqueue/from-a; exec sleep 1000"), sc)
        await rt2.start_container(a)
        b = await rt2.create_container(sid, container_config("b", "sleep", "1000"), sc)
        await rt2.start_container(b)
        async def out_of(cid, *cmd):
            o, e, code = await rt2.exec_sync(cid, list(cmd), 20)
            return o.decode().strip()
        await asyncio.sleep(0.2)
        ip_b = await out_of(b, "sh", "-c", "ip -4 -o addr show eth0 | awk '{print $4}'")
        lo = await out_of(b, "sh", "-c", "ip -o link show lo")
        host_a, host_b = await out_of(a, "hostname"), await out_of(b, "hostname")
        ipc_b = await out_of(b, "ls", "/dev/mqueue")
        hosts = await out_of(b, "cat", "/etc/hosts")
        hp = await rt2.run_pod_sandbox(sandbox_config("hp", port_mappings=(PortMapping(80, 18081),)))
        listed = sorted(s.id for s in await rt2.list_pod_sandboxes())
        for s in (sid, hp):
            await rt2.stop_pod_sandbox(s)
            await rt2.remove_pod_sandbox(s)
        for _ in range(1500):                  # the pool makes up for the spare taken
            if len(spares()) == 2:
                break
            await asyncio.sleep(0.02)
        report({"first": listed_first, "made": made, "sid": sid, "ip": st.ip, "ip_b": ip_b,
                "lo": lo, "hosts": [host_a, host_b], "ipc_b": ipc_b, "etc_hosts": hosts,
                "hp": hp, "listed": listed, "spares_after": len(spares())})
        rt2.close()
    ''')
    assert out["first"] == [] and len(out["made"]) == 2
    assert out["sid"] in out["made"]                          # the pod took a spare
    assert out["hp"] not in out["made"]                       # a hostPort pod did not
    assert out["listed"] == sorted([out["sid"], out["hp"]])    # spares are nobody's sandboxes
    assert out["ip"].startswith("10.244.7.") and out["ip_b"] == out["ip"] + "/24"
    assert "UP" in out["lo"].split(">")[0] or "LOOPBACK,UP" in out["lo"]
    assert out["hosts"] == ["web", "web"] and "from-a" in out["ipc_b"]
    assert f"{out['ip']}\tweb" in out["etc_hosts"]
    assert out["spares_after"] == 2
    assert node.leaks()["veths"] != []                        # the two spares stay with the node
    after = node.agent('''
        report({"sandboxes": rt.store.sandbox_ids()})
    ''')
    assert after["sandboxes"] == []
    # what spares hold (a pinned netns, a veth, an IP) is gone; the pods' cgroups are checked by
    # the sandbox tests above (other nodes on this machine may have pod cgroups meanwhile)
    left = node.leaks()
    assert (left["mounts"], left["veths"], left["ips"], left["procs"]) == ([], [], [], []), left
