"""Pure parts of issue 15: mount specs, resource flags, restart policies, cgroup
discovery, stats formatting."""

from __future__ import annotations

import pytest

from minidock.errors import InvalidArgument
from minidock.runtime import cgroups, limits, mounts, restart, stats


# -- mounts -------------------------------------------------------------------------------
def test_volume_spec_kinds() -> None:
    bind = mounts.parse_volume("/srv/data/:/data:ro")
    assert bind == {"Type": "bind", "Source": "/srv/data", "Destination": "/data", "Mode": "ro",
                    "RW": False, "Propagation": "rprivate", "_Origin": "binds"}
    named = mounts.parse_volume("db:/var/lib/db")
    assert named["Type"] == "volume" and named["Name"] == "db" and named["Mode"] == "z"
    anon = mounts.parse_volume("/cache")
    assert anon["Name"] == "" and anon["_Anonymous"] and anon["RW"]
    assert mounts.parse_volume("db:/x:nocopy")["_NoCopy"]


@pytest.mark.parametrize("spec, needle", [
    ("", "empty volume spec"), ("/a:/b:c:d", "invalid volume specification"),
    ("/a:rel", "must be absolute"), ("/a:/", "can't be '/'"), ("/a:/b:xx", "invalid mode: xx"),
    ("/a:/b:ro,rw", "invalid mode"), ("/x:ro", "invalid volume specification"),
    ("b@d:/x", "invalid characters for a local volume name"), ("/a:/b:rshared", "rshared")])
def test_volume_spec_errors(spec: str, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle.replace("(", r"\(")):
        mounts.parse_volume(spec)


def test_mount_spec() -> None:
    m = mounts.parse_mount("type=bind,src=/a,dst=/b,readonly")
    assert (m["Type"], m["Source"], m["Destination"], m["RW"]) == ("bind", "/a", "/b", False)
    v = mounts.parse_mount("target=/v")
    assert v["Type"] == "volume" and v["_Anonymous"]
    t = mounts.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert t["_Data"] == "size=1048576,mode=1770"
    for raw, needle in [("type=bind,target=/b", "field Source must not be empty"),
                        ("type=x,target=/b", 'for type "x": mount type unknown'),
                        ("type=bind,source=/a", "target is required"),
                        ("type=bind,nope=1,target=/b", "unexpected key 'nope'"),
                        ("type=tmpfs,source=a,target=/b", "must not be specified")]:
        with pytest.raises(InvalidArgument, match=needle):
            mounts.parse_mount(raw)


def test_tmpfs_and_duplicates() -> None:
    t = mounts.parse_tmpfs("/run:size=64m,noexec,mode=1777")
    assert t["_Data"] == "size=67108864,mode=1777" and t["_Flags"] == ["noexec"]
    a, b = mounts.parse_volume("/a:/x"), mounts.parse_volume("v1:/x")
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /x"):
        mounts.combine([[a], [b]])
    image = mounts.image_volumes({"Volumes": {"/x": {}, "/y": {}}})
    got = mounts.combine([[a], image])
    assert [m["Destination"] for m in got] == ["/x", "/y"] and got[0]["Type"] == "bind"
    assert mounts.public(got + [t])[0] == {k: v for k, v in a.items() if k[0] != "_"}
    assert [m["Destination"] for m in mounts.mount_order(
        [mounts.parse_volume("/a/b/c"), mounts.parse_volume("/a")])] == ["/a", "/a/b/c"]


def test_volumes_from_inherit() -> None:
    src = [mounts.parse_volume("/cache"), mounts.parse_tmpfs("/t")]
    got = mounts.inherit(src, "ro")
    assert len(got) == 1 and got[0]["RW"] is False and "_Anonymous" not in got[0]


# -- limits ---------------------------------------------------------------------------------
def test_limits_parse_and_files() -> None:
    hc = limits.parse(limits.Limits(memory="64m", cpus="0.5", cpu_shares="512",
                                    pids_limit="10", cpuset_cpus="0-1"), ncpu=2)
    assert hc == {"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 500_000_000,
                  "CpuShares": 512,
                  "PidsLimit": 10, "CpusetCpus": "0-1"}
    v1 = limits.v1_files(hc, has_memsw=True)
    assert v1["memory"] == {"memory.limit_in_bytes": str(64 << 20),
                            "memory.memsw.limit_in_bytes": str(128 << 20)}
    assert v1["cpu"]["cpu.cfs_quota_us"] == "50000" and v1["pids"]["pids.max"] == "10"
    v2 = limits.v2_files({**hc, "MemorySwap": -1})
    assert v2["cpu.max"] == "50000 100000" and v2["memory.swap.max"] == "max"
    assert v2["cpu.weight"] == str(1 + (510 * 9999) // 262142)


@pytest.mark.parametrize("kw, needle", [
    ({"memory": "1m"}, "Minimum memory limit allowed is 6MB"),
    ({"memory": "x"}, "invalid value for --memory: x"),
    ({"memory_swap": "1g"}, "always set the Memory limit"),
    ({"memory": "64m", "memory_swap": "32m"}, "larger than memory"),
    ({"cpus": "4"}, "Range of CPUs is from 0.01 to 2.00"),
    ({"cpus": "abc"}, "rational number"), ({"pids_limit": "x"}, "--pids-limit"),
    ({"cpuset_cpus": "3"}, "Requested CPUs are not available"),
    ({"cpuset_cpus": "1-0"}, "Invalid value 1-0 for cpuset cpus")])
def test_limits_errors(kw: dict, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        limits.parse(limits.Limits(**kw), ncpu=2)


# -- restart ----------------------------------------------------------------------------------
def test_restart_policy_parse() -> None:
    assert restart.parse_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert restart.parse_policy("always") == {"Name": "always", "MaximumRetryCount": 0}
    for raw, needle in [("always:2", "cannot be used"), ("bogus", "invalid restart policy bogus"),
                        ("on-failure:-1", "negative"), ("on-failure:x", "invalid syntax")]:
        with pytest.raises(InvalidArgument, match=needle):
            restart.parse_policy(raw)


def test_restart_decision_and_back_off() -> None:
    on2 = {"Name": "on-failure", "MaximumRetryCount": 2}
    assert restart.decide(on2, 1, 0, False) and restart.decide(on2, 1, 1, False)
    assert not restart.decide(on2, 1, 2, False) and not restart.decide(on2, 0, 0, False)
    assert restart.decide({"Name": "always"}, 0, 99, False)
    assert not restart.decide({"Name": "always"}, 0, 0, True)
    assert not restart.decide({"Name": "no"}, 1, 0, False)
    delays = [100]
    for _ in range(4):
        delays.append(restart.next_delay_ms(delays[-1], 0.5))
    assert delays == [100, 200, 400, 800, 1600]
    assert restart.next_delay_ms(1600, 10.0) == 100


# -- cgroups ----------------------------------------------------------------------------------
MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_cgroup_discovery() -> None:
    assert cgroups.v1_mounts(MOUNTINFO) == {"cpu": "/sys/fs/cgroup/cpu,cpuacct",
                                             "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                                             "memory": "/sys/fs/cgroup/memory"}
    own = cgroups.own_paths("4:memory:/a/b\n2:cpu,cpuacct:/\n0::/u\n")
    assert own == {"memory": "/a/b", "cpu": "/", "cpuacct": "/", "": "/u"}
    assert cgroups.parent_name("/var/lib/minidock") == "minidock"
    other = cgroups.parent_name("/tmp/x/root")
    assert other.startswith("minidock-") and len(other) == 17
    assert other != cgroups.parent_name("/tmp/y/root")


# -- stats ------------------------------------------------------------------------------------
def test_stats_formatting() -> None:
    assert stats.binary_size(1572864) == "1.5MiB" and stats.binary_size(0) == "0B"
    assert stats.decimal_size(1234) == "1.23kB" and stats.decimal_size(999) == "999B"
    ctr = {"Id": "a" * 64, "Name": "/web"}
    before = stats.Sample(cpu_ns=0, system_ns=0, ncpu=2)
    after = stats.Sample(cpu_ns=500_000_000, system_ns=2_000_000_000, ncpu=2, mem=1 << 20,
                         limit=1 << 30, rx=1000, tx=0, pids=3)
    r = stats.row(ctr, before, after)
    assert r["CPUPerc"] == "50.00%" and r["MemUsage"] == "1MiB / 1GiB" and r["PIDs"] == "3"
    assert r["MemPerc"] == "0.10%" and r["NetIO"] == "1kB / 0B"
    out = stats.render(stats.DEFAULT_FORMAT, [r]).splitlines()
    assert out[0].startswith("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT")
    assert stats.render("{{.Name}}", [r]) == "web\n"


def test_boots_again_as_dockerd_at_its_start() -> None:
    def ctr(policy: str, code: int = 255, manual: bool = False, started: bool = True) -> dict:
        doc = {"HostConfig": {"RestartPolicy": restart.parse_policy(policy)},
               "State": {"ExitCode": code, "StartedAt": "2026-01-01T00:00:00Z" if started
                         else "0001-01-01T00:00:00Z"}, "RestartCount": 0}
        if manual:
            doc["_ManuallyStopped"] = True
        return doc
    assert restart.boots_again(ctr("always")) and restart.boots_again(ctr("always", manual=True))
    assert restart.boots_again(ctr("unless-stopped"))
    assert not restart.boots_again(ctr("unless-stopped", manual=True))
    assert restart.boots_again(ctr("on-failure")) and not restart.boots_again(ctr("on-failure", 0))
    assert not restart.boots_again(ctr("no")) and not restart.boots_again(ctr("always", started=False))
