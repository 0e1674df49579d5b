"""Agent outcomes in words: a line per event for summaries, and tallies per agent from the counters."""

from __future__ import annotations

from typing import Any

from core import names

STATUSES = ("ok", "skipped", "timeout", "error")


def brief(enrichments: dict[str, dict[str, Any]]) -> str:
    """What the agents found about one event, in a few words each (skips and failures say so)."""
    parts = []
    for name, found in sorted(enrichments.items()):
        if found.get("status") != "ok":
            parts.append(f"{name}: {found.get('status')} ({found.get('reason', '')[:60]})")
            continue
        text = _describe(found.get("data") or {})
        if found.get("proposed_class"):
            text += f"; proposes {found['proposed_class']}: {found.get('proposal_reason', '')}"
        parts.append(f"{name}: {text}")
    return " | ".join(parts)


def _describe(data: dict[str, Any]) -> str:
    if "host_candidates" in data:
        found = []
        if data.get("known_variable"):
            found.append(f"known variable HIP {data['known_variable']['hip']}")
        if data.get("star"):
            found.append(f'star Gaia DR3 {data["star"]["source_id"]} ({data["star"]["separation_arcsec"]}")')
        if data.get("bright_star_glare"):
            found.append(
                f'G={data["bright_star_glare"]["g_mag"]:.1f} star at {data["bright_star_glare"]["separation_arcsec"]}"'
            )
        hosts = data["host_candidates"]
        if hosts:
            found.append(f'host {hosts[0]["name"]} ({hosts[0]["separation_arcsec"]}")')
        return ", ".join(found) or "no catalogued star, variable or galaxy"
    if "galaxies_in_region" in data:
        names = ", ".join(galaxy["name"] for galaxy in data["brightest_galaxies"][:3])
        return f"{data['galaxies_in_region']} galaxies in the error region" + (f" ({names})" if names else "")
    if "first_seen" in data:
        if data.get("new_object"):
            return "new object"
        trend = f", {data['trend']} {data['rate_mag_per_day']:+.2f} mag/day" if data.get("trend") else ""
        return f"known {data['days_known']:.1f} d, {data['prior_in_packet']} prior detections{trend}"
    if "advice" in data:
        filters = "".join(data.get("suggested_filters", []))
        return f"priority {data.get('priority', '?')}, {data['advice']}, filters {filters}"
    return ", ".join(f"{key}={value}" for key, value in list(data.items())[:3])


def tallies(counters: dict[str, int]) -> dict[str, dict[str, int]]:
    """{agent: {ok, skipped, timeout, error}} from the `agents.NAME.STATUS` counters."""
    found: dict[str, dict[str, int]] = {}
    for key, value in counters.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[2] in STATUSES and key == names.agent_call(parts[1], parts[2]):
            found.setdefault(parts[1], dict.fromkeys(STATUSES, 0))[parts[2]] += value
    return dict(sorted(found.items()))
