"""Shell completion: `minidock completion bash|zsh|fish` and the hidden `__complete`.

The scripts are small and the same for every shell: on TAB they run
`minidock __complete WORD... CURRENT` (the words typed after `minidock`, the last one
being completed) and offer the lines it prints. All the knowledge lives here, so it
never goes stale: commands come from the command table, subcommands and flags from
each command's own `--help` (argparse), names from the store (container, network and
image names of the root the typed `--root` / `--exec-root` or the environment select).
Nothing here runs on any other command's path.
"""

from __future__ import annotations

import contextlib
import io
import re
from minidock.hints import Any

GLOBAL_FLAGS = ["--root", "--exec-root", "--config", "--debug", "--trace", "--help",
                "--version"]
_GLOBAL_VALUE = ("--root", "--exec-root", "--config")

# command -> what its positional arguments name
_CONTAINER_CMDS = {"start", "stop", "restart", "kill", "rm", "logs", "exec", "wait",
                   "port", "inspect"}
_SUBCOMMAND_ARGS = {
    ("network", "connect"): ["network", "container"],
    ("network", "disconnect"): ["network", "container"],
    ("network", "rm"): ["network"], ("network", "remove"): ["network"],
    ("network", "inspect"): ["network"], ("network", "diagram"): ["network"],
    ("image", "rm"): ["image"], ("image", "remove"): ["image"],
    ("image", "inspect"): ["image"], ("image", "tag"): ["image"],
}
_FLAG_VALUES = {"--network": "network", "--net": "network", "--link": "container",
                "--volumes-from": "container"}


_HELP: dict[tuple[str, ...], str] = {}


def _help_text(ctx: Any, words: list[str]) -> str:
    """What `minidock WORDS --help` prints (argparse or the group's usage)."""
    if tuple(words) not in _HELP:
        _HELP[tuple(words)] = _run_help(ctx, words)
    return _HELP[tuple(words)]


def _run_help(ctx: Any, words: list[str]) -> str:
    from minidock.cli import COMMANDS
    import importlib
    entry = COMMANDS.get(words[0])
    if entry is None:
        return ""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            getattr(importlib.import_module(entry[0]), entry[1])(ctx, words[1:] + ["--help"])
        except BaseException:  # noqa: BLE001 - a help screen may end any way at all
            pass
    return out.getvalue()


def flags(ctx: Any, words: list[str]) -> list[str]:
    """The option strings of `minidock WORDS --help` (`-d`, `--detach`, ...)."""
    found: list[str] = []
    for line in _help_text(ctx, words).splitlines():
        if line.lstrip().startswith("-"):
            spec = line.strip().split("  ")[0]          # "-p PUBLISH, --publish PUBLISH"
            for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", spec):
                if flag not in found:
                    found.append(flag)
    return found


def subcommands(ctx: Any, group: str) -> list[str]:
    """The `Commands:` section of a group's usage (network, image, system)."""
    if group == "system":
        return ["info", "prune"]
    text = _help_text(ctx, [group])
    out, inside = [], False
    for line in text.splitlines():
        if line.strip() == "Commands:":
            inside = True
            continue
        if inside and line.startswith("  ") and line.strip():
            out.append(line.split()[0])
        elif inside and not line.strip():
            inside = False
    return out


def names(ctx: Any, kind: str) -> list[str]:
    """Container, network or image names known to the store (no side effects)."""
    import os
    if not kind or not os.path.exists(os.path.join(ctx.root, "minidock.db")):
        return []
    try:
        if kind == "container":
            return sorted(d["Name"].lstrip("/") for _i, d in ctx.store.list("container"))
        if kind == "network":
            return sorted(d["Name"] for _i, d in ctx.store.list("network"))
        if kind == "image":
            from minidock.image.store import list_images
            return sorted({t for _i, d in list_images(ctx) for t in d.get("RepoTags") or []})
    except Exception:  # noqa: BLE001 - completion never fails loudly (no root yet, ...)
        return []
    return []


def candidates(ctx: Any, words: list[str]) -> list[str]:
    """Everything that may follow: `words[-1]` is the word being completed."""
    from minidock.cli import COMMANDS
    done, cur = words[:-1], words[-1] if words else ""
    i = 0
    while i < len(done) and done[i].startswith("-"):       # global options
        i += 2 if done[i] in _GLOBAL_VALUE else 1
    if i > len(done):                                       # the value of --root & co
        return []
    if i == len(done):
        return GLOBAL_FLAGS if cur.startswith("-") else [c for c in COMMANDS if c[0] != "_"]
    cmd, args = done[i], done[i + 1:]
    if cmd in ("network", "image", "system") and not args:
        return subcommands(ctx, cmd) if not cur.startswith("-") else ["--help"]
    if cmd == "completion":
        return ["bash", "zsh", "fish"] if not args else []
    path = [cmd] + (args[:1] if cmd in ("network", "image", "system") else [])
    rest = args[len(path) - 1:]
    if cur.startswith("-"):
        return flags(ctx, path)
    if rest and rest[-1] in _FLAG_VALUES:
        return names(ctx, _FLAG_VALUES[rest[-1]])
    if rest and rest[-1].startswith("-") and "=" not in rest[-1] and _takes_value(ctx, path, rest[-1]):
        return []
    return names(ctx, _positional_kind(cmd, path, _positionals(ctx, path, rest)))


def _takes_value(ctx: Any, path: list[str], flag: str) -> bool:
    """A flag shown with a metavar in --help (`-p PUBLISH`) takes a value."""
    for line in _help_text(ctx, path).splitlines():
        if re.search(rf"(?<![\w-]){re.escape(flag)} [A-Z_]", line):
            return True
    return False


def _positionals(ctx: Any, path: list[str], rest: list[str]) -> int:
    """How many positional arguments `rest` holds (values of flags are not)."""
    count, skip = 0, False
    for word in rest:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = "=" not in word and _takes_value(ctx, path, word)
        else:
            count += 1
    return count


def _positional_kind(cmd: str, path: list[str], index: int) -> str:
    if cmd in _CONTAINER_CMDS:
        return "container" if cmd != "exec" or index == 0 else ""
    if cmd in ("run", "create"):
        return "image" if index == 0 else ""
    if cmd in ("rmi",):
        return "image"
    kinds = _SUBCOMMAND_ARGS.get(tuple(path), [])  # type: ignore[arg-type]
    if tuple(path) in (("network", "rm"), ("network", "remove"), ("network", "inspect"),
                       ("network", "diagram"), ("image", "rm"), ("image", "remove"),
                       ("image", "inspect")):
        return kinds[0]
    return kinds[index] if index < len(kinds) else ""


def _typed_context(words: list[str]) -> Any:
    """The Context the typed command line will use (its own --root and friends)."""
    from minidock.context import Context
    opts: dict[str, str] = {}
    for flag, value in zip(words, words[1:]):
        if flag in _GLOBAL_VALUE:
            opts[flag[2:]] = value
    return Context.from_env(opts.get("root"), opts.get("exec-root"), opts.get("config"))


def cmd_complete(ctx: Any, argv: list[str]) -> int:
    """`minidock __complete WORD... CURRENT`: one candidate per line, prefix-filtered."""
    import sys
    words = argv or [""]
    try:
        found = candidates(_typed_context(words), words)
    except Exception:  # noqa: BLE001 - a broken completion must not print a traceback
        found = []
    cur = words[-1]
    sys.stdout.write("".join(c + "\n" for c in found if c.startswith(cur)))
    return 0


BASH = r"""# bash completion for minidock (minidock completion bash)
_minidock() {
    local IFS=$'\n'
    COMPREPLY=($(command minidock __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _minidock minidock
"""

ZSH = r"""#compdef minidock
# zsh completion for minidock (minidock completion zsh)
_minidock() {
    local -a cands
    cands=("${(@f)$(command minidock __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    compadd -a cands
}
if [[ "${funcstack[1]}" == "_minidock" ]]; then
    _minidock "$@"
else
    compdef _minidock minidock
fi
"""

FISH = r"""# fish completion for minidock (minidock completion fish)
function __minidock_complete
    set -l words (commandline -opc)
    set -e words[1]
    command minidock __complete $words (commandline -ct) 2>/dev/null
end
complete -c minidock -f -a '(__minidock_complete)'
"""


def cmd_completion(ctx: Any, argv: list[str]) -> int:
    from minidock.cli.parser import parser
    p = parser("completion", "Print a shell completion script (bash, zsh or fish). "
               "Enable it with `source <(minidock completion bash)` (e.g. in ~/.bashrc), "
               "`minidock completion zsh > \"${fpath[1]}/_minidock\"` or "
               "`minidock completion fish > ~/.config/fish/completions/minidock.fish`.")
    p.add_argument("shell", choices=["bash", "zsh", "fish"])
    ns = p.parse_args(argv)
    import sys
    sys.stdout.write({"bash": BASH, "zsh": ZSH, "fish": FISH}[ns.shell])
    return 0
