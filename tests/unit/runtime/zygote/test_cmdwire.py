"""The command server's wire format: a request survives the trip byte for byte, a bad one is refused."""

from __future__ import annotations

import pytest

from runtime.zygote.cmdwire import BadRequest, decode_reply, decode_request, encode_reply, encode_request


def test_a_request_round_trips_byte_for_byte():
    argv = [b"/usr/local/bin/nodeagent", b"runtime", b"", b"caf\xe9", b"a b\nc", b"--x=1"]
    env = [(b"PATH", b"/bin:/usr/bin"), (b"EMPTY", b""), (b"EQ", b"a=b=c"), (b"RAW", b"\xff\xfe")]
    assert decode_request(encode_request(0o027, argv, env)) == (0o027, argv, env)


def test_the_format_is_nul_separated_words_after_a_versioned_magic():
    assert encode_request(0o22, [b"nodeagent", b"runtime", b"list"], [(b"HOME", b"/root")]) == \
        b"command-v1\0" b"22\0" b"3\0" b"nodeagent\0runtime\0list\0" b"HOME=/root\0"


def test_no_arguments_and_no_environment():
    assert decode_request(encode_request(0, [], [])) == (0, [], [])


@pytest.mark.parametrize("data, why", [
    (b"command-v0\x0022\x001\x00x\x00", "expected command-v1"),      # an older or newer client
    (b"command-v1\x0022\x001\x00x", "not NUL-terminated"),
    (b"command-v1\x0022\x005\x00x\x00", "argv count 5"),              # fewer words than announced
    (b"command-v1\x00zz\x001\x00x\x00", "no umask and argv count"),
    (b"command-v1\x00", "no umask and argv count"),
    (b"command-v1\x0022\x001\x00x\x00NOEQUALS\x00", "is not KEY=VALUE"),
    (b"command-v1\x0022\x001\x00x\x00=v\x00", "is not KEY=VALUE"),
    (b"", "not NUL-terminated"),
])
def test_malformed_requests_are_refused_with_the_reason(data, why):
    with pytest.raises(BadRequest, match=why):
        decode_request(data)


def test_a_nul_inside_a_word_cannot_be_sent():
    with pytest.raises(BadRequest, match="NUL"):
        encode_request(0o22, [b"a\0b"], [])


def test_replies():
    assert encode_reply("pid", 1234) == b"pid 1234"
    assert encode_reply("exit", 3) == b"exit 3"
    assert decode_reply(b"refused uid 1000 may not") == ("refused", "uid 1000 may not")
    assert decode_reply(b"") == ("", "")     # EOF: the connection closed
