"""What an operator notices: figures with units and sensible precision, and an audit log that reads as changes
(a before/after diff, filtered by kind of action, logins not drowning the rest). Shares test_dashboard's store."""

from __future__ import annotations

from access import accounts, audit
from dashboard import ui
from tests.test_dashboard import console, goto, login  # noqa: F401 - the fixture

__all__ = ["console"]


def test_angles_and_figures_carry_units_and_sensible_precision():
    assert ui.angle(5.98e-05) == "0.22 arcsec"  # once shown as "5.98e-05 deg"
    assert ui.angle(0.25) == "15.00 arcmin" and ui.angle(12.5) == "12.50 deg" and ui.angle(None) == "–"
    assert ui.number(0.5) == "0.50" and ui.number(1234.5, 1, "ms") == "1,234.5 ms" and ui.number(None) == "–"


def test_audit_change_reads_as_a_diff():
    before = {"role": "observer", "active": True, "note": None}
    after = {"role": "operator", "active": True, "note": "on call"}
    assert audit.describe_change(before, after) == "note: none → on call; role: observer → operator"
    assert audit.describe_change({"a": 1}, {"a": 1, "b": False}) == "b: no (new)"
    assert audit.describe_change(None, {"status": "open"}) == 'set to {"status": "open"}'
    assert audit.describe_change(None, None) == "" and audit.describe_change({"x": 1}, {"x": 1}) == "no change"


def test_audit_page_filters_by_kind_and_shows_readable_changes(console):  # noqa: F811
    accounts.set_role(console, "root", "obs", "operator", "covering the night shift")
    for _ in range(3):
        login("obs")  # logins are written to the audit log
    at = goto(login("root"), "Users & audit")
    kinds = at.multiselect(key="audit_kinds")
    assert "login" in kinds.options[0] or any(option.startswith("login") for option in kinds.options)
    assert not any(str(value).startswith("login") for value in kinds.value)  # logins hidden until chosen
    frame = next(f.value for f in at.dataframe if "change" in f.value.columns)
    assert not frame["action"].str.startswith("login").any()
    assert "before" not in frame.columns and not frame["change"].str.contains("{'", regex=False).any()
    changed = frame[(frame["action"] == "user.set_role") & (frame["target"] == "obs")]
    assert "role: observer → operator" in changed["change"].iloc[0]
    kinds.set_value(["login"]).run()
    frame = next(f.value for f in at.dataframe if "change" in f.value.columns)
    assert len(frame) >= 3 and frame["action"].str.startswith("login").all()
