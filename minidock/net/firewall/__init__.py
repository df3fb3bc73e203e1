"""The firewall: rules as data (`rules.Rule`, render, parse, simulate), the one
iptables-restore applier, and the generation check that notices a flushed or
changed ruleset and repairs it from what the drivers say should be there.
"""
