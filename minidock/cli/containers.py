"""Container commands: parse Docker's flags, call minidock.runtime, print Docker's output.

No logic lives here beyond turning flags into values and results into text; `run` is
the hot path, so this module imports only what `run` needs at the top, and argparse
when a command builds its parser. `ps` has a module of its own (cli/ps.py).
"""

from __future__ import annotations

import os
import sys

from minidock.errors import InvalidArgument, MinidockError

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (see hints.py)
if TYPE_CHECKING:
    from typing import Any

    from minidock.context import Container, Context

_REPEAT = {"action": "append", "default": []}


def _formatter(prog: str) -> Any:
    """A help formatter with a fixed width: argparse's default one imports shutil
    (~5 ms) in every add_argument just to ask for the terminal's width."""
    import argparse
    return argparse.HelpFormatter(prog, width=int(os.environ.get("COLUMNS") or 100) - 2)


def parser(prog: str, description: str = "", **kwargs: Any) -> Any:
    kwargs.setdefault("formatter_class", _formatter)
    from minidock.cli import parser as _parser_mod
    return _parser_mod.parser(prog, description, **kwargs)


def _run_parser(prog: str) -> Any:
    p = parser(prog, "Create and run a new container" if prog == "run" else "Create a new container",
               add_help=False)
    if prog == "run":
        p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--name")
    p.add_argument("-e", "--env", **_REPEAT)
    p.add_argument("--env-file", **_REPEAT)
    p.add_argument("-w", "--workdir")
    p.add_argument("-h", "--hostname")
    p.add_argument("--entrypoint")
    p.add_argument("-u", "--user")
    p.add_argument("-v", "--volume", **_REPEAT, help="bind mount or volume: "
                   "HOST:CTR[:ro], NAME:CTR[:ro] or CTR (anonymous)")
    p.add_argument("--mount", **_REPEAT, help="type=bind|volume|tmpfs,source=,target=,readonly")
    p.add_argument("--tmpfs", **_REPEAT, help="a tmpfs: PATH[:size=64m,mode=1777,...]")
    p.add_argument("--volumes-from", **_REPEAT, help="the mounts of CONTAINER[:ro|rw]")
    p.add_argument("--restart", default="no",
                   help="no, on-failure[:max-retries], always, unless-stopped")
    p.add_argument("--init", action="store_true", help="an init as PID 1 (reaps, forwards signals)")
    p.add_argument("-m", "--memory", default="", help="memory limit (e.g. 64m)")
    p.add_argument("--memory-swap", default="", help="memory + swap limit, -1: unlimited swap")
    p.add_argument("--cpus", default="", help="number of CPUs (e.g. 0.5)")
    p.add_argument("-c", "--cpu-shares", default="", help="relative CPU weight")
    p.add_argument("--pids-limit", default="", help="maximum number of processes")
    p.add_argument("--cpuset-cpus", default="", help="CPUs allowed (0-2,4)")
    p.add_argument("-l", "--label", **_REPEAT)
    p.add_argument("--net", "--network", dest="network", default="default")
    p.add_argument("-p", "--publish", **_REPEAT)
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--expose", **_REPEAT)
    p.add_argument("--link", **_REPEAT)
    p.add_argument("--dns", **_REPEAT)
    p.add_argument("--dns-search", **_REPEAT)
    p.add_argument("--dns-option", "--dns-opt", dest="dns_option", **_REPEAT)
    p.add_argument("--add-host", **_REPEAT)
    p.add_argument("--ip", default="")
    p.add_argument("--network-alias", "--net-alias", dest="network_alias", **_REPEAT)
    p.add_argument("--mac-address", default="")
    p.add_argument("--security-opt", **_REPEAT)
    p.add_argument("--cap-add", **_REPEAT)
    p.add_argument("--cap-drop", **_REPEAT)
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--sysctl", **_REPEAT)
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--help", action="help")
    p.add_argument("image")
    return p


def split_at_image(p: Any, argv: list[str]) -> tuple[list[str], list[str]]:
    """Docker stops parsing flags at the image: (flags + image, command args)."""
    takes_value = {s: a.nargs != 0 for s, a in p._option_string_actions.items()}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i] + argv[i + 1:i + 2], argv[i + 2:]
        if not arg.startswith("-") or arg == "-":
            return argv[:i + 1], argv[i + 1:]
        if arg.startswith("--"):
            if "=" not in arg and takes_value.get(arg, False):
                i += 1
        else:
            for j, ch in enumerate(arg[1:], 1):
                if takes_value.get("-" + ch, False):
                    if j == len(arg) - 1:
                        i += 1
                    break
        i += 1
    return argv, []


def _options(prog: str, argv: list[str]) -> Any:
    from minidock.runtime.seccomp import read_profile_file
    from minidock.runtime.spec import RunOptions, expand_env, parse_env_file

    p = _run_parser(prog)
    head, rest = split_at_image(p, argv)
    ns = p.parse_args(head)
    env: list[str] = []
    for path in ns.env_file:
        try:
            with open(path) as fh:
                env.extend(parse_env_file(fh.read(), dict(os.environ)))
        except OSError as err:
            raise InvalidArgument(f"open {path}: {err.strerror.lower()}") from err
    env.extend(expand_env(ns.env, dict(os.environ)))
    labels = dict(item.partition("=")[::2] for item in ns.label)
    opts = RunOptions(
        image=ns.image, args=tuple(rest), detach=getattr(ns, "detach", False),
        interactive=ns.interactive, tty=ns.tty, rm=ns.rm, name=ns.name,
        env=tuple(env), workdir=ns.workdir, hostname=ns.hostname, entrypoint=ns.entrypoint,
        user=ns.user, network=ns.network, publish=tuple(ns.publish),
        **_mounts_and_limits(ns),
        publish_all=ns.publish_all, expose=tuple(ns.expose), links=tuple(ns.link),
        dns=tuple(ns.dns), dns_search=tuple(ns.dns_search),
        dns_options=tuple(ns.dns_option), add_hosts=tuple(ns.add_host), ip=ns.ip,
        aliases=tuple(ns.network_alias), mac_address=ns.mac_address, labels=labels,
        security_opt=tuple(read_profile_file(v) for v in ns.security_opt),
        cap_add=tuple(ns.cap_add), cap_drop=tuple(ns.cap_drop), privileged=ns.privileged,
        sysctls=tuple(ns.sysctl), read_only=ns.read_only)
    return opts, env


_LIMIT_FLAGS = ("memory", "memory_swap", "cpus", "cpu_shares", "pids_limit", "cpuset_cpus")


def _mounts_and_limits(ns: Any) -> dict[str, Any]:
    """RunOptions fields of the mount, restart, init and resource flags."""
    return {"volumes": tuple(ns.volume), "mounts": tuple(ns.mount), "tmpfs": tuple(ns.tmpfs),
            "volumes_from": tuple(ns.volumes_from), "restart": ns.restart, "init": ns.init,
            "limits": {k: getattr(ns, k) for k in _LIMIT_FLAGS if getattr(ns, k)}}


def cmd_create(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.start import create
    opts, env = _options("create", argv)
    ctr = create(ctx, opts, env)
    print(ctr["Id"])
    return 0


def cmd_run(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.start import create
    opts, env = _options("run", argv)
    if opts.tty and opts.interactive and not opts.detach and not os.isatty(0):
        print("the input device is not a TTY", file=sys.stderr)
        return 1
    ctr = create(ctx, opts, env, op="run")
    return _start_one(ctx, ctr, attach=not opts.detach, stdin=opts.interactive and not opts.detach)


def _start_one(ctx: Context, ctr: dict, attach: bool, stdin: bool) -> int:
    from minidock.runtime import start as starter
    try:
        started = starter.start(ctx, ctr, attach=attach, stdin=stdin)
    except MinidockError as err:
        if ctr["HostConfig"].get("AutoRemove"):
            from minidock.runtime.lifecycle import destroy
            destroy(ctx, ctr, volumes=True)
        else:
            starter.record_start_failure(ctx, ctr, err)
        raise
    if not attach:
        print(ctr["Id"])
        _fast_exit(0)
    from minidock.runtime.attach import wait_exit
    sys.stdout.flush()
    _fast_exit(wait_exit(ctx, started.ctr, started.exit_r, started.tty,
                         raw=bool(ctr["Config"].get("Tty"))))
    return 0


def _fast_exit(code: int) -> None:
    """End `run` now: interpreter teardown and SQLite's checkpoint-on-close cost
    ~10-20 ms on the hot path and buy nothing (the store's auto-checkpoint keeps
    the WAL bounded; every transaction is already committed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _simple(prog: str, desc: str, *flags: tuple[tuple[str, ...], dict]) -> Any:
    p = parser(prog, desc)
    for names, kw in flags:
        p.add_argument(*names, **kw)
    p.add_argument("containers", nargs="+")
    return p


def _each(ctx: Context, refs: list[str], fn: Any, echo: bool = True) -> int:
    """Apply `fn` to each container, Docker-style: errors on stderr, exit 1 if any."""
    from minidock.cli.parser import for_each
    from minidock.runtime import container as records

    def one(ref: str) -> None:
        fn(records.load(ctx, ref))
        if echo:
            print(ref)
    return for_each(refs, one)


def cmd_start(ctx: Context, argv: list[str]) -> int:
    p = _simple("start", "Start one or more stopped containers",
                (("-a", "--attach"), {"action": "store_true"}),
                (("-i", "--interactive"), {"action": "store_true"}))
    ns = p.parse_args(argv)
    if ns.attach:
        from minidock.runtime import container as records
        ctr = records.load(ctx, ns.containers[0])
        if ctr["State"].get("Running"):
            return 0
        return _start_one(ctx, ctr, attach=True, stdin=ns.interactive)

    def go(ctr: dict) -> None:
        from minidock.runtime.lifecycle import refresh
        if not refresh(ctx, ctr)["State"].get("Running"):
            _start_quiet(ctx, ctr)
    return _each(ctx, ns.containers, go)


def _start_quiet(ctx: Context, ctr: dict) -> None:
    from minidock.runtime import start as starter
    try:
        starter.start(ctx, ctr, attach=False)
    except MinidockError as err:
        starter.record_start_failure(ctx, ctr, err)
        raise


def cmd_stop(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.lifecycle import stop
    p = _simple("stop", "Stop one or more running containers",
                (("-t", "--time"), {"type": int, "default": 10}))
    ns = p.parse_args(argv)
    return _each(ctx, ns.containers, lambda c: stop(ctx, c, ns.time))


def cmd_restart(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.lifecycle import stop
    p = _simple("restart", "Restart one or more containers",
                (("-t", "--time"), {"type": int, "default": 10}))
    ns = p.parse_args(argv)

    def go(ctr: dict) -> None:
        ctr = stop(ctx, ctr, ns.time)
        ctr["RestartCount"] = ctr.get("RestartCount", 0)
        _start_quiet(ctx, ctr)
    return _each(ctx, ns.containers, go)


def cmd_kill(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.lifecycle import end_restarts, refresh, signal_container, wait_stopped
    p = _simple("kill", "Kill one or more running containers",
                (("-s", "--signal"), {"default": "KILL"}))
    ns = p.parse_args(argv)
    sig = parse_signal(ns.signal)

    def go(ctr: dict) -> None:
        from minidock.errors import Conflict
        ctr = end_restarts(ctx, refresh(ctx, ctr))     # Docker: a kill is a manual stop
        if not ctr["State"].get("Running") or not signal_container(ctr, sig):
            raise Conflict(f"Cannot kill container: {ctr['Id']}: "
                           f"Container {ctr['Id']} is not running")
        if sig == 9:
            wait_stopped(ctx, ctr)
    return _each(ctx, ns.containers, go)


def parse_signal(text: str) -> int:
    import signal
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError:
        raise InvalidArgument(f"Invalid signal: {text}") from None


def cmd_rm(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.lifecycle import remove
    p = _simple("rm", "Remove one or more containers",
                (("-f", "--force"), {"action": "store_true"}),
                (("-v", "--volumes"), {"action": "store_true"}))
    ns = p.parse_args(argv)
    return _each(ctx, ns.containers, lambda c: remove(ctx, c, ns.force, ns.volumes))


def cmd_wait(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime.lifecycle import refresh, wait_stopped
    ns = _simple("wait", "Block until one or more containers stop").parse_args(argv)

    def go(ctr: dict) -> None:
        ctr = refresh(ctx, ctr)
        if ctr["State"].get("Running"):
            ctr = wait_stopped(ctx, ctr)
        print(ctr["State"]["ExitCode"])
    return _each(ctx, ns.containers, go, echo=False)


def cmd_logs(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import container as records
    from minidock.runtime.logfollow import print_logs
    p = parser("logs", "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("container")
    ns = p.parse_args(argv)
    ctr = records.load(ctx, ns.container)
    print_logs(ctx, ctr, ns.follow)
    return 0


def cmd_exec(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import container as records
    from minidock.runtime.execute import ExecOptions, exec_in
    from minidock.runtime.spec import expand_env
    p = parser("exec", "Run a command in a running container")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", **_REPEAT)
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("container")
    head, rest = split_at_image(p, argv)
    ns = p.parse_args(head)
    if not rest:
        raise InvalidArgument('"minidock exec" requires at least 2 arguments.')
    ctr = records.load(ctx, ns.container)
    opts = ExecOptions(tuple(rest), ns.interactive, ns.tty, ns.detach,
                       tuple(expand_env(ns.env, dict(os.environ))), ns.workdir, ns.user)
    return exec_in(ctx, ctr, opts)


def cmd_port(ctx: Context, argv: list[str]) -> int:
    from minidock.runtime import container as records
    p = parser("port", "List port mappings or a specific mapping for the container")
    p.add_argument("container")
    p.add_argument("port", nargs="?")
    ns = p.parse_args(argv)
    ctr = records.load(ctx, ns.container)
    ports = (ctr.get("NetworkSettings") or {}).get("Ports") or {}
    for key, binds in sorted(ports.items()):
        if ns.port and key not in (ns.port, ns.port + "/tcp"):
            continue
        for b in binds or []:
            host = f"[{b['HostIp']}]" if ":" in b["HostIp"] else b["HostIp"]
            print(f"{host}:{b['HostPort']}" if ns.port else f"{key} -> {host}:{b['HostPort']}")
    return 0
