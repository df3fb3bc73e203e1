"""The lean monitor's pure parts: its json-file lines, its parameter blob, its imports."""

import json
import subprocess
import sys

from minidock import leanboot
from minidock.runtime import logwriter, monitor_main
from minidock.runtime.container import now_iso
from minidock.runtime.logs import LogWriter, parse_entries


def test_entry_is_what_json_dumps_makes():
    ns = 1_790_000_000_123_456_789
    for raw in [b"hi\n", b"tab\tquote\"back\\slash\n", "h\u00e9llo \u2603\n".encode(),
                b"\x00\x01\x1f\x7f", b"\xff\xfe broken utf-8", b""]:
        want = json.dumps({"log": raw.decode("utf-8", "replace"), "stream": "stderr",
                           "time": now_iso(ns)}, separators=(",", ":")) + "\n"
        assert logwriter.entry("stderr", raw, ns) == want.encode()


def test_timestamp_matches_the_record_clock():
    for ns in (0, 1, 999_999_999, 1_790_000_000_000_000_001):
        assert logwriter.timestamp(ns) == now_iso(ns)


def test_writer_cuts_long_lines_and_adopts_an_fd(tmp_path):
    path = tmp_path / "c-json.log"
    w = LogWriter(str(path))
    again = LogWriter.adopt(w.fd)
    again.write("stdout", b"x" * (logwriter.MAX_PARTIAL + 5))   # no newline yet
    again.write("stdout", b"\nend")
    again.close()
    entries = list(parse_entries(path.read_bytes()))
    assert [len(t) for _, t in entries] == [logwriter.MAX_PARTIAL, 6, 3]


def test_params_blob_round_trips():
    params = {"pid": 42, "log": 3, "outputs": {5: "stdout", 6: "stderr"}, "console": None,
              "stdin": 0, "verdict": 7, "exit": 8, "attach": True, "cid": "a" * 64,
              "root": "/r", "exec_root": "/x", "config": None, "path": ["/a", "/b"]}
    import marshal
    assert marshal.loads(bytes.fromhex(monitor_main.encode(params))) == params


def test_boot_line_runs_the_entry_in_a_bare_interpreter():
    argv = leanboot.argv("minidock.runtime.monitor_main:exit_code", "x")
    assert argv[:4] == [sys.executable, "-I", "-S", "-c"] and argv[-1] == "x"
    assert f"sys.path.insert(0, {leanboot.PKG_PARENT!r})" in argv[4]


def test_lean_monitor_imports_nothing_heavy():
    """What the monitor holds for the container's whole life (issue 7: memory)."""
    code = (f"import sys; sys.path.insert(0, {leanboot.PKG_PARENT!r}); "
            "import minidock.runtime.monitor_main; print(' '.join(sorted(sys.modules)))")
    mods = set(subprocess.run([sys.executable, "-I", "-S", "-c", code], check=True,
                              capture_output=True, text=True).stdout.split())
    heavy = {"os", "json", "re", "enum", "typing", "socket", "signal", "sqlite3",
             "traceback", "minidock.store", "minidock.context", "minidock.errors",
             "minidock.runtime.container", "minidock.runtime.lifecycle", "minidock.net.api"}
    assert mods & heavy == set()
    assert "minidock.runtime.logwriter" in mods


def test_exit_code():
    assert monitor_main.exit_code(3 << 8) == 3
    assert monitor_main.exit_code(9) == 137
