"""The bench's pure parts: verdicts, ratios, the table, trace and importtime parsing."""

from bench.profile import parse_importtime, parse_trace
from bench.report import Figure, Target, fmt, results_markdown, table


def test_ratio_against_base_peer_and_verdicts():
    fig = Figure("run", "ms", 100.0, Target("<=", 0.5), {"docker": 250.0, "podman": 300.0},
                 base="docker")
    assert fig.ratio == 0.4
    assert fig.verdict == "met"
    slow = Figure("run", "ms", 200.0, Target("<=", 0.5), {"docker": 250.0}, base="docker")
    assert slow.verdict == "NOT met"


def test_throughput_target_is_at_least():
    fig = Figure("tput", "Gbit/s", 13.0, Target(">=", 1.3), {"docker-proxy": 10.0},
                 base="docker-proxy")
    assert fig.verdict == "met"


def test_missing_peer_gives_no_ratio():
    fig = Figure("run", "ms", 100.0, Target("<=", 0.5), {"docker": "not installed"},
                 base="docker")
    assert fig.ratio is None
    assert fig.verdict == "n/a"


def test_absolute_budget_and_override():
    assert Figure("rss", "MiB", 39.0, Target("<=", 40, absolute=True)).verdict == "met"
    assert Figure("rss", "MiB", 41.0, Target("<=", 40, absolute=True)).verdict == "NOT met"
    scale = Figure("scale", "ms", 120.0, Target("<=", 1.2), ratio_override=1.1)
    assert scale.ratio == 1.1 and scale.verdict == "met"


def test_failed_benchmark_row():
    row = table([Figure("fleet", "", None, note="failed: boom")])
    assert "| fleet (failed: boom) | - | - | - | - |  |" in row


def test_fmt_and_table_and_markdown():
    assert fmt(235.4, "ms") == "235 ms"
    assert fmt(13.64, "Gbit/s") == "13.6 Gbit/s"
    assert fmt(3.21, "MiB") == "3.21 MiB"
    assert fmt("cannot run here") == "cannot run here"
    figs = [Figure("run", "ms", 100.0, Target("<=", 0.5), {"docker": 250.0}, base="docker")]
    text = table(figs)
    assert text.splitlines()[2] == "| run | 100 ms | docker 250 ms | 0.400x | <= 0.5x | met |"
    md = results_markdown(figs, "2 CPUs", "2026-01-01 00:00", "full run", "## extra")
    assert "Targets met: 1 of 1." in md and md.endswith("## extra\n")


def test_parse_trace_sums_repeated_steps():
    err = ("start (pipeline)      23.07 ms\n"
           "├─ spawn_monitor      21.07 ms\n"
           "│  └─ nested           9.00 ms\n"
           "├─ join                1.50 ms\n"
           "noise\n"
           "└─ join                0.50 ms\n")
    assert parse_trace(err) == {"start.spawn_monitor": 21.07, "start.join": 2.0}


def test_parse_importtime_top_level_only():
    err = ("import time: self [us] | cumulative | imported package\n"
           "import time:       100 |        100 |   _io\n"
           "import time:       200 |        300 | io\n"
           "import time:      1000 |       5000 | minidock.store\n")
    total, top = parse_importtime(err)
    assert total == 1.3
    assert top == [("minidock.store", 5.0), ("io", 0.3)]


def test_dnsperf_parsers() -> None:
    from bench.dns import parse_p99_ms, parse_qps
    out = "  Queries per second:   16755.589325\n\n  Average Latency (s):  0.002895\n"
    assert parse_qps(out) == 16755.589325
    lines = "".join(f"> NOERROR dnsb A 0.{i:06d}\n" for i in range(1, 101))
    assert parse_p99_ms("[Status] x\n" + lines + "> SERVFAIL dnsb A 9.0\n") == 100 / 1000
    import pytest
    with pytest.raises(RuntimeError):
        parse_qps("no statistics")


def test_fleet_edges_and_networks() -> None:
    from bench.fleet import edge_ratio, fleet_networks
    times = [100.0] * 95 + [130.0] * 5
    first, last, ratio = edge_ratio(times)
    assert (first, last) == (100.0, 130.0) and abs(ratio - 1.3) < 1e-9
    assert edge_ratio([10.0, 20.0])[2] == 2.0          # tiny fleets: one each side
    assert fleet_networks(3) == [("fleet0", "10.200.0.0/20"), ("fleet1", "10.201.0.0/20"),
                                 ("fleet2", "10.202.0.0/20")]
