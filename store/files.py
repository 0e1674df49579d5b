"""Files of the tiers, local or in an object store (`gs://`, `s3://`), without Beam.

Local paths use the operating system directly; URLs go through pyarrow's filesystems (GCS and S3 ship in
the pyarrow wheels), so the console, the API and the operations commands read the same tiers the job writes
without importing Beam.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
from typing import IO

from pyarrow import fs as pafs

_WILDCARDS = "*?["


def is_url(path: str) -> bool:
    return "://" in path


def join(root: str, *parts: str) -> str:
    if is_url(root):
        return posixpath.join(root.rstrip("/"), *parts)
    return os.path.join(root, *parts)


def _remote(url: str) -> tuple[pafs.FileSystem, str, str]:
    """The filesystem, the path inside it, and the `scheme://` prefix that turns such a path back into a URL."""
    filesystem, path = pafs.FileSystem.from_uri(url)
    return filesystem, path, url.split("://", 1)[0] + "://"


def match(pattern: str) -> list[str]:
    """Every file matching a glob pattern, sorted; none (not an error) where nothing or no folder is there."""
    if not is_url(pattern):
        return sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
    filesystem, path, prefix = _remote(pattern)
    fixed = path.split("/")
    depth = next((i for i, part in enumerate(fixed) if any(c in part for c in _WILDCARDS)), len(fixed))
    base = "/".join(fixed[:depth]) if depth < len(fixed) else posixpath.dirname(path)
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    found = [
        info.path
        for info in filesystem.get_file_info(selector)
        if info.type == pafs.FileType.File and fnmatch.fnmatchcase(info.path, path)
    ]
    return sorted(prefix + found_path for found_path in found)


def open_input(path: str) -> IO[bytes]:
    """A seekable binary reader (Parquet and Avro readers need to seek)."""
    if not is_url(path):
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    filesystem, inner, _ = _remote(path)
    return filesystem.open_input_file(inner)


def create(path: str) -> IO[bytes]:
    """A binary writer; missing parent folders are made."""
    if not is_url(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "wb")  # noqa: SIM115 - the caller closes it
    filesystem, inner, _ = _remote(path)
    return filesystem.open_output_stream(inner)


def exists(path: str) -> bool:
    if not is_url(path):
        return os.path.exists(path)
    filesystem, inner, _ = _remote(path)
    return filesystem.get_file_info(inner).type != pafs.FileType.NotFound


def delete(path: str) -> None:
    if not is_url(path):
        os.remove(path)
        return
    filesystem, inner, _ = _remote(path)
    filesystem.delete_file(inner)


def replace(source: str, target: str) -> None:
    """Moves `source` over `target` (atomically on a local disk)."""
    if not is_url(source):
        os.replace(source, target)
        return
    filesystem, inner_source, _ = _remote(source)
    _, inner_target, _ = _remote(target)
    filesystem.move(inner_source, inner_target)
