"""/etc/hosts text: Docker's order, --add-host parsing, parent patching, connect lines."""


import pytest

from minidock.errors import InvalidArgument
from minidock.net.dns import etchosts

from tests.reference import REF  # noqa: E402


def test_reference_link_web_hosts():
    text = etchosts.build_hosts("79e9dd98bf98", ["172.17.0.3"],
                                links=[("172.17.0.2", "webdb e8921be29938 db")])
    assert text == (REF / "link-web-hosts.txt").read_text()


def test_order_add_hosts_links_then_networks():
    text = etchosts.build_hosts("abc", ["172.17.0.2", "10.77.0.2"],
                                extra_hosts=[("db.local", "10.0.0.9")],
                                links=[("172.17.0.5", "x y z")])
    assert text.splitlines()[6:] == ["10.0.0.9\tdb.local", "172.17.0.5\tx y z",
                                     "172.17.0.2\tabc", "10.77.0.2\tabc"]


def test_fqdn_hostname():
    assert etchosts.build_hosts("web.example.com", ["1.2.3.4"]).endswith(
        "1.2.3.4\tweb.example.com web\n")
    assert etchosts.build_hosts("web", ["1.2.3.4"], domainname="example.com").endswith(
        "1.2.3.4\tweb.example.com web\n")


def test_no_network_only_defaults():
    assert etchosts.build_hosts("abc", []) == etchosts.DEFAULT


def test_parse_add_host():
    assert etchosts.parse_add_host("db:10.0.0.9") == ("db", "10.0.0.9")
    assert etchosts.parse_add_host("v6:2001:db8::1") == ("v6", "2001:db8::1")
    assert etchosts.parse_add_host("gw:host-gateway") == ("gw", "host-gateway")
    with pytest.raises(InvalidArgument, match='^bad format for add-host: "nocolon"$'):
        etchosts.parse_add_host("nocolon")
    with pytest.raises(InvalidArgument, match='^bad format for add-host: ":1.2.3.4"$'):
        etchosts.parse_add_host(":1.2.3.4")
    with pytest.raises(InvalidArgument, match='^invalid IP address in add-host: "1.2.3"$'):
        etchosts.parse_add_host("x:1.2.3")


def test_update_parent_hosts():
    text = etchosts.build_hosts("p", ["172.17.0.3"],
                                links=[("172.17.0.2", "webdb e8921be29938 db")])
    text += "172.17.0.2\twebdbx\n172.17.0.2\twebdb.local\n"
    out = etchosts.update_parent_hosts(text, "webdb", "172.17.0.9")
    assert "172.17.0.9\twebdb e8921be29938 db\n" in out
    assert "172.17.0.2\twebdbx\n" in out          # a different name is untouched
    assert "172.17.0.9\twebdb.local\n" in out      # alias followed by '.'
    assert "172.17.0.3\tp\n" in out


def test_add_and_remove_entry():
    text = etchosts.build_hosts("abc", ["172.17.0.2"])
    added = etchosts.add_host_entry(text, "10.77.0.2", ["abc"])
    assert added.endswith("172.17.0.2\tabc\n10.77.0.2\tabc\n")
    assert etchosts.remove_host_entry(added, "10.77.0.2", "abc") == text


def test_update_parent_hosts_keeps_each_family_on_its_line():
    from minidock.net.dns.etchosts import update_parent_hosts
    text = ("172.17.0.2\tdb 72cb0732e6df web\n"
            "2001:db8:1::242:ac11:2\tdb 72cb0732e6df web\n")
    text = update_parent_hosts(text, "db", "172.17.0.4")
    text = update_parent_hosts(text, "db", "2001:db8:1::242:ac11:4")
    assert text == ("172.17.0.4\tdb 72cb0732e6df web\n"
                    "2001:db8:1::242:ac11:4\tdb 72cb0732e6df web\n")
