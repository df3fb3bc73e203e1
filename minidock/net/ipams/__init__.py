"""IPAM drivers, each implementing `minidock.net.driverapi.IPAM`: `default` (claims in
the local store). The controller reaches them only through driverapi.get_ipam."""
