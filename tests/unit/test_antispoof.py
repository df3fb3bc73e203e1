"""Anti-spoofing batches (pure text) and the guard/unguard protocol with a fake nft."""

from __future__ import annotations

import pytest

from minidock.errors import Internal
from minidock.net.drivers.bridge import antispoof


def test_guard_batch_is_three_elements():
    assert antispoof.guard_batch("veth1234abc", "172.17.0.2", "02:42:AC:11:00:02") == [
        'add element bridge minidock guarded { "veth1234abc" }',
        'add element bridge minidock ip4 { "veth1234abc" . 172.17.0.2 }',
        'add element bridge minidock mac { "veth1234abc" . 02:42:ac:11:00:02 }',
    ]


def test_unguard_is_idempotent_add_then_delete():
    batch = antispoof.unguard_batch("veth1234abc", "172.17.0.2", "02:42:ac:11:00:02")
    assert batch[0] == "add table bridge minidock"
    assert not any(line.startswith(("add rule", "flush")) for line in batch)
    dels = [ln for ln in batch if ln.startswith("delete element")]
    assert len(dels) == 3
    for d in dels:
        assert "add" + d[len("delete"):] in batch


def test_table_batch_rewrites_rules_atomically():
    batch = antispoof.table_batch()
    assert batch.index("flush chain bridge minidock antispoof") < batch.index(
        "add rule bridge minidock antispoof drop")
    assert batch[-1] == "add rule bridge minidock antispoof drop"
    assert any("hook prerouting" in ln for ln in batch)


@pytest.mark.parametrize("port, ip, mac", [
    ('veth"; flush ruleset', "172.17.0.2", "02:42:ac:11:00:02"),
    ("veth1234567890abcdef", "172.17.0.2", "02:42:ac:11:00:02"),
    ("veth1234abc", "172.17.0.2 }", "02:42:ac:11:00:02"),
    ("veth1234abc", "172.17.0.2", "02:42:ac:11:00"),
])
def test_values_are_checked_before_they_become_syntax(port, ip, mac):
    with pytest.raises((Internal, ValueError)):
        antispoof.guard_batch(port, ip, mac)


def test_guard_writes_table_only_when_missing(monkeypatch):
    from minidock.net.kernel import nftnl
    calls, table = [], {"exists": False}

    def fake_apply(changes):
        calls.append(("netlink", changes))
        if not table["exists"]:
            raise FileNotFoundError(2, "No such file or directory")

    def fake_nft(lines):
        calls.append(("nft", lines))
        table["exists"] = True
        return True, ""

    monkeypatch.setattr(nftnl, "apply", fake_apply)
    monkeypatch.setattr(antispoof, "_nft", fake_nft)
    antispoof.guard("vetha", "10.0.0.2", "02:42:0a:00:00:02")
    assert [c[0] for c in calls] == ["netlink", "nft"]
    assert calls[1][1][0] == "add table bridge minidock"
    antispoof.guard("vethb", "10.0.0.3", "02:42:0a:00:00:03")
    assert [c[0] for c in calls] == ["netlink", "nft", "netlink"]
    sets = [(delete, s) for delete, _t, s, _k in calls[2][1]]
    assert sets == [(False, "guarded"), (False, "ip4"), (False, "mac")]


def test_keys_match_register_layout():
    keys = dict(antispoof._keys("veth1", "172.17.0.2", "02:42:AC:11:00:02"))
    name = b"veth1" + b"\0" * 11
    assert keys == {"guarded": [name], "ip4": [name + bytes([172, 17, 0, 2])],
                    "mac": [name + bytes.fromhex("0242ac110002") + b"\0\0"]}


def test_unguard_adds_then_deletes_and_tolerates_no_table(monkeypatch):
    from minidock.net.kernel import nftnl
    seen = []

    def fake_apply(changes):
        seen.append(changes)
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(nftnl, "apply", fake_apply)
    antispoof.unguard("vetha", "10.0.0.2", "02:42:0a:00:00:02")   # no error
    assert [d for d, _t, _s, _k in seen[0]] == [False, True] * 3


def test_guard_failure_names_the_port(monkeypatch):
    from minidock.net.kernel import nftnl

    def fake_apply(changes):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(nftnl, "apply", fake_apply)
    with pytest.raises(Internal, match="anti-spoofing rules for vetha: Invalid argument"):
        antispoof.guard("vetha", "10.0.0.2", "02:42:0a:00:00:02")


def test_ipv6_elements_cover_global_and_link_local_addresses():
    from minidock.net.drivers.bridge import antispoof as A
    assert str(A.link_local("02:42:ac:11:00:02")) == "fe80::42:acff:fe11:2"
    batch = A.guard_batch("veth1234567", "172.17.0.2", "02:42:ac:11:00:02",
                          "2001:db8:1::242:ac11:2")
    assert 'add element bridge minidock ip6addr { "veth1234567" . 2001:db8:1::242:ac11:2 }' in batch
    assert ('add element bridge minidock nd6 { "veth1234567" . '
            '0xfe800000000000000042acfffe110002 }') in batch
    assert len(A.guard_batch("veth1234567", "172.17.0.2", "02:42:ac:11:00:02")) == 3
    rules = "\n".join(A.table_batch())
    assert "icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd6 drop" in rules
    assert rules.index("@nd6 drop") < rules.index("ip6 saddr @ip6addr accept") < \
        rules.index("antispoof drop")
