"""The kernel seams of networking: rtnetlink (links, addresses, routes), netfilter
netlink (nftables set elements, the ruleset generation), network namespaces.

Thin side-effect wrappers, each replaceable by a recording fake in unit tests. This
package imports nothing of minidock above `minidock.errors`.
"""
