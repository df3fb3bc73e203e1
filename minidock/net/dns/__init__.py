"""Name resolution of containers: the files (/etc/hostname, /etc/hosts,
/etc/resolv.conf), the records of user networks, the DNS wire format, the forwarder,
and the embedded resolver with its per-host daemon.
"""
