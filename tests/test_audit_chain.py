"""The audit log's hash chain: a row changed, deleted or forged with the application's own credentials (the
append-only triggers set aside first) is found by `nightwatch audit verify`, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic import command

from access import audit
from cli.main import main
from core.event import utcnow
from store import migrate
from store.hot import HotStore
from store.schema import audit_log


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else f"sqlite:///{tmp_path}/a.db"


def as_attacker(store: HotStore, *statements: str) -> None:
    """What someone with the application's credentials can do: set the triggers aside, change the log."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            conn.execute(sa.text(statement))
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:
            for verb in ("UPDATE", "DELETE"):
                conn.execute(
                    sa.text(
                        f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
                    )
                )


def verify(url: str, capsys) -> tuple[int, str]:
    code = main(["audit", "verify", f"--db-url={url}"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_verify_finds_a_changed_a_deleted_and_a_forged_row(url, capsys):
    store = HotStore(url)
    store.ensure_schema()
    for i in range(6):
        audit.record(store, "alice", "users.role", f"user{i}", {"role": "observer"}, {"role": "operator"}, "q3")
    assert verify(url, capsys) == (0, "audit log intact: 6 rows, each chained to the one before\n")
    with store.engine.connect() as conn:
        row3 = conn.execute(sa.select(audit_log).where(audit_log.c.audit_id == 3)).one()

    # Changed: an actor rewritten in row 3.
    as_attacker(store, "UPDATE audit_log SET actor = 'mallory' WHERE audit_id = 3")
    code, text = verify(url, capsys)
    assert code == 1 and "row 3 " in text and text.count("\n") == 1
    as_attacker(store, "UPDATE audit_log SET actor = 'alice' WHERE audit_id = 3")
    assert verify(url, capsys)[0] == 0

    # Deleted: row 3 gone, so row 4 no longer follows.
    as_attacker(store, "DELETE FROM audit_log WHERE audit_id = 3")
    code, text = verify(url, capsys)
    assert code == 1 and "row 4 " in text
    with store.engine.begin() as conn:  # put it back as it was: intact again
        conn.execute(audit_log.insert().values(**row3._mapping))
    assert verify(url, capsys)[0] == 0

    # The last row deleted: the chain's head says there was one more.
    as_attacker(store, "DELETE FROM audit_log WHERE audit_id = 6")
    code, text = verify(url, capsys)
    assert code == 1 and "rows deleted" in text

    # Forged: a row inserted with a hash of the attacker's choosing, or none.
    for forged in ("'" + "ab" * 32 + "'", "NULL"):
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (audit_id, at, actor, action, target, row_hash) "
                    f"VALUES (100, :at, 'mallory', 'users.role', 'mallory', {forged})"
                ),
                {"at": utcnow()},
            )
        code, text = verify(url, capsys)
        assert code == 1 and "row " in text and not audit.verify_chain(store).intact
        assert audit.verify_chain(store).bad_id in (6, 100)
        as_attacker(store, "DELETE FROM audit_log WHERE audit_id = 100")
    store.close()


def test_concurrent_appends_keep_one_chain(url):
    store = HotStore(url)
    store.ensure_schema()

    def append(worker: int) -> None:
        for i in range(15):
            for attempt in range(50):  # SQLite: a writer may find the database locked and try again
                try:
                    audit.record(store, f"w{worker}", "test.append", str(i), None, {"i": i})
                    break
                except sa.exc.OperationalError:
                    if attempt == 49:
                        raise

    threads = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    check = audit.verify_chain(store)
    assert check.intact and check.rows == 60, check
    store.close()


def test_the_migration_hashes_the_rows_written_before_the_chain(url):
    engine = sa.create_engine(url)
    config = migrate._config()
    with engine.begin() as conn:
        config.attributes.update(connection=conn, url=url, migrated=[])
        command.upgrade(config, "0001")
        for i in range(3):
            conn.execute(
                sa.text("INSERT INTO audit_log (at, actor, action, target) VALUES (:at, 'old', 'x', :t)"),
                {"at": utcnow(), "t": str(i)},
            )
    engine.dispose()
    store = HotStore(url)
    assert "hashed 3 audit rows into a chain" in store.ensure_schema()
    audit.record(store, "new", "y", "z", None, None)
    check = audit.verify_chain(store)
    assert check.intact and check.rows == 4
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(audit_log.delete())  # the triggers are back
    store.close()
