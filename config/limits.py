"""Limits that keep one hostile input or one attacker from taking the system down (limits.yaml).

`input`: what a packet may cost before it is refused (one dead letter each): its size as read, the bytes
its Avro blocks may decompress to, how many records one container may hold. `login`: throttling and lockout
of console logins. `api`: throttling of unknown API keys per client address, live feeds open per key.
`files`: the permission bits of what the commands write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import Field, field_validator

from config.base import Strict, config_folder, read_file
from config.environment import environment

MIB = 1024 * 1024


class InputLimits(Strict):
    max_packet_bytes: int = Field(16 * MIB, gt=0)  # a packet (file, message) larger than this is refused
    max_decompressed_bytes: int = Field(64 * MIB, gt=0)  # what one container's blocks may decompress to
    max_records_per_container: int = Field(10_000, gt=0)
    # A refused packet's dead letter keeps its first bytes only (the limit is the point).
    dead_letter_prefix_bytes: int = Field(64 * 1024, ge=0)


class LoginLimits(Strict):
    max_failures: int = Field(5, gt=0)  # failures in a row (per account, per client) before a lockout
    lockout_s: float = Field(30.0, gt=0)  # the first lockout; doubles with each further failure
    max_lockout_s: float = Field(3600.0, gt=0)
    max_name_chars: int = Field(128, gt=0)
    max_password_chars: int = Field(1024, gt=0)


class ApiLimits(Strict):
    unknown_key_per_min: float = Field(30.0, gt=0)  # requests with unknown keys, per client address
    unknown_key_burst: int = Field(10, gt=0)
    max_feeds_per_key: int = Field(4, gt=0)  # live feeds (/alerts/stream) one key may hold open


class FileLimits(Strict):
    mode: str = "0600"  # files the commands write; folders get the matching x bits (0700)

    @field_validator("mode")
    @classmethod
    def _octal(cls, value: str) -> str:
        number = int(value, 8)
        if not 0 <= number <= 0o777:
            raise ValueError(f"file mode {value!r} is not an octal permission such as 0600")
        return value

    @property
    def umask(self) -> int:
        """The process umask that gives files this mode (and folders the same plus x where read is given)."""
        mode = int(self.mode, 8)
        return 0o777 & ~(mode | _x_bits(mode))


def _x_bits(mode: int) -> int:
    """x for every class that may read: 0600 -> 0100, 0640 -> 0110."""
    return ((mode & 0o400) >> 2) | ((mode & 0o040) >> 2) | ((mode & 0o004) >> 2)


class LimitsConfig(Strict):
    version: str = "1"
    input: InputLimits = InputLimits()
    login: LoginLimits = LoginLimits()
    api: ApiLimits = ApiLimits()
    files: FileLimits = FileLimits()


@contextmanager
def file_mode(files: FileLimits | None = None) -> Iterator[int]:
    """Within the block, files are created with `files.mode` (default 0600) and folders with its x bits (0700):
    the process umask is set (inherited by worker processes and threads alike), then restored."""
    files = files or FileLimits()
    previous = os.umask(files.umask)
    try:
        yield int(files.mode, 8)
    finally:
        os.umask(previous)


def tighten(path: str | Path, files: FileLimits | None = None) -> None:
    """Give an existing file the configured mode (a hot store created before, with a looser umask)."""
    mode = int((files or FileLimits()).mode, 8)
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        try:
            if os.stat(name).st_uid == os.getuid():
                os.chmod(name, mode)
        except OSError:
            pass


def load_limits(config_dir: str | Path | None = None) -> LimitsConfig:
    """limits.yaml alone, for the processes that need no other configuration (the API, the console)."""
    return read_file(config_folder(config_dir, environment().config_dir), "limits.yaml", LimitsConfig, empty={})[0]
