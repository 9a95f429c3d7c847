"""Which bags a fleet run evaluates: bag directories, directories of bags, globs and manifest files.

A manifest is a text file with one bag per line, ``PATH [key=value ...]``: the path (relative to the manifest's
directory unless absolute) and optional tags (``vehicle=``, ``date=``, ``route=`` or any other key) that are carried
into the per-bag rows, so a nightly report can be sliced by vehicle or route. ``#`` starts a comment; blank lines
are ignored. Every bad entry is refused with one line naming the file, the line and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_TAG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_GLOB_CHARS = re.compile(r"[*?\[]")


class InputError(ValueError):
    """An input that names no bag (one line, naming the entry)."""


@dataclass(frozen=True)
class BagEntry:
    """One bag to evaluate and its manifest tags (empty for bags given on the command line)."""

    path: Path
    tags: dict[str, str] = field(default_factory=dict)


def is_bag(path: Path) -> bool:
    """A rosbag2 bag is a directory holding metadata.yaml."""
    return (path / "metadata.yaml").is_file()


def bags_under(directory: Path) -> list[Path]:
    """Every bag below a directory (at any depth; a bag's own subdirectories are not searched), sorted."""
    bags = {meta.parent for meta in directory.rglob("metadata.yaml")}
    return sorted(b for b in bags if not any(parent in bags for parent in b.parents))


def parse_manifest(path: Path) -> list[BagEntry]:
    """The bags a manifest lists, in its order (see the module docstring for the format)."""
    entries: list[BagEntry] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        first, *rest = line.split()
        tags: dict[str, str] = {}
        for item in rest:
            key, sep, value = item.partition("=")
            if not sep or not value or not _TAG_KEY.match(key):
                raise InputError(f"{where}: tag {item!r} is not key=value")
            if key in tags:
                raise InputError(f"{where}: tag {key!r} given twice")
            tags[key] = value
        bag = Path(first).expanduser()
        if not bag.is_absolute():
            bag = path.parent / bag
        if not is_bag(bag):
            raise InputError(f"{where}: {first!r} is not a rosbag2 bag (no {bag / 'metadata.yaml'})")
        entries.append(BagEntry(bag, tags))
    if not entries:
        raise InputError(f"{path}: the manifest lists no bag")
    return entries


def _expand(arg: str) -> list[BagEntry]:
    path = Path(arg).expanduser()
    if path.is_dir():
        if is_bag(path):
            return [BagEntry(path)]
        found = bags_under(path)
        if not found:
            raise InputError(f"{arg}: no rosbag2 bag (directory with metadata.yaml) under this directory")
        return [BagEntry(b) for b in found]
    if path.is_file():
        return parse_manifest(path)
    if _GLOB_CHARS.search(arg):
        root = Path(path.anchor) if path.is_absolute() else Path()
        matched = sorted(root.glob(str(path.relative_to(root))))
        bags = [m for m in matched if is_bag(m)]
        if not bags:
            raise InputError(f"{arg}: the pattern matches no rosbag2 bag ({len(matched)} paths matched)")
        return [BagEntry(b) for b in bags]
    raise InputError(f"{arg}: no such bag, directory of bags, manifest file or glob")


def resolve_inputs(args: list[str]) -> list[BagEntry]:
    """All bags the command-line inputs name, in order; a bag named twice is refused (its numbers would count twice)."""
    entries: list[BagEntry] = []
    seen: dict[Path, str] = {}
    for arg in args:
        for entry in _expand(arg):
            key = entry.path.resolve()
            if key in seen:
                raise InputError(f"{arg}: bag {entry.path} is already listed by {seen[key]}")
            seen[key] = arg
            entries.append(entry)
    return entries
