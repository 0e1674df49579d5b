"""Dead-letter triage and re-drive (issue 16 item 9): list, show and stats on the command line, the API and the
console; after a fix (here: a decompression limit set too low, then relaxed), `dead-letters redrive` pushes the kept
bytes back through the batch pipeline, stores what now passes once, reports re-driven / now stored / still dead,
and marks the letters resolved; a second re-drive adds nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from access import accounts, apikeys, audit
from api.app import create_app
from api.auth import ApiSettings
from cli.main import main
from pipeline.batch import run
from store import deadletters
from store.hot import HotStore
from store.schema import alerts, dead_letters, events
from store.tiers import archive_entries
from tests.conftest import DATA, act_as_service

REPO = Path(__file__).resolve().parents[1]
ZTF = sorted((DATA / "ztf").glob("*.avro"))[:4]  # Avro containers, deflated; each kept whole when refused


def tight_config(folder: Path) -> Path:
    """The shipped limits with Avro data allowed to decompress to 2,000 bytes only: every ZTF sample (a packet
    with cutouts) is refused at decode, its bytes kept whole."""
    folder.mkdir()
    limits = yaml.safe_load((REPO / "config" / "limits.yaml").read_text())
    limits["input"]["max_decompressed_bytes"] = 2000
    (folder / "limits.yaml").write_text(yaml.safe_dump(limits))
    return folder


def open_letters(store: HotStore) -> int:
    with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(dead_letters).where(dead_letters.c.resolved_at.is_(None))
        return conn.execute(query).scalar()


@pytest.fixture
def refused(tmp_path):
    """A night whose packets were all refused by a too-low limit, plus one truly broken packet."""
    packets = tmp_path / "packets"
    packets.mkdir()
    for path in ZTF:
        shutil.copy(path, packets / path.name)
    (packets / "broken.xml").write_bytes(b"<VOEvent><unclosed")
    out = tmp_path / "out"
    summary = run([f"--input={packets}/*", f"--output={out}", f"--config_dir={tight_config(tmp_path / 'tight')}"])
    assert summary.dead_letters == {"decode": len(ZTF) + 1} and summary.ok
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    yield out, store, tmp_path / "tight"
    store.close()


def test_triage_on_the_command_line(refused, capsys):
    out, store, _tight = refused
    where = ["--output", str(out)]
    assert main(["dead-letters", "stats", "--by", "source,stage,reason", *where]) == 0
    text = capsys.readouterr().out
    limit = next(line for line in text.splitlines() if "decompresses to more than the limit of N bytes" in line)
    assert limit.startswith("ztf     decode") and limit.split()[-3] == str(len(ZTF))
    assert "invalid XML" in text and f"{len(ZTF) + 1} letters in 2 groups" in text
    assert main(["dead-letters", "list", "--reason", "DECOMPRESSES TO MORE", *where]) == 0
    listed = capsys.readouterr().out
    assert f"{len(ZTF)} letters" in listed and "invalid XML" not in listed
    letter_id = listed.split()[0]
    assert main(["dead-letters", "show", letter_id, *where]) == 0
    shown = capsys.readouterr().out
    assert "stage          decode" in shown and "more than the limit of 2000 bytes" in shown
    assert main(["dead-letters", "list", "--night", "not-a-night", *where]) == 2
    assert "not a date" in capsys.readouterr().err


def test_redrive_after_relaxing_the_limit_stores_once_and_reconciles(refused, tmp_path, capsys, monkeypatch):
    out, store, tight = refused
    # What the same packets give when nothing refuses them: the figures the re-drive must reach.
    clean = tmp_path / "clean"
    clean.mkdir()
    for path in ZTF:
        shutil.copy(path, clean / path.name)
    reference = run([f"--input={clean}/*", f"--output={tmp_path / 'reference'}"])
    expected_events = reference.count("events.new")
    assert store.count(events) == 0 and expected_events > 0
    redrive = ["dead-letters", "redrive", "--stage", "decode", "--output", str(out)]

    monkeypatch.delenv("NIGHTWATCH_API_KEY", raising=False)
    assert main(redrive) == 2  # anonymous: refused, nothing pushed
    assert "give an identity" in capsys.readouterr().err
    act_as_service(monkeypatch, f"sqlite:///{out}/nightwatch.db", role="observer", name="test-observer")
    assert main(redrive) == 2  # an Observer may not
    assert "needs the Operator role" in capsys.readouterr().err
    act_as_service(monkeypatch, f"sqlite:///{out}/nightwatch.db", role="operator")

    # A dry run with the limit still too low: the decoder still refuses them all.
    assert main([*redrive, "--dry-run", "--config", str(tight)]) == 0
    said = capsys.readouterr().out
    assert "still dead                       " + str(len(ZTF) + 1) in said and store.count(events) == 0
    # With the limit relaxed (the shipped configuration), the dry run says what would pass.
    assert main([*redrive, "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"would now be stored              {len(ZTF)}" in said and "still dead                       1" in said

    assert main(redrive) == 0
    said = capsys.readouterr().out
    assert f"re-driven                        {len(ZTF) + 1}" in said
    assert f"now stored                       {len(ZTF)}" in said
    assert "still dead                       1" in said and "invalid XML" in said
    assert store.count(events) == expected_events
    assert store.count(alerts) == reference.count("alerts.new")
    assert open_letters(store) == 1  # the broken packet only; its re-drive attempt is resolved at once
    entry = audit.audit_entries(store, action="dead_letters.redrive")[0]
    assert entry.actor == "test-service" and entry.after["now_stored"] == len(ZTF)

    # Again: the resolved letters are not taken; the broken one is tried and stays dead; nothing doubles.
    assert main(redrive) == 0
    said = capsys.readouterr().out
    assert "letters selected                 1" in said and "now stored                       0" in said
    assert (store.count(events), store.count(alerts)) == (expected_events, reference.count("alerts.new"))
    assert open_letters(store) == 1
    resolved = deadletters.list_letters(store, deadletters.LetterFilter(status="resolved"), limit=1000)
    assert len(resolved) == len(ZTF)


def test_the_api_lists_counts_and_shows_dead_letters(refused):
    out, store, _tight = refused
    accounts.create_user_as_system(store, "test", "olga", "observer", "a-long-enough-password")
    token, _ = apikeys.create_key(store, "test", "olga", "observer")
    client = TestClient(create_app(ApiSettings(store_url=store.url)))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/dead-letters").status_code == 401
    first = client.get("/v1/dead-letters?limit=3", headers=headers).json()
    assert len(first["data"]) == 3 and first["next"]
    seen = [row["dead_letter_id"] for row in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/v1/dead-letters?limit=3&cursor={cursor}", headers=headers).json()
        seen += [row["dead_letter_id"] for row in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == len(ZTF) + 1
    only = client.get("/v1/dead-letters?reason=invalid%20XML", headers=headers).json()["data"]
    assert [row["stage"] for row in only] == ["decode"] and only[0]["status"] == "open"
    stats = client.get("/v1/dead-letters/stats?by=source,stage", headers=headers).json()["data"]
    assert stats[0]["source"] == "ztf" and stats[0]["count"] == len(ZTF) and stats[1]["source"] == "gcn"
    detail = client.get(f"/v1/dead-letters/{only[0]['dead_letter_id']}", headers=headers).json()
    assert detail["payload_base64"] == "PFZPRXZlbnQ+PHVuY2xvc2Vk"  # b"<VOEvent><unclosed"
    assert client.get("/v1/dead-letters/dl:nope", headers=headers).status_code == 404
    assert client.get("/v1/dead-letters?night=yesterday", headers=headers).status_code == 422


def test_the_console_page_shows_them(refused, monkeypatch):
    from streamlit.testing.v1 import AppTest

    out, store, _tight = refused
    monkeypatch.setenv("NIGHTWATCH_OUTPUT", str(out))
    monkeypatch.delenv("NIGHTWATCH_DB_URL", raising=False)
    accounts.create_user_as_system(store, "test", "otto", "observer", "a-long-enough-password")
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.text_input(key="login_name").input("otto")
    at.text_input(key="login_password").input("a-long-enough-password")
    at.button[0].click().run()
    at.sidebar.radio(key="page").set_value("Dead letters").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Dead letters"
    assert at.metric[0].value == str(len(ZTF) + 1)
    counts = at.dataframe[0].value
    assert set(counts["stage"]) == {"decode"} and counts["count"].sum() == len(ZTF) + 1
    at.text_input(key="dl_reason").input("invalid XML").run()
    assert at.metric[0].value == "1"
    assert "invalid XML" in at.dataframe[1].value["reason"].iloc[0]
    assert any("dead-letters redrive --stage decode --reason 'invalid XML" in code.value for code in at.code)


def test_archive_tier_letters_are_redriven_and_resolved(tmp_path, capsys, monkeypatch):
    """A failed archive write leaves sink:archive letters (with the raw packet); once the tier is writable, a
    re-drive writes the events there and marks the letters resolved (the events table already had them)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "archive").write_text("a file where the archive folder should be")
    summary = run([f"--input={DATA}/gcn/voevent/10409*.xml", f"--output={out}"])
    assert summary.dead_letters.get("sink:archive") == 1
    store = HotStore(f"sqlite:///{out}/nightwatch.db")
    stored = store.count(events)
    (out / "archive").unlink()  # the fix
    act_as_service(monkeypatch, store.url)
    assert main(["dead-letters", "redrive", "--stage", "sink:archive", "--output", str(out)]) == 0
    said = capsys.readouterr().out
    assert "now stored                       1" in said and "still dead                       0" in said
    assert open_letters(store) == 0 and store.count(events) == stored
    archived = {entry.event_id for entry in archive_entries(str(out / "archive"))}
    assert archived == {
        letter["event_id"] for letter in deadletters.list_letters(store, deadletters.LetterFilter(status="resolved"))
    }
    store.close()
