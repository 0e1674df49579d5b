"""Local streaming jobs as processes (`nightwatch stream`), one per role (staging, production), with their
command lines recorded so a later deployment can drain them or start them again (a rollback)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from config.base import CONFIG_DIR
from core.event import utcnow

READY_LINE = "streaming from"  # what `nightwatch stream` prints once its job is being built


@dataclass
class LocalJob:
    role: str
    pid: int
    argv: list[str]
    config_dir: str
    output: str
    log: str
    started_at: str


def stream_argv(config_dir: str, output: str, project: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "stream",
        "--config",
        config_dir,
        "--output",
        output,
        "--project",
        project,
        "--emulator",
        "no",
        "--duration",
        "0",  # until drained
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished child of this process is a zombie until reaped
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def config_variant(source: str | None, target: Path, subscription_suffix: str | None = None) -> Path:
    """A configuration folder: the shipped files, `source`'s over them, and optionally another subscription."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for folder in [CONFIG_DIR, Path(source)] if source else [CONFIG_DIR]:
        for path in folder.glob("*.yaml"):
            shutil.copy(path, target / path.name)
    if subscription_suffix is not None:
        streaming = yaml.safe_load((target / "streaming.yaml").read_text())
        streaming["pubsub"]["subscription_suffix"] = subscription_suffix
        (target / "streaming.yaml").write_text(yaml.safe_dump(streaming, sort_keys=False))
    return target


class LocalJobs:
    """The jobs of one deployment folder: `<folder>/<role>.json` names the job running in each role."""

    def __init__(self, folder: Path, repo: Path, env: dict[str, str] | None = None):
        self.folder, self.repo = folder, repo
        self.env = {**os.environ, **(env or {})}
        folder.mkdir(parents=True, exist_ok=True)

    def _state(self, role: str) -> Path:
        return self.folder / f"{role}.json"

    def running(self, role: str) -> LocalJob | None:
        path = self._state(role)
        if not path.is_file():
            return None
        job = LocalJob(**json.loads(path.read_text()))
        return job if alive(job.pid) else None

    def record(self, job: LocalJob | None, role: str) -> None:
        if job is None:
            self._state(role).unlink(missing_ok=True)
        else:
            self._state(role).write_text(json.dumps(asdict(job), indent=2))

    def start(self, role: str, config_dir: str, output: str, project: str, timeout_s: float) -> LocalJob:
        """Start a job and wait until it is up; RuntimeError with its log's last lines if it is not."""
        log = self.folder / f"{role}-{utcnow():%Y%m%dT%H%M%S%f}.log"
        argv = stream_argv(config_dir, output, project)
        with log.open("wb") as handle:
            process = subprocess.Popen(  # noqa: S603 - our own command line
                argv, cwd=self.repo, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        job = LocalJob(role, process.pid, argv, config_dir, output, str(log), utcnow().isoformat())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the {role} job exited ({process.returncode}): {tail(log)}")
            if READY_LINE in log.read_text(errors="replace"):
                time.sleep(3.0)  # the graph is being built; the subscriptions hold what arrives meanwhile
                if process.poll() is None:
                    return job
        process.send_signal(signal.SIGINT)
        raise RuntimeError(f"the {role} job did not start within {timeout_s:.0f} s: {tail(log)}")

    def stop(self, job: LocalJob, timeout_s: float) -> bool:
        """Drain a job (SIGINT: it finishes what it holds and stops); True if it stopped in time."""
        if not alive(job.pid):
            return True
        os.kill(job.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not alive(job.pid):
                return True
            time.sleep(0.5)
        os.kill(job.pid, signal.SIGKILL)  # a drain that hangs must not keep the old version reading
        return False


def tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.is_file() else []
    return " | ".join(text[-lines:]) or "(no output)"
