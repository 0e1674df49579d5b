"""The benchmark runs end to end at the small size, and its JSON has every field."""

from __future__ import annotations

import json

import pytest

from devtools import bench


def test_targets_are_judged_against_the_issue():
    results = {
        "reference": {"packets_per_s": 1000.0, "peak_rss_mib": 300.0},
        "beam-1": {"packets_per_s": 700.0, "peak_rss_mib": 900.0},
        "beam-2": {"packets_per_s": 1200.0, "peak_rss_mib": 2500.0},
        "stream": {"latency_p50_s": 4.0, "latency_p99_s": 31.0, "burst_share_in_60s": 0.99, "peak_rss_mib": 600.0},
    }
    checks = bench.judge(results)
    assert checks["beam_over_reference"] == {"target": 0.7, "measured": 0.7, "met": True}
    assert checks["two_over_one_process"]["measured"] == pytest.approx(1.714) and checks["two_over_one_process"]["met"]
    assert not checks["reference_packets_per_s"]["met"]  # 1,000 < 3,000
    assert checks["stream_p50_s"]["met"] and not checks["stream_p99_s"]["met"]
    assert not checks["peak_rss_gib"]["met"]  # 2,500 MiB is over 2 GiB


@pytest.mark.slow
def test_small_bench_end_to_end(tmp_path):
    report = bench.bench("small", bench.ALL_SCENARIOS, tmp_path)
    saved = json.loads((tmp_path / "latest-small.json").read_text())
    assert saved["results"].keys() == set(bench.ALL_SCENARIOS)
    assert {"started_at", "size", "parameters", "machine", "results", "targets", "sizing"} <= saved.keys()
    assert [row["load"] for row in saved["sizing"]] == list(bench.SURVEYS)
    assert {"cpus", "python", "versions", "platform"} <= saved["machine"].keys()
    reference = saved["results"]["reference"]
    assert reference["packets"] == bench.SIZES["small"]["packets"] and reference["packets_per_s"] > 0
    assert {"decode", "filter", "classify", "route", "agents", "sink_hot", "sink_warm", "sink_archive"} <= set(
        reference["stage_cpu_us_per_event"]
    )
    assert [row["packets"] for row in saved["results"]["scale"]["sizes"]] == bench.SIZES["small"]["scale"]
    assert all(row["accounted"] and row["us_per_packet"] > 0 for row in saved["results"]["scale"]["sizes"])
    for name in ("beam-1", "beam-2", "dask-2"):
        assert saved["results"][name]["accounted"] and saved["results"][name]["packets_per_s"] > 0
    flow = saved["results"]["stream"]
    assert flow["stored"] > 0 and flow["latency_p50_s"] > 0 and 0 <= flow["burst_share_in_60s"] <= 1
    assert all(result["peak_rss_mib"] > 0 for result in saved["results"].values())
    assert set(saved["targets"]) == set(bench.TARGETS)
    assert "targets:" in bench.table(report)


def test_sizing_follows_from_the_measured_rate():
    rows = {row["load"]: row for row in bench.sizing({"beam-1": {"packets_per_s": 100.0}})}
    rubin = rows["Rubin average (10M alerts a night)"]
    assert rubin["packets_per_s"] == pytest.approx(277.8) and rubin["vcpus"] == pytest.approx(4.0)
    assert rubin["workers"] == 2  # 4 vCPUs on 2-vCPU workers
    burst = rows["Rubin visit burst (98% of 40,000 in 60 s)"]
    assert burst["workers"] == 5  # 653/s at 70 a vCPU: 9.3 vCPUs
    assert bench.sizing({}) == []
