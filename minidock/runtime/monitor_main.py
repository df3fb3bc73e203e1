"""The container's monitor once its init runs: pump the output, reap the init, report.

monitor.py does what must happen before the init exists (setsid, stdio,
unshare(CLONE_NEWPID), pipes, fork the init, "P<pid>" to the CLI) in a monitor forked
by the CLI or by the monitor template (montemplated.py). Then `run` here takes over:

* in a template-forked monitor, in place (monitor.run_in_place): the process keeps
  sharing the template's frozen heap, which already holds this module;
* in a CLI-forked detached monitor, after an exec of a bare interpreter (leanboot.py)
  into `main`: exec keeps its pid, so the init stays its child in the same pid
  namespace, and keeps exactly the fds monitor.py made inheritable;
* in a CLI-forked attached monitor (and when that exec fails), in place as well.

What `run` needs arrives as one dict (through the exec: a marshal blob, a module the
interpreter has loaded anyway):

    pid       the init (our child)
    log       the json-file log fd (opened before the CLI could remove the dir)
    outputs   {fd: "stdout" | "stderr"}: the read ends of the init's stdout/stderr
    console   -t: our end of a socketpair; the init sends the pty master on it
    stdin     -i -t: the CLI's stdin, copied to the pty master (without -t the init
              reads it directly)
    verdict   the CLI's "1" (started and recorded); "0" or EOF: the start failed.
              None: confirmed already (a CLI-forked detached monitor waits for it
              before the exec, see monitor.py)
    exit      where a foreground CLI reads the exit code
    attach    also copy the output to fds 1 and 2 (the CLI's)
    cid, root, exec_root, config, path    to record the exit, with the CLI's sys.path

Why so little: every page this process writes is its own for the container's life
(a CLI-forked monitor would keep the CLI's whole interpreter: ~7.5 MiB of PSS per
running container). Until its container exits it uses only posix, select, _signal
and the log writer; the store, the lifecycle and the network teardown are imported
after that, to record the exit (tens of ms, paid by `stop`/`rm -f`, which wait for it).
"""

from __future__ import annotations

import _signal
import marshal
import posix
import select
import sys

from minidock.runtime.logwriter import LogWriter

NAME = b"minidock-mon"     # /proc/<pid>/comm; after the exec it would say "python3"


def main(argv: list[str]) -> None:
    """The lean interpreter's entry: argv[0] is the hex of the marshal blob."""
    params = marshal.loads(bytes.fromhex(argv[0]))
    name_process(NAME)
    run(params)


def name_process(name: bytes) -> None:
    """Set /proc/self/comm (what ps and the benchmarks show); best effort."""
    try:
        fd = posix.open("/proc/self/comm", posix.O_WRONLY | posix.O_CLOEXEC)
        posix.write(fd, name)
        posix.close(fd)
    except OSError:
        pass


def encode(params: dict) -> str:
    """The blob `main` decodes (called in the forked monitor, before the exec)."""
    return marshal.dumps(params).hex()


def run(p: dict) -> None:
    """Pump until the init has exited and its output is drained, then record. Never
    returns; an error is printed (monitor.log, or the attached CLI's stderr)."""
    try:
        log = LogWriter.adopt(p["log"])
        outputs: dict[int, str] = dict(p["outputs"])
        master = None
        if p["console"] is not None:
            master = receive_master(p["console"])
            outputs = {master: "stdout"} if master is not None else {}
        verdict: list[bytes] = [b"1"] if p["verdict"] is None else []
        status = _pump(log, p, outputs, master, verdict)
        _finish(p, status, verdict)
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        posix._exit(0)


def receive_master(sock_fd: int) -> int | None:
    """The pty master the init sends (None if it died before). `_socket`, not
    `socket`: the latter imports enum for its constants (about 300 KiB here)."""
    import _socket
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, sock_fd)
    try:
        _msg, anc, _flags, _addr = sock.recvmsg(1, _socket.CMSG_SPACE(4))
    except OSError:
        anc = []
    finally:
        sock.close()
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder, signed=True)
    return None


class _Pump:
    """The loop's state: which fds still carry output, where output also goes."""

    def __init__(self, log: LogWriter, p: dict, outputs: dict[int, str],
                 master: int | None) -> None:
        self.log = log
        self.pid: int = p["pid"]
        self.live = dict(outputs)
        self.master = master
        self.stdin: int | None = p["stdin"] if master is not None else None
        self.sinks: dict[str, int | None] = {"stdout": 1, "stderr": 2} if p["attach"] else {}
        self.verdict_r: int = p["verdict"]


def _pump(log: LogWriter, p: dict, outputs: dict[int, str], master: int | None,
          verdict: list[bytes]) -> int:
    """Copy output until the init exits and its output is drained; returns wait status.

    The CLI's verdict is watched too: EOF before "1" means the CLI died mid-start (or
    gave up): the init is killed, as the CLI's rollback would have done, so a killed
    CLI never leaves a container running that no record describes (reconcile.py).
    """
    st = _Pump(log, p, outputs, master)
    pidfd = posix.pidfd_open(st.pid)
    status = None
    while st.live or status is None:
        watch = [*st.live, *([pidfd] if status is None else []),
                 *([st.stdin] if st.stdin is not None else []),
                 *([st.verdict_r] if not verdict and status is None else [])]
        ready, _, _ = select.select(watch, [], [])
        if st.verdict_r in ready and not verdict:
            verdict.append(read(st.verdict_r)[:1])
            if verdict[0] != b"1":
                posix.kill(st.pid, _signal.SIGKILL)   # pid 1 of its pid ns: all of it goes
            ready = [fd for fd in ready if fd != st.verdict_r]
        if pidfd in ready:
            status = posix.waitpid(st.pid, 0)[1]
            posix.close(pidfd)
            if master is not None:
                # every process of the container is gone now, but a reader of the
                # pty slave (a CLI's winsize fd) may keep it open: drain, do not wait
                # (unless the master is drained and closed already: EIO came first)
                st.stdin = None
                ready = [master] if master in st.live else []
                if ready:
                    posix.set_blocking(master, False)
        for fd in ready:
            if fd == pidfd:
                continue
            if fd == st.stdin:
                data = read(fd)
                if data:
                    write_all(master, data)  # type: ignore[arg-type]
                else:
                    st.stdin = None
                continue
            _drain(st, fd, status is not None)
    log.close()
    return status  # type: ignore[return-value]


def _drain(st: _Pump, fd: int, exited: bool) -> None:
    """Copy what `fd` has; after the exit the pty master is read until it is empty."""
    while True:
        data = read(fd)
        if data:
            _copy(st, st.live[fd], data)
        if not data or not exited or fd != st.master:
            break
    if not data:
        del st.live[fd]
        posix.close(fd)


def _copy(st: _Pump, stream: str, data: bytes) -> None:
    st.log.write(stream, data)
    sink = st.sinks.get(stream)
    if sink is not None and not write_all(sink, data):
        st.sinks[stream] = None     # the attached CLI went away: the log goes on


def read(fd: int) -> bytes:
    """Up to 64 KiB; b"" at EOF and on EIO (a pty master once the last slave closes)."""
    try:
        return posix.read(fd, 65536)
    except OSError:
        return b""


def write_all(fd: int, data: bytes) -> bool:
    """Write everything; False when the reader is gone."""
    try:
        while data:
            data = data[posix.write(fd, data):]
        return True
    except OSError:
        return False


def exit_code(status: int) -> int:
    """Docker's exit code from a wait status: the code, or 128+N when killed by N."""
    code = posix.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _finish(p: dict, status: int, verdict: list[bytes]) -> None:
    """Record the exit (lazy heavy imports), release networking, --rm; tell the CLI."""
    got = verdict[0] if verdict else posix.read(p["verdict"], 1)
    if got != b"1":
        return                  # the CLI rolls back the failed start
    report = _Reporter(p["exit"], exit_code(status))
    try:
        sys.path.extend(d for d in p["path"] if d not in sys.path)   # site-packages
        from minidock.context import Context
        from minidock.runtime import lifecycle
        ctx = Context(root=p["root"], exec_root=p["exec_root"], config_path=p["config"])
        delay = lifecycle.record_exit(ctx, p["cid"], p["pid"], report.code, recorded=report)
    finally:
        report()
    if delay is not None:                # the restart policy says: again (restart.py)
        from minidock.runtime.restart import restart_from_monitor
        restart_from_monitor(ctx, p["cid"], delay)


class _Reporter:
    """Tells a waiting CLI the exit code, once (nobody may be listening)."""

    def __init__(self, exit_w: int, code: int) -> None:
        self.exit_w: int | None = exit_w
        self.code = code

    def __call__(self) -> None:
        if self.exit_w is None:
            return
        fd, self.exit_w = self.exit_w, None
        write_all(fd, f"{self.code}\n".encode())
        posix.close(fd)
