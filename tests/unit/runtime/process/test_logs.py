"""CRI log lines: "<RFC3339Nano> <stream> <P|F> <content>", partial lines, rotation."""

from __future__ import annotations

import re

from runtime.process.logs import MAX_LINE, CriLog, rfc3339nano

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"


def _lines(path):
    return [line.split(" ", 3) for line in path.read_text().splitlines()]


def test_timestamps_are_go_rfc3339nano():
    assert rfc3339nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"    # zeros trimmed
    assert rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_lines_split_across_reads_become_full_lines(tmp_path):
    log = CriLog(str(tmp_path / "c.log"))
    log.write("stdout", b"hel")
    log.write("stdout", b"lo\nwor")
    log.write("stderr", b"oops\n")
    log.write("stdout", b"ld\nlast")
    log.close()
    lines = _lines(tmp_path / "c.log")
    assert all(re.fullmatch(STAMP, stamp) for stamp, *_ in lines)
    assert [tuple(rest) for _, *rest in lines] == [
        ("stdout", "F", "hello"), ("stderr", "F", "oops"), ("stdout", "F", "world"), ("stdout", "F", "last")]


def test_long_lines_are_cut_into_partial_pieces(tmp_path):
    log = CriLog(str(tmp_path / "c.log"))
    log.write("stdout", b"x" * (MAX_LINE * 2 + 5) + b"\n")
    log.close()
    tags = [(tag, len(content)) for _, _, tag, content in _lines(tmp_path / "c.log")]
    assert tags == [("P", MAX_LINE), ("P", MAX_LINE), ("F", 5)]


def test_rotation_keeps_a_bounded_number_of_files(tmp_path):
    path = tmp_path / "c.log"
    log = CriLog(str(path), max_bytes=200, max_files=3)
    for i in range(40):
        log.write("stdout", f"line {i:02d} ".encode() * 2 + b"\n")
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c.log", "c.log.1", "c.log.2"]
    assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
    assert _lines(path)[-1][3].startswith("line 39")
    newest_rotated = _lines(tmp_path / "c.log.1")[-1][3]
    assert int(newest_rotated.split()[1]) < 39
