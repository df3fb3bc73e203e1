"""`minidock image ...`, `images`, `load`, `import`, `rmi`: parse, call, print.

The work happens in minidock.image; this module only maps flags to calls and
results to Docker's output lines.
"""

from __future__ import annotations

import json
import sys
from minidock.hints import TYPE_CHECKING

from minidock.cli.parser import parser
from minidock.errors import NotFound

if TYPE_CHECKING:
    from minidock.context import Context

_SUBCOMMANDS = {
    "build": "cmd_build", "load": "cmd_load", "import": "cmd_import",
    "ls": "cmd_images", "list": "cmd_images", "rm": "cmd_rmi", "remove": "cmd_rmi",
    "inspect": "cmd_image_inspect", "tag": "cmd_tag",
}


def cmd_image(ctx: Context, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in _SUBCOMMANDS:
        print("Usage:  minidock image COMMAND\n\nCommands:\n  "
              + "\n  ".join(sorted(_SUBCOMMANDS)),
              file=sys.stdout if not argv or argv[0] in ("-h", "--help") else sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 1
    return globals()[_SUBCOMMANDS[argv[0]]](ctx, argv[1:])


def cmd_build(ctx: Context, argv: list[str]) -> int:
    p = parser("image build", "Build an image from a recipe directory")
    p.add_argument("dir")
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("--output", "-o", help="write a docker-save archive instead of loading")
    args = p.parse_args(argv)
    from minidock.image.build import build
    built = build(args.dir, args.tag or None)
    try:
        image_id = built.image_id
        if args.output:
            from minidock.image.writer import SavedImage, write_docker_save
            write_docker_save(args.output, [SavedImage(
                built.config, built.tags, [(built.diff_id, built.layer_path)])])
        else:
            from minidock.image.archive import ImageSource
            from minidock.image.loader import load_sources
            load_sources(ctx, [ImageSource(built.config, built.tags,
                                           [lambda: open(built.layer_path, "rb")])])
    finally:
        built.cleanup()
    print(f"Successfully built {image_id[:12]}")
    for tag in built.tags:
        print(f"Successfully tagged {tag}")
    return 0


def cmd_load(ctx: Context, argv: list[str]) -> int:
    p = parser("load", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", default="-")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    from minidock.image.loader import load_file, spooled
    _progress_on_terminal(args.quiet)
    with spooled(ctx, args.input) as path:
        lines = load_file(ctx, path)
    if not args.quiet:
        print("\n".join(lines))
    return 0


def cmd_import(ctx: Context, argv: list[str]) -> int:
    p = parser("import", "Import the contents from a tarball to create an image")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    args = p.parse_args(argv)
    from minidock.image.loader import import_tarball, spooled
    _progress_on_terminal(False)
    with spooled(ctx, args.file) as path:
        image_id = import_tarball(ctx, lambda: open(path, "rb"), args.file,
                                  args.reference, args.change, args.message)
    print(f"sha256:{image_id}")
    return 0


IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG",
                 "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "Size": "SIZE", "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
                 "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}
IMAGE_FILTERS = ("dangling", "reference", "label")


def _progress_on_terminal(quiet: bool) -> None:
    """Layer progress bars on stdout when it is a terminal (as docker load/import)."""
    if not quiet and sys.stdout.isatty():
        from minidock.image import loader
        loader.PROGRESS = sys.stdout


def cmd_images(ctx: Context, argv: list[str]) -> int:
    p = parser("images", "List images")
    p.add_argument("repository", nargs="?")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output (dangling, reference, label)")
    p.add_argument("--format", default="", help="Go template, 'table TEMPLATE' or 'json'")
    args = p.parse_args(argv)
    from minidock.image.listing import image_rows
    from minidock.image.store import list_images
    images = list_images(ctx)
    if args.filter:
        from minidock.runtime.listformat import parse_filters
        images = filter_images(images, parse_filters(args.filter, IMAGE_FILTERS))
    header, rows = image_rows(images, args.repository, args.no_trunc)
    if args.quiet:
        for row in rows:
            print(row[2])
        return 0
    from minidock.image.humanize import table
    if not args.format:
        print(table(header, rows))
        return 0
    from minidock.runtime.listformat import render
    created = {(f"sha256:{i}" if args.no_trunc else i[:12]): d.get("Created") or ""
               for i, d in images}
    sys.stdout.write(render(args.format, [image_row(r, created[r[2]]) for r in rows],
                            IMAGE_HEADERS, lambda _r: table(header, rows) + "\n"))
    return 0


def image_row(row: list[str], created: str) -> dict[str, str]:
    """The fields of an `images --format` template (docker/cli's imageContext)."""
    from minidock.runtime.psformat import created_at
    repo, tag, ident, since, size = row
    return {"Containers": "N/A", "CreatedAt": created_at(created) if created else "",
            "CreatedSince": since, "Digest": "<none>", "ID": ident, "Repository": repo,
            "SharedSize": "N/A", "Size": size, "Tag": tag, "UniqueSize": "N/A",
            "VirtualSize": size}


def filter_images(images: list[tuple[str, dict[str, Any]]], filters: dict[str, list[str]]
                  ) -> list[tuple[str, dict[str, Any]]]:
    """Docker's image filters: dangling=true|false, reference=PATTERN (shell-style on
    `repo` or `repo:tag`), label=KEY[=VALUE]."""
    import fnmatch
    from minidock.runtime.listformat import bool_value, labels_match
    out = []
    for image_id, doc in images:
        tags = doc.get("RepoTags") or []
        if any(bool_value("dangling", v) != (not tags) for v in filters.get("dangling", [])):
            continue
        if "reference" in filters:
            keep = [t for t in tags if any(
                fnmatch.fnmatchcase(t, pat) or fnmatch.fnmatchcase(t.rpartition(":")[0], pat)
                for pat in filters["reference"])]
            if not keep:
                continue
            doc = dict(doc, RepoTags=keep)
        if "label" in filters and not labels_match(
                (doc.get("Config") or {}).get("Labels"), filters["label"]):
            continue
        out.append((image_id, doc))
    return out


def cmd_rmi(ctx: Context, argv: list[str]) -> int:
    p = parser("rmi", "Remove one or more images")
    p.add_argument("images", nargs="+")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    args = p.parse_args(argv)
    from minidock.image.store import remove
    from minidock.cli.parser import for_each

    def one(ref: str) -> None:
        lines = remove(ctx, ref, args.force)
        if lines:
            print("\n".join(lines))
    return for_each(args.images, one)


def cmd_image_inspect(ctx: Context, argv: list[str]) -> int:
    p = parser("image inspect", "Display detailed information on one or more images")
    p.add_argument("images", nargs="+")
    p.add_argument("-f", "--format")
    args = p.parse_args(argv)
    from minidock.image.store import inspect
    docs, status = [], 0
    for ref in args.images:
        try:
            docs.append(inspect(ctx, ref))
        except NotFound as err:
            print(f"Error: {err}", file=sys.stderr)
            status = 1
    if args.format:
        from minidock.runtime.template import render  # owned by the runtime
        for doc in docs:
            print(render(args.format, doc))
    else:
        print(json.dumps(docs, indent=4))
    return status


def cmd_tag(ctx: Context, argv: list[str]) -> int:
    p = parser("image tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source")
    p.add_argument("target")
    args = p.parse_args(argv)
    from minidock.image.store import tag
    tag(ctx, args.source, args.target)
    return 0
