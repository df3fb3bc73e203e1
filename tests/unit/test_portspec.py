"""Port specs: Docker's -p forms and errors, --expose, the ephemeral range."""

import pytest

from minidock.errors import InvalidArgument
from minidock.net.ports.portspec import (PortBinding, ephemeral_range, parse_expose, parse_publish,
                                   port_key)


@pytest.mark.parametrize("spec, expected", [
    ("8080:80", [PortBinding("tcp", 80, "0.0.0.0", 8080)]),
    ("80", [PortBinding("tcp", 80, "0.0.0.0", 0)]),
    ("127.0.0.1:8080:80", [PortBinding("tcp", 80, "127.0.0.1", 8080)]),
    ("127.0.0.1::80", [PortBinding("tcp", 80, "127.0.0.1", 0)]),
    ("53:53/udp", [PortBinding("udp", 53, "0.0.0.0", 53)]),
    ("9:9/SCTP", [PortBinding("sctp", 9, "0.0.0.0", 9)]),
    ("80/", [PortBinding("tcp", 80, "0.0.0.0", 0)]),
    ("[::1]:8080:80", [PortBinding("tcp", 80, "::1", 8080)]),
    ("8000-8002:80-82", [PortBinding("tcp", 80, "0.0.0.0", 8000),
                         PortBinding("tcp", 81, "0.0.0.0", 8001),
                         PortBinding("tcp", 82, "0.0.0.0", 8002)]),
    ("80-81", [PortBinding("tcp", 80, "0.0.0.0", 0), PortBinding("tcp", 81, "0.0.0.0", 0)]),
    ("8000-8010:80", [PortBinding("tcp", 80, "0.0.0.0", 8000, 8010)]),
])
def test_forms(spec, expected):
    assert parse_publish(spec) == expected


def test_default_ip():
    assert parse_publish("8080:80", "10.0.0.1") == [PortBinding("tcp", 80, "10.0.0.1", 8080)]
    assert parse_publish("0.0.0.0:8080:80", "10.0.0.1")[0].host_ip == "0.0.0.0"


@pytest.mark.parametrize("spec, message", [
    ("8000-8002:80-81", "Invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
    ("8000:80-82", "Invalid ranges specified for container and host Ports: 80-82 and 8000"),
    ("x:80", "Invalid hostPort: x"),
    ("8080:x", "Invalid containerPort: x"),
    ("8080:70000", "Invalid containerPort: 70000"),
    ("8080:0", "Invalid containerPort: 0"),
    ("8080:82-80", "Invalid containerPort: 82-80"),
    ("8080:80/icmp", "Invalid proto: icmp"),
    ("1.2.3:8080:80", "Invalid ip address: 1.2.3"),
    ("8080:", "No port specified: 8080:<empty>"),
])
def test_errors(spec, message):
    with pytest.raises(InvalidArgument) as exc:
        parse_publish(spec)
    assert str(exc.value) == message


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
