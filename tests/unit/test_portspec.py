"""Port specs: Docker's -p forms and errors, --expose, the ephemeral range."""

import pytest

from minidock.errors import InvalidArgument
from minidock.net.ports.portspec import (PortBinding, ephemeral_range, from_port_bindings,
                                         parse_expose, parse_publish, parse_publish_all,
                                         port_key, to_port_bindings)


@pytest.mark.parametrize("spec, expected", [
    ("8080:80", [PortBinding("tcp", 80, "", 8080)]),
    ("80", [PortBinding("tcp", 80, "", 0)]),
    ("127.0.0.1:8080:80", [PortBinding("tcp", 80, "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [PortBinding("tcp", 80, "127.0.0.1", 0)]),
    ("53:53/udp", [PortBinding("udp", 53, "", 53)]),
    ("9:9/sctp", [PortBinding("sctp", 9, "", 9)]),
    ("[::1]:8080:80", [PortBinding("tcp", 80, "::1", 8080)]),
    ("8000-8002:80-82", [PortBinding("tcp", 80, "", 8000),
                         PortBinding("tcp", 81, "", 8001),
                         PortBinding("tcp", 82, "", 8002)]),
    ("80-81", [PortBinding("tcp", 80, "", 0), PortBinding("tcp", 81, "", 0)]),
    ("8000-8010:80", [PortBinding("tcp", 80, "", 8000, 8010)]),
])
def test_forms(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ("8000:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000"),
    ("x:80", "invalid hostPort: x"),
    ("8080:x", "invalid containerPort: x"),
    ("8080:70000", "invalid containerPort: 70000"),
    ("8080:0", "invalid containerPort: 0"),
    ("8080:82-80", "invalid containerPort: 82-80"),
    ("8080:80/icmp", "invalid proto: icmp"),
    ("8080:80/TCP", "invalid proto: TCP"),
    ("8080:", "invalid containerPort: "),
])
def test_errors(spec, message):
    with pytest.raises(InvalidArgument) as exc:
        parse_publish(spec)
    assert str(exc.value) == message


def test_port_bindings_json():
    specs = ("8080:80", "127.0.0.1::53/udp", "8000-8001:90-91", "8000-8010:80", "[::1]:1:2")
    pb = to_port_bindings(parse_publish_all(specs))
    assert pb == {"80/tcp": [{"HostIp": "", "HostPort": "8080"},
                             {"HostIp": "", "HostPort": "8000-8010"}],
                  "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                  "90/tcp": [{"HostIp": "", "HostPort": "8000"}],
                  "91/tcp": [{"HostIp": "", "HostPort": "8001"}],
                  "2/tcp": [{"HostIp": "::1", "HostPort": "1"}]}
    assert to_port_bindings(from_port_bindings(pb)) == pb


def test_from_port_bindings():
    assert from_port_bindings(None) == []
    assert from_port_bindings({"80": [], "53/udp": [{"HostPort": "5353"}]}) == [
        PortBinding("tcp", 80, "", 0), PortBinding("udp", 53, "", 5353)]
    with pytest.raises(InvalidArgument, match="^invalid port format: x/tcp$"):
        from_port_bindings({"x/tcp": []})
    with pytest.raises(InvalidArgument, match="^Invalid hostPort: y$"):
        from_port_bindings({"80/tcp": [{"HostPort": "y"}]})


def test_expose():
    assert parse_expose("80") == [(80, "tcp")]
    assert parse_expose("53/udp") == [(53, "udp")]
    assert parse_expose("8000-8002") == [(8000, "tcp"), (8001, "tcp"), (8002, "tcp")]
    with pytest.raises(InvalidArgument, match="invalid port format for --expose: 80:80"):
        parse_expose("80:80")
    with pytest.raises(InvalidArgument, match="invalid range format for --expose: abc"):
        parse_expose("abc")


def test_port_key_and_ephemeral():
    assert port_key(80, "tcp") == "80/tcp"
    assert ephemeral_range("32768\t60999\n") == (32768, 60999)
    assert ephemeral_range(None) == (49153, 65535)
    assert ephemeral_range("garbage") == (49153, 65535)
