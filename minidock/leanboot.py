"""The command line that turns a helper process into a lean interpreter.

Long-lived helpers (proxyd, each container's monitor) need a handful of stdlib
modules, not the CLI's. Forked from the CLI, a helper would keep every module the CLI
imported; the first refcount write to each object un-shares its copy-on-write page,
so each helper ends up owning megabytes it never uses. Exec'ing `python -I -S -c
BOOT` instead starts from a bare interpreter (-I: no environment or user site, -S: no
`site`, hence no venv site-packages) that imports minidock from this checkout, as a
module rather than a script so its cached bytecode is used, and calls one function
with the remaining arguments. exec keeps the pid, the children and the fds that are
not close-on-exec: that is how a helper carries its state across.
"""

from __future__ import annotations

import os
import sys

# the directory that holds the minidock package (the checkout or site-packages)
PKG_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def argv(entry: str, *args: str) -> list[str]:
    """`python -I -S -c BOOT ARGS...` that runs `entry` ("package.module:function")
    with `sys.argv[1:]` == ARGS."""
    module, func = entry.split(":")
    boot = (f"import sys; sys.path.insert(0, {PKG_PARENT!r}); "
            f"from {module} import {func}; {func}(sys.argv[1:])")
    return [sys.executable, "-I", "-S", "-c", boot, *args]


def raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: a per-host helper (proxyd, resolverd)
    holds a few sockets per container, thousands at scale, and the 1,024 soft limit of
    a login shell would cap it at a few hundred containers (dockerd raises its own)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
