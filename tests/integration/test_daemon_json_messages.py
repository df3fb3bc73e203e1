"""daemon.json mistakes: one line naming the file and the key as written, then dockerd's
text; nothing is changed (no bridge appears)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("conf, expected", [
    ({"bridge": "br0", "bip": "10.55.0.1/24"},
     'keys "bridge" and "bip": You specified -b & --bip, mutually exclusive options. '
     "Please specify only one"),
    ({"icc": "false"}, 'key "icc": must be true or false, not string "false"'),
    ({"bip": "10.55.0.1"}, 'key "bip": invalid CIDR address: 10.55.0.1'),
    ({"icc": False, "iptables": False}, 'keys "icc" and "iptables": You specified'),
    ({"birdge": "br0"}, "the following directives don't match any configuration option: birdge"),
])
def test_daemon_json_errors_name_the_key(bare_host, conf, expected) -> None:
    h = bare_host
    h.write_daemon_json(json.dumps(conf))
    p = h.md("network", "ls", check=False)
    path = f"{h.root}/daemon.json"
    assert p.returncode == 125, p
    assert p.stderr == (f"Error response from daemon: unable to configure minidock with "
                        f"file {path}: {expected}\n") or p.stderr.startswith(
        f"Error response from daemon: unable to configure minidock with file {path}: {expected}")
    assert len(p.stderr.strip().splitlines()) == 1
    assert "Traceback" not in p.stderr
    assert h.sh("ip -o link show type bridge").stdout == ""


def test_a_missing_bridge_device_names_the_key(bare_host) -> None:
    h = bare_host
    h.write_daemon_json(json.dumps({"bridge": "br-nosuch"}))
    p = h.md("network", "ls", check=False)
    assert p.returncode == 125 and "Traceback" not in p.stderr
    assert p.stderr == (f"Error response from daemon: unable to configure minidock with file "
                        f'{h.root}/daemon.json: key "bridge": bridge device with non default '
                        "name br-nosuch must be created manually\n")
