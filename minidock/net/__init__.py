"""Networking as the article's CNM (Container Network Model): networks, endpoints,
sandboxes, drivers and IPAM.

    api.py            what the runtime calls (validate, initialize, prestart, release)
    connect.py        network connect / disconnect
    controller.py     networks: initialise, create, remove (boot.py: already done?)
    network.py        a network's record;  endpoint.py: an endpoint's record
    attach.py         endpoints allocated, joined to a sandbox, released
    sandbox.py        a container's netns, and the interface a driver's join answers
    driverapi.py      the Driver and IPAM protocols and their registry
    ipam.py           pool and address arithmetic (pure)
    validate.py       every network flag of create, before any side effect
    repair.py         orphans and dead owners;  restore.py: a flushed firewall
    drivers/          null, host, bridge/ (see drivers/README.md);  ipams/: default
    links/            legacy links;  dns/: names;  ports/: -p and the proxy
    firewall/         rules as data, the applier, drift;  kernel/: netlink, netns

Imports run downwards in that list (checked by lint-imports, pyproject.toml); nothing
here imports a concrete driver: they are found by name through driverapi.
"""
