"""Namespace handles and the helper's child work, checked on the recording syscall fake."""

from __future__ import annotations

import errno
import json
import socket

import pytest

from network import nshelper
from network.netns import delete_netns, prepare_netns_dir
from runtime.sys import RecordingSyscalls
from runtime.sys.consts import CLONE_NEWNET, MS_BIND, MS_REC, MS_SHARED


def test_prepare_dir_binds_it_to_itself_when_it_is_not_a_mount_point(tmp_path):
    s = RecordingSyscalls()
    s.fail("mount", errno.EINVAL, times=1)    # first make-shared: "not a mount point"
    changes = prepare_netns_dir(tmp_path / "netns", s)
    d = str(tmp_path / "netns")
    assert [c.args for c in s.calls_to("mount")] == [
        (None, d, None, MS_SHARED | MS_REC, None),
        (d, d, None, MS_BIND | MS_REC, None),
        (None, d, None, MS_SHARED | MS_REC, None)]
    assert len(changes) == 1 and "shared" in changes[0].what


def test_prepare_dir_on_a_mount_point_only_makes_it_shared(tmp_path):
    s = RecordingSyscalls()
    assert prepare_netns_dir(tmp_path, s) == []
    assert s.names() == ["mount"]


def test_delete_of_a_plain_file_unlinks_without_unmounting(tmp_path):
    f = tmp_path / "stale"
    f.write_text("")
    s = RecordingSyscalls()
    assert delete_netns(f, s) == []           # not an nsfs file: nothing was a namespace
    assert not f.exists() and s.calls == []
    assert delete_netns(f, s) == []           # missing is fine


def test_helper_child_creates_a_handle_by_unshare_and_bind_mount(tmp_path):
    s = RecordingSyscalls()
    target = tmp_path / "pod1"
    reply, fds = nshelper.do_request({"op": "create", "path": str(target)}, s)
    assert reply == {"ok": True} and fds == []
    assert s.names() == ["unshare", "mount"]
    assert s.calls[0].args == (CLONE_NEWNET,)
    assert s.calls[1].args == ("/proc/self/ns/net", str(target), None, MS_BIND, None)
    assert target.exists()


def test_helper_child_removes_the_file_when_it_cannot_create(tmp_path):
    s = RecordingSyscalls()
    s.fail("unshare", errno.EPERM)
    with pytest.raises(OSError):
        nshelper.do_request({"op": "create", "path": str(tmp_path / "pod1")}, s)
    assert not (tmp_path / "pod1").exists()


def test_helper_child_enters_the_netns_then_makes_a_netlink_socket(tmp_path):
    s = RecordingSyscalls()
    nsfile = tmp_path / "ns"
    nsfile.write_text("")
    reply, fds = nshelper.do_request({"op": "open", "netns": str(nsfile)}, s)
    with socket.socket(fileno=fds[0]) as sock:
        assert reply == {"ok": True} and s.names() == ["setns"]
        assert s.calls[0].args[1] == CLONE_NEWNET
        assert sock.family == socket.AF_NETLINK and sock.type == socket.SOCK_DGRAM


def test_serve_answers_one_request_per_message_until_eof():
    s = RecordingSyscalls()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.send(json.dumps({"op": "ping"}).encode())
    ours.send(b"not json")
    ours.send(json.dumps({"op": "dance"}).encode())
    ours.shutdown(socket.SHUT_WR)
    nshelper.serve(theirs, s)                  # returns on EOF
    replies = [json.loads(ours.recv(65536)) for _ in range(3)]
    assert replies[0]["ok"] and replies[0]["pid"] > 0
    assert not replies[1]["ok"] and not replies[2]["ok"] and "dance" in replies[2]["error"]
