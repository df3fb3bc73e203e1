"""The `minidock` command: global options, then one subcommand.

Only the module of the subcommand being run is imported (the start path of every
container pays for each import: see README "Performance"). Each command module exposes
functions `cmd_<name>(ctx, argv) -> int` and builds its own argparse parser.
argparse and not click: click's import alone costs ~60 ms here, half of the start
budget of `minidock run`; argparse costs ~12 ms.
"""

from __future__ import annotations

import os
import sys

# name -> (module, function, one-line help). Grouped commands ("network ls") use "group".
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("minidock.cli.containers", "cmd_run", "Create and run a new container"),
    "create": ("minidock.cli.containers", "cmd_create", "Create a new container"),
    "start": ("minidock.cli.containers", "cmd_start", "Start one or more stopped containers"),
    "stop": ("minidock.cli.containers", "cmd_stop", "Stop one or more running containers"),
    "restart": ("minidock.cli.containers", "cmd_restart", "Restart one or more containers"),
    "kill": ("minidock.cli.containers", "cmd_kill", "Kill one or more running containers"),
    "rm": ("minidock.cli.containers", "cmd_rm", "Remove one or more containers"),
    "ps": ("minidock.cli.ps", "cmd_ps", "List containers"),
    "logs": ("minidock.cli.containers", "cmd_logs", "Fetch the logs of a container"),
    "exec": ("minidock.cli.containers", "cmd_exec", "Run a command in a running container"),
    "wait": ("minidock.cli.containers", "cmd_wait", "Block until a container stops, print its exit code"),
    "inspect": ("minidock.cli.inspect", "cmd_inspect", "Return low-level information on objects"),
    "port": ("minidock.cli.containers", "cmd_port", "List port mappings of a container"),
    "image": ("minidock.cli.images", "cmd_image", "Manage images (build, load, import, ls, rm)"),
    "images": ("minidock.cli.images", "cmd_images", "List images"),
    "load": ("minidock.cli.images", "cmd_load", "Load an image from a tar archive"),
    "import": ("minidock.cli.images", "cmd_import", "Import a rootfs tarball as an image"),
    "rmi": ("minidock.cli.images", "cmd_rmi", "Remove one or more images"),
    "network": ("minidock.cli.networks", "cmd_network", "Manage networks"),
    "volume": ("minidock.cli.volumes", "cmd_volume", "Manage volumes"),
    "stats": ("minidock.cli.stats", "cmd_stats", "Display a live stream of container resource usage"),
    "system": ("minidock.cli.system", "cmd_system", "Manage minidock (info, prune)"),
    "info": ("minidock.cli.system", "cmd_info", "Display system-wide information"),
    "version": ("minidock.cli.system", "cmd_version", "Show the minidock version"),
    "completion": ("minidock.cli.complete", "cmd_completion",
                   "Print a shell completion script (bash, zsh, fish)"),
    "__complete": ("minidock.cli.complete", "cmd_complete", ""),   # used by those scripts
}

GLOBAL_HELP = """Usage:  minidock [OPTIONS] COMMAND

A small, real container runtime with Docker-faithful networking (run as root).

Options:
      --root DIR        state directory (env MINIDOCK_ROOT, default /var/lib/minidock)
      --exec-root DIR   runtime directory (env MINIDOCK_EXEC_ROOT, default /run/minidock)
      --config FILE     daemon options (env MINIDOCK_CONFIG, default <root>/daemon.json)
  -D, --debug           show tracebacks of unexpected errors
      --trace           print the steps the command runs as a tree on stderr, each
                        with its time and the kernel objects it made or removed
                        (env MINIDOCK_TRACE=1, or MINIDOCK_TRACE=FILE to append there)
  -v, --version         print the version and exit

Commands:
"""


def _usage() -> str:
    lines = [f"  {name:<12}{help_}" for name, (_, _, help_) in COMMANDS.items()
             if not name.startswith("_")]
    return GLOBAL_HELP + "\n".join(lines) + "\n\nRun 'minidock COMMAND --help' for more information on a command.\n"


def _split_globals(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Parse the few global options by hand; stop at the first command word."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            break
        key, eq, val = arg.partition("=")
        if key in ("--root", "--exec-root", "--config"):
            if not eq:
                i += 1
                if i >= len(argv):
                    raise SystemExit(f"minidock: flag needs an argument: {key}")
                val = argv[i]
            opts[key[2:]] = val
        elif key in ("-D", "--debug"):
            opts["debug"] = "1"
        elif key == "--trace":
            opts["trace"] = "1"
        elif key in ("-h", "--help"):
            opts["help"] = "1"
        elif key in ("-v", "--version"):
            opts["version"] = "1"
        else:
            raise SystemExit(f"unknown flag: {arg}\nSee 'minidock --help'.")
        i += 1
    return opts, argv[i:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts, rest = _split_globals(argv)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 125
    if opts.get("trace") and not os.environ.get("MINIDOCK_TRACE"):
        os.environ["MINIDOCK_TRACE"] = "1"   # before minidock.pipeline reads it
        if "minidock.pipeline" in sys.modules:
            _enable_trace(sys.modules["minidock.pipeline"])
    if opts.get("version"):
        from minidock import __version__
        print(f"minidock version {__version__}")
        return 0
    if not rest or opts.get("help") or rest[0] == "help":
        print(_usage(), end="")
        return 0 if (opts.get("help") or (rest and rest[0] == "help")) else 1
    name, args = rest[0], rest[1:]
    entry = COMMANDS.get(name)
    if entry is None:
        print(f"minidock: '{name}' is not a minidock command.\nSee 'minidock --help'", file=sys.stderr)
        return 1
    if opts.get("debug"):
        os.environ["MINIDOCK_DEBUG"] = "1"
    from minidock.context import Context
    ctx = Context.from_env(opts.get("root"), opts.get("exec-root"), opts.get("config"))
    if name not in ("version", "completion", "__complete") and not os.path.exists(os.path.join(ctx.exec_root, "minidock.boot")):
        from minidock.reconcile import check_boot   # first command since boot (one stat)
        check_boot(ctx)
    code = run_command(ctx, entry, args)
    if entry[0] in FAST_EXIT:
        fast_exit(code)
    return code


# commands whose process ends with os._exit: every transaction is committed, every
# file they write is closed; what the interpreter's teardown and the store's
# checkpoint-on-close (fsyncs, the WAL's unlink) would add is ~10 ms (more under I/O
# load) of nothing. The store's auto-checkpoint keeps the WAL bounded. Image commands
# (archives, builds) keep the orderly exit.
FAST_EXIT = ("minidock.cli.containers", "minidock.cli.ps", "minidock.cli.networks",
             "minidock.cli.inspect")


def fast_exit(code: int) -> None:
    """Flush stdout and stderr, then end the process at once with `code`."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


def _enable_trace(pipeline: object) -> None:
    setattr(pipeline, "_TRACE", "1")
    setattr(pipeline, "TRACING", True)


def run_command(ctx: object, entry: tuple[str, str, str], args: list[str]) -> int:
    """Import the command's module, run it, and turn MinidockError into exit codes."""
    from minidock.errors import MinidockError

    # __import__, not importlib.import_module: importlib's package imports warnings
    module = __import__(entry[0], fromlist=["_"])
    try:
        return int(getattr(module, entry[1])(ctx, args) or 0)
    except MinidockError as err:
        print(f"Error response from daemon: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
