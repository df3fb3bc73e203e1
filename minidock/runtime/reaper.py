"""The built-in `--init` when no init binary is found: PID 1 stays, forks the command.

After everything else of the init (mounts, pivot_root, user, capabilities, seccomp),
the init child forks once more: the new child execs the command as usual, and this
process stays PID 1 of the container, as tini would be: it forwards the signals a
container receives (stop's SIGTERM, kill -s ...) to the command, reaps every orphan
that the kernel reparents to it, and exits with the command's status (128+N when a
signal N killed it). Everything it uses was imported before pivot_root.

The start protocol is unchanged: this process closes its copy of the sync pipe, so
the CLI still sees EOF when the command execs, or the command's "E..." line.
"""

from __future__ import annotations

import os
import signal

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT, signal.SIGALRM)


def fork_command(sync_w: int) -> None:
    """Returns in the child (which goes on to exec); never returns in PID 1."""
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)   # none lost before the loop
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        return
    os.close(sync_w)
    _reap(child)


def _reap(child: int) -> None:
    """Forward signals to `child`, reap everything, exit with the child's status."""
    for sig in FORWARDED:
        signal.signal(sig, lambda n, _f: _forward(child, n))
    signal.signal(signal.SIGCHLD, lambda *_: None)         # wake the wait below
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def _forward(child: int, sig: int) -> None:
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass
