"""The configuration in force: a document changed in the CLI (or the console, the same `ops.sysconfig`) is what the
running streaming job, `health`, the notifier and on-call act on within the refresh interval, recorded by version on
what they decide, rolled back to any earlier version, and committed to a real Git history (dulwich) that a
configuration can be restored from."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dulwich.repo import Repo

from access import accounts
from access.roles import PermissionDenied
from cli.main import main
from config.settings import load_config
from core.event import utcnow
from ops import confighistory, sysconfig
from store.configs import in_force
from store.hot import HotStore
from store.schema import audit_log, events, metrics
from tests.test_streaming import (  # noqa: F401 - the emulator fixture and the running job's harness
    PROJECT,
    RunningStream,
    emulator,
    stock_local_runner_afterwards,
    streaming_config,
    wait_for,
)

PASSWORD = "a-long-enough-password"


def _people(store: HotStore) -> None:
    accounts.create_user_as_system(store, "test", "ada", "admin", PASSWORD)
    accounts.create_user_as_system(store, "test", "otto", "operator", PASSWORD)


def _sources_at(config, rate: float, tmp_path: Path) -> Path:
    data = config.sources.model_dump(mode="json")
    data["sources"]["rubin"]["expected_rate_per_min"] = rate
    path = tmp_path / f"sources-{rate:g}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_a_cli_change_moves_the_running_job_and_health_and_rolls_back(emulator, tmp_path, capsys, monkeypatch):  # noqa: F811
    from devtools.pubsub import OutgoingPacket, PacketPublisher, ensure_topics
    from devtools.simulator import generate_packets
    from store.layout import Outputs

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
    config = streaming_config(tmp_path)  # the job re-reads every 0.5 s
    outputs = Outputs.under(str(tmp_path / "out"), None)
    store = HotStore(outputs.db_url)
    store.ensure_schema()
    _people(store)
    ensure_topics(config.streaming.pubsub, PROJECT)
    publisher = PacketPublisher(config.streaming.pubsub, PROJECT, outputs.db_url)
    where = ["--db-url", store.url, "--config", str(tmp_path / "config")]

    def publish(seed: int) -> list:
        packets = list(generate_packets(30, seed=seed, mix={"rubin": 1.0}, start=utcnow(), span_s=1))
        publisher.publish(OutgoingPacket(p.source, p.payload, p.event_time) for p in packets)
        return packets

    def lineage() -> dict[str, str]:
        with store.engine.connect() as conn:
            return {
                row.event_id: json.loads(row.payload)["lineage"].get("config_version")
                for row in conn.execute(sa.select(events.c.event_id, events.c.payload))
            }

    def expected_rubin() -> set[float]:
        with store.engine.connect() as conn:
            return set(
                conn.execute(sa.select(metrics.c.expected_rate_per_min).where(metrics.c.source == "rubin")).scalars()
            )

    with RunningStream(config, outputs):
        first = publish(1)
        wait_for(lambda: len(lineage()) >= len(first), what="the first packets")
        assert set(lineage().values()) == {"0"}  # the files alone were in force
        wait_for(lambda: 7000.0 in expected_rubin(), what="a metrics window judged against 7,000/min")

        # The change, made on the command line while the job runs: Rubin expects 50 a minute.
        assert (
            main(
                [
                    "config",
                    "set",
                    "sources",
                    str(_sources_at(config, 50, tmp_path)),
                    "--as",
                    "otto",
                    "--reason",
                    "x",
                    *where,
                ]
            )
            == 2
        )  # an Operator may not configure the system
        assert "needs the Admin role" in capsys.readouterr().err
        assert (
            main(
                [
                    "config",
                    "set",
                    "sources",
                    str(_sources_at(config, 50, tmp_path)),
                    "--as",
                    "ada",
                    "--reason",
                    "Rubin is quiet tonight",
                    *where,
                ]
            )
            == 0
        )
        assert "sources version 1 in force" in capsys.readouterr().out
        version = in_force(config, store).config_version
        assert version == 1
        time.sleep(1.5)  # past the job's refresh interval; no restart
        second = publish(2)
        wait_for(lambda: len(lineage()) >= len(first) + len(second), what="the second packets")
        decided = lineage()
        assert {decided[event_id] for event_id in decided if decided[event_id] != "0"} == {str(version)}
        assert sum(1 for value in decided.values() if value == str(version)) >= len(second)
        wait_for(lambda: 50.0 in expected_rubin(), what="a metrics window judged against 50/min")
    publisher.close()

    # `health` judges against the configuration in force and says which version it used.
    code = main(["health", "--json", *where])
    report = json.loads(capsys.readouterr().out)
    assert report["config_version"] == 1 and code == (int(report["severity"][-1]) if report["severity"] else 0)
    rate = next(panel for panel in report["panels"] if panel["name"] == "Event rate")
    assert "rubin 50" in rate["normal"]

    # Rolled back to the files' version (stored again as version 1's predecessor): health follows at once.
    assert (
        main(
            [
                "config",
                "set",
                "sources",
                str(_sources_at(config, 9000, tmp_path)),
                "--as",
                "ada",
                "--reason",
                "a busy night",
                *where,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["config", "rollback", "sources", "1", "--as", "ada", "--reason", "back to 50", *where]) == 0
    assert "now in force as version 3" in capsys.readouterr().out
    main(["health", "--json", *where])
    report = json.loads(capsys.readouterr().out)
    assert report["config_version"] == 3
    assert "rubin 50" in next(p for p in report["panels"] if p["name"] == "Event rate")["normal"]
    with store.engine.connect() as conn:
        audited = [tuple(row) for row in conn.execute(sa.select(audit_log.c.actor, audit_log.c.action))]
    assert ("ada", "config.sources.rollback") in audited and audited.count(("ada", "config.sources")) == 2
    store.close()


def test_changes_are_committed_to_git_and_a_commit_restores_its_configuration(store, tmp_path, capsys, monkeypatch):
    """A real repository (dulwich, read back with dulwich and, here, the git binary): every change one commit
    with its author and reason; a change of the files themselves too; a restore by commit, role-checked, audited;
    each commit pushed to the configured remote."""
    import shutil
    import subprocess

    folder = tmp_path / "config"
    folder.mkdir()
    history = tmp_path / "history.git"
    remote = tmp_path / "remote.git"
    Repo.init_bare(str(remote), mkdir=True)
    monkeypatch.setenv("NIGHTWATCH_CONFIG_HISTORY", str(history))
    monkeypatch.setenv("NIGHTWATCH_CONFIG_HISTORY_REMOTE", str(remote))
    _people(store)
    base = load_config(folder)
    where = ["--db-url", store.url, "--config", str(folder)]

    assert main(["config", "history", *where]) == 0  # the first look commits the files in force
    first = confighistory.history(store)
    assert [(c.author, c.message) for c in first] == [("files", "the configuration files changed")]

    notifications = base.notifications.model_dump(mode="json", by_alias=True)
    notifications["budget_per_night"] = 80
    sysconfig.save(store, "ada", "notifications", notifications, "more MEDIUM before the digest", base)
    oncall = yaml.safe_load(yaml.safe_dump(base.oncall.model_dump(mode="json", by_alias=True)))
    oncall["roles"]["primary"]["response_min"] = 10
    for step in oncall["escalation"]["steps"]:
        step.pop("after_min")  # the ladder comes from response_min
    sysconfig.save(store, "ada", "oncall", oncall, "primary responds within 10 min", base)
    assert in_force(base, store).oncall.escalation.steps[1].after_min == 10
    # A change of the files themselves is found and committed too.
    (folder / "contacts.yaml").write_text(
        (Path("config/contacts.yaml")).read_text().replace("support@cloud.com", "help@cloud.example.org")
    )
    assert main(["config", "history", *where]) == 0
    out = capsys.readouterr().out
    changes = confighistory.history(store)
    assert [(c.author, c.message, c.files) for c in changes[:3]] == [
        ("files", "the configuration files changed", ("contacts.yaml",)),
        ("ada", "oncall version 2: primary responds within 10 min", ("IN_FORCE", "oncall.yaml")),
        ("ada", "notifications version 1: more MEDIUM before the digest", ("IN_FORCE", "notifications.yaml")),
    ]
    assert changes[1].commit[:12] in out and "primary responds within 10 min" in out
    if shutil.which("git"):  # the repository is a real one: git itself reads it
        log = subprocess.run(
            ["git", "--git-dir", str(history), "log", "--format=%an|%s", "main"], capture_output=True, text=True
        )
        assert log.stdout.splitlines()[1] == "ada|oncall version 2: primary responds within 10 min"
    pushed = Repo(str(remote))
    assert pushed.refs[b"refs/heads/main"].decode() == changes[0].commit  # each commit pushed to the remote
    pushed.close()

    # Restore the configuration of the first commit: both stored documents go back, role-checked and audited.
    with pytest.raises(PermissionDenied, match="Admin"):
        sysconfig.restore(store, "otto", first[0].commit, "undo", base)
    assert main(["config", "restore", first[0].commit[:10], "--as", "ada", "--reason", "undo tonight", *where]) == 0
    assert "notifications version 3" in capsys.readouterr().out
    restored = in_force(load_config(folder), store)
    assert restored.notifications.budget_per_night == base.notifications.budget_per_night
    assert restored.oncall.escalation.steps[1].after_min == 15
    latest = confighistory.history(store)[0]
    assert latest.author == "ada" and latest.message.startswith(f"restore {first[0].commit[:12]}: undo tonight")
    with store.engine.connect() as conn:
        actions = [row.action for row in conn.execute(sa.select(audit_log.c.action))]
    assert "config.restore" in actions
    with pytest.raises(ValueError, match="no commit"):
        confighistory.files_at(store, "deadbeef")


def test_health_follows_the_runbooks_and_contacts_of_its_config_folder(store, tmp_path, capsys):
    """`nightwatch health --config DIR` once read the shipped runbooks whatever DIR held (loaded at import)."""
    folder = tmp_path / "config"
    folder.mkdir()
    runbooks = yaml.safe_load(Path("config/runbooks.yaml").read_text())
    runbooks["runbooks"]["sev1"]["title"] = "SEV-1: Site procedure"
    runbooks["runbooks"]["sev1"]["steps"] = ["Call the site's night assistant", "Then follow the guide"]
    (folder / "runbooks.yaml").write_text(yaml.safe_dump(runbooks))
    (folder / "contacts.yaml").write_text(Path("config/contacts.yaml").read_text().replace("#ops-events", "#site-ops"))
    code = main(["health", "--db-url", store.url, "--config", str(folder)])  # an empty store: SEV-1
    out = capsys.readouterr().out
    assert code == 1
    assert "follow: SEV-1: Site procedure" in out and "1. Call the site's night assistant" in out
    assert "Operations: #site-ops, escalation ops-lead@facility.org" in out  # the runbook's contacts
    assert "Cloud Provider: support@cloud.com (24/7)" in out
