"""Published ports: `-p` specs, the host-port allocator (claims in the store), and the
userland proxy (its client, protocol, relay and per-host daemon).
"""
