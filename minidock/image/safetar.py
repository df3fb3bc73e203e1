"""Unpack one layer tar into an empty directory without ever writing outside it.

A layer is untrusted input. Python's extraction filters are not relied upon: each
member is first *classified* by a pure function (`classify`: normalise the path,
refuse absolute paths, `..`, devices, unknown types; recognise whiteouts), then
*applied* through directory file descriptors: every parent component is opened with
O_NOFOLLOW|O_DIRECTORY relative to the previous one, so a symlink planted by an
earlier member (`a -> /etc`, then `a/passwd`) is refused, never followed, and every
final component is created relative to its parent fd with O_EXCL/O_NOFOLLOW.

Whiteouts become overlayfs-native: `.wh.NAME` -> char device 0/0 at NAME, and
`.wh..wh..opq` -> xattr `trusted.overlay.opaque=y` on its directory, so the runtime
mounts the layer dirs as overlay lowerdirs and starting a container copies nothing.

The tar stream is hashed while read: the result is the layer's diff ID.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
from minidock.hints import IO, NamedTuple

from minidock.errors import Internal, InvalidArgument

WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_ALLOWED_XATTRS = ("security.capability", "user.")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class Entry(NamedTuple):
    """What one tar member does: `action` on `parts` (path components in the layer)."""

    action: str            # dir file symlink hardlink fifo whiteout opaque skip
    parts: tuple[str, ...]
    link: tuple[str, ...] = ()  # hardlink target components


def split_path(name: str, what: str = "path", entry: str | None = None) -> tuple[str, ...]:
    """Normalise a member path to components; refuse absolute paths and `..`."""
    label = repr(entry if entry is not None else name)
    shown = f" {name!r}" if entry is not None else ""
    if "\x00" in name:
        raise InvalidArgument(f"invalid layer entry {label}: NUL byte in {what}")
    if name.startswith("/"):
        raise InvalidArgument(f"invalid layer entry {label}: absolute {what}{shown}")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise InvalidArgument(f"invalid layer entry {label}: {what}{shown} escapes the layer")
    return parts


def member_kind(member: tarfile.TarInfo) -> str:
    """The tar member's type as a word classify() understands."""
    if member.isreg():
        return "file"
    for word, test in (("dir", member.isdir), ("symlink", member.issym),
                       ("hardlink", member.islnk), ("fifo", member.isfifo),
                       ("char", member.ischr), ("block", member.isblk)):
        if test():
            return word
    return "other"


def classify(name: str, kind: str, linkname: str = "") -> Entry:
    """Decide what a member may do, before touching the disk (pure)."""
    parts = split_path(name)
    if not parts:
        if kind == "dir":
            return Entry("skip", ())
        raise InvalidArgument(f"invalid layer entry {name!r}: not a directory at the layer root")
    base = parts[-1]
    if base.startswith(WH_PREFIX):
        if base == WH_OPAQUE:
            return Entry("opaque", parts[:-1])
        if base.startswith(WH_PREFIX + WH_PREFIX):
            return Entry("skip", parts)  # aufs metadata (.wh..wh.plnk etc.)
        target = base[len(WH_PREFIX):]
        if target in ("", ".", ".."):
            raise InvalidArgument(f"invalid layer entry {name!r}: bad whiteout")
        return Entry("whiteout", parts[:-1] + (target,))
    if kind in ("char", "block"):
        raise InvalidArgument(f"invalid layer entry {name!r}: device nodes are not allowed")
    if kind == "hardlink":
        link = split_path(linkname, "link target", name)
        if not link:
            raise InvalidArgument(f"invalid layer entry {name!r}: hardlink to the layer root")
        return Entry("hardlink", parts, link)
    if kind in ("dir", "file", "symlink", "fifo"):
        return Entry(kind, parts)
    raise InvalidArgument(f"invalid layer entry {name!r}: unsupported tar entry type")


class _HashingReader:
    """A read-only stream that hashes what passes through (the diff ID)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """`raw` itself, or a decompressing reader when it starts with a known magic.

    `raw` must be seekable (a file or a member of a seekable archive).
    """
    head = raw.read(6)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        import gzip
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head[:3] == b"BZh":
        import bz2
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if head == b"\xfd7zXZ\x00":
        import lzma
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if head[:4] == b"\x28\xb5\x2f\xfd":
        raise InvalidArgument("unsupported layer compression: zstd")
    return raw


class LayerStats(NamedTuple):
    diff_id: str   # "sha256:<hex>" of the uncompressed tar stream
    size: int      # bytes of file content + symlink targets (Docker's layer size)


def unpack(raw: IO[bytes], dest: str, label: str = "layer") -> LayerStats:
    """Unpack the (possibly compressed) tar `raw` into the existing empty dir `dest`."""
    reader = _HashingReader(decompressed(raw))
    writer = _Writer(dest)
    try:
        try:
            tar = tarfile.open(fileobj=reader, mode="r|")  # type: ignore[arg-type]
            for member in tar:
                writer.apply(member, tar)
            reader.drain()
        except _read_errors() as err:
            if isinstance(err, OSError) and not _is_read_error(err):
                raise Internal(f"{label}: cannot unpack: {err}") from err
            raise InvalidArgument(f"{label} is not a valid tar archive: {_reason(err)}") from err
        writer.finish()
    finally:
        writer.close()
    return LayerStats("sha256:" + reader.sha.hexdigest(), writer.size)


def _read_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this stream is not a valid (compressed) tar"."""
    import sys
    import zlib
    errs: list[type[BaseException]] = [tarfile.TarError, EOFError, ValueError, OSError,
                                        OverflowError,
                                        zlib.error]
    lzma = sys.modules.get("lzma")
    if lzma is not None:
        errs.append(lzma.LZMAError)
    return tuple(errs)


def _is_read_error(err: OSError) -> bool:
    """Decompression errors surface as OSError subclasses without an errno."""
    return err.errno is None


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0]


class _Writer:
    """Applies classified members below `root` through O_NOFOLLOW dir fds."""

    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, _DIR_FLAGS)
        self.fds: dict[tuple[str, ...], int] = {(): self.root_fd}
        self.dir_times: list[tuple[tuple[str, ...], int]] = []
        self.size = 0

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    # -- walking ---------------------------------------------------------------------
    def dir_fd(self, parts: tuple[str, ...], name: str, create: bool = True) -> int:
        """fd of the directory `parts`, creating missing dirs (0755) when `create`."""
        fd = self.fds.get(parts)
        if fd is not None:
            return fd
        parent = self.dir_fd(parts[:-1], name, create)
        comp = parts[-1]
        try:
            fd = os.open(comp, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise InvalidArgument(f"invalid layer entry {name!r}: link target not found")
            os.mkdir(comp, 0o755, dir_fd=parent)
            fd = os.open(comp, _DIR_FLAGS, dir_fd=parent)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise InvalidArgument(
                    f"invalid layer entry {name!r}: path goes through a symlink or a file") from err
            raise
        self.fds[parts] = fd
        return fd

    def clear(self, parent: int, comp: str, keep_dir: bool) -> bool:
        """Remove what is at `comp` (no follow); True if a directory was kept."""
        try:
            st = os.stat(comp, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(comp, dir_fd=parent)
            self._forget_dirs()
        else:
            os.unlink(comp, dir_fd=parent)
        return False

    def _forget_dirs(self) -> None:
        for key, fd in list(self.fds.items()):
            if key:
                os.close(fd)
                del self.fds[key]

    # -- applying --------------------------------------------------------------------
    def apply(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        entry = classify(member.name, member_kind(member), member.linkname)
        if entry.action == "skip":
            return
        if entry.action == "opaque":
            os.setxattr(self.dir_fd(entry.parts, member.name), OPAQUE_XATTR, b"y")
            return
        parent = self.dir_fd(entry.parts[:-1], member.name)
        comp = entry.parts[-1]
        create = getattr(self, "_" + entry.action)
        try:  # each creator fails with EEXIST before any other effect
            create(parent, comp, member, tar, entry, False)
        except FileExistsError:  # a later member replaces an earlier one
            kept = self.clear(parent, comp, keep_dir=entry.action == "dir")
            create(parent, comp, member, tar, entry, kept)

    def _dir(self, parent: int, comp: str, member: tarfile.TarInfo, tar: tarfile.TarFile,
             entry: Entry, kept: bool) -> None:
        if not kept:
            os.mkdir(comp, 0o700, dir_fd=parent)
        fd = self.dir_fd(entry.parts, member.name)
        _own_and_mode(fd, member)
        _set_xattrs(fd, member)
        self.dir_times.append((entry.parts, int(member.mtime)))

    def _file(self, parent: int, comp: str, member: tarfile.TarInfo, tar: tarfile.TarFile,
              entry: Entry, kept: bool) -> None:
        fd = os.open(comp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=parent)
        try:
            src = tar.extractfile(member)
            if src is not None:
                while chunk := src.read(_CHUNK):
                    os.write(fd, chunk)
            _own_and_mode(fd, member)
            _set_xattrs(fd, member)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)
        self.size += member.size

    def _symlink(self, parent: int, comp: str, member: tarfile.TarInfo, tar: tarfile.TarFile,
                 entry: Entry, kept: bool) -> None:
        os.symlink(member.linkname, comp, dir_fd=parent)
        os.chown(comp, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        os.utime(comp, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
        self.size += len(os.fsencode(member.linkname))

    def _hardlink(self, parent: int, comp: str, member: tarfile.TarInfo, tar: tarfile.TarFile,
                  entry: Entry, kept: bool) -> None:
        src_parent = self.dir_fd(entry.link[:-1], member.name, create=False)
        try:
            os.link(entry.link[-1], comp, src_dir_fd=src_parent, dst_dir_fd=parent,
                    follow_symlinks=False)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            raise InvalidArgument(
                f"invalid layer entry {member.name!r}: bad hardlink target "
                f"{member.linkname!r}") from err

    def _fifo(self, parent: int, comp: str, member: tarfile.TarInfo, tar: tarfile.TarFile,
              entry: Entry, kept: bool) -> None:
        os.mkfifo(comp, 0o600, dir_fd=parent)
        fd = os.open(comp, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=parent)
        try:
            _own_and_mode(fd, member)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)

    def _whiteout(self, parent: int, comp: str, member: tarfile.TarInfo, tar: tarfile.TarFile,
                  entry: Entry, kept: bool) -> None:
        os.mknod(comp, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=parent)

    def finish(self) -> None:
        """Directory mtimes last: creating their children changed them."""
        for parts, mtime in reversed(self.dir_times):
            fd = self.fds.get(parts)
            if fd is None:
                fd = self.dir_fd(parts, "/".join(parts))
            os.utime(fd, (mtime, mtime))


def _own_and_mode(fd: int, member: tarfile.TarInfo) -> None:
    """Owner first: chown clears setuid/setgid bits that chmod then restores."""
    os.fchown(fd, member.uid, member.gid)
    os.fchmod(fd, member.mode & 0o7777)


def _set_xattrs(fd: int, member: tarfile.TarInfo) -> None:
    """Only file capabilities and user.* xattrs: trusted.* would steer overlayfs."""
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if name.startswith(_ALLOWED_XATTRS):
            os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))
