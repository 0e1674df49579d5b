"""Where backups are kept: a folder or an object-store URL, read and written through pyarrow's filesystems.

The same filesystems the tiers use (store/files.py): local folders, `file://`, `gs://` (GCS) and `s3://` ship in
the pyarrow wheels. Any other scheme is refused with an error naming the ones that work, before anything is
written (a URL is never taken for a local folder named `s3:`).
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs as pafs

# The schemes pyarrow can write to; anything else is a refusal, not a guess.
WRITABLE_SCHEMES = ("file", "gs", "gcs", "s3")


class LocationError(ValueError):
    """A backup location that cannot be written: the message says why and which schemes work."""


@dataclass(frozen=True)
class Location:
    """A backup location: `url` as given, its filesystem and the root path inside it."""

    url: str
    filesystem: pafs.FileSystem
    root: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def shown(self, *parts: str) -> str:
        """The URL (or local path) of a file here, as people read it."""
        if "://" not in self.url:
            return os.path.join(self.url, *parts)
        return posixpath.join(self.url.rstrip("/"), *parts)

    def names(self, folder: str = "") -> list[str]:
        """The files directly in `folder` (none when it does not exist), sorted."""
        selector = pafs.FileSelector(self.path(folder) if folder else self.root, allow_not_found=True)
        return sorted(
            posixpath.basename(info.path)
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
        )

    def exists(self, *parts: str) -> bool:
        return self.filesystem.get_file_info(self.path(*parts)).type == pafs.FileType.File

    def put(self, local: Path, *parts: str) -> str:
        """Copy a local file here (the folder made if needed); returns where it went."""
        target = self.path(*parts)
        self.filesystem.create_dir(posixpath.dirname(target), recursive=True)
        with open(local, "rb") as source, self.filesystem.open_output_stream(target) as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        if self.is_local:
            os.chmod(target, 0o600)  # a backup holds password and key hashes and the audit log
        return self.shown(*parts)

    def get(self, local: Path, *parts: str) -> Path:
        """Copy a file from here to `local`."""
        local.parent.mkdir(parents=True, exist_ok=True)
        with self.filesystem.open_input_stream(self.path(*parts)) as source, open(local, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        return local

    def read_text(self, *parts: str) -> str:
        with self.filesystem.open_input_stream(self.path(*parts)) as source:
            return source.read().decode("utf-8")

    def delete(self, *parts: str) -> None:
        self.filesystem.delete_file(self.path(*parts))


def location(url: str | os.PathLike[str]) -> Location:
    """The location a folder or URL names; LocationError for a scheme no filesystem here can write."""
    text = os.fspath(url)
    if "://" not in text:
        root = os.path.abspath(text)
        os.makedirs(root, mode=0o700, exist_ok=True)
        return Location(text, pafs.LocalFileSystem(), root)
    scheme = text.split("://", 1)[0].lower()
    if scheme not in WRITABLE_SCHEMES:
        raise LocationError(
            f"cannot write backups to {text}: no filesystem for {scheme}:// here; "
            f"use a folder or one of {', '.join(s + '://' for s in WRITABLE_SCHEMES)}"
        )
    try:
        filesystem, root = pafs.FileSystem.from_uri(text)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds; the line names the cause
        raise LocationError(f"cannot write backups to {text}: {str(exc).splitlines()[0]}") from exc
    filesystem.create_dir(root, recursive=True)
    return Location(text, filesystem, root.rstrip("/"))
