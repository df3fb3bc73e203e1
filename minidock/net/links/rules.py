"""Legacy links' firewall rules: one ACCEPT pair per exposed port of the child.

Only needed when ICC is off (with ICC on, the bridge already accepts everything
between containers). Docker appends, to filter DOCKER, parent -> child:port with
--dport and the replies child:port -> parent with --sport (docker-facts section 1;
the article's "--dport" on both is wrong). The rule text itself comes from
`net/firewall/rules.py`, so the applier and the tests treat link rules like any other.
"""

from __future__ import annotations

from minidock.net.firewall.rules import Rule, accept_pair


def link_rules(bridge: str, parent_ip: str, child_ip: str,
               exposed: list[tuple[int, str]]) -> list[Rule]:
    """The ACCEPT pairs letting the parent reach each exposed port of the child."""
    rules: list[Rule] = []
    for port, proto in exposed:
        rules += accept_pair(bridge, parent_ip, child_ip, proto.lower(), port)
    return rules
