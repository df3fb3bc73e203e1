"""Network drivers, each implementing `minidock.net.driverapi.Driver` (see README.md):
`null`, `host`, `bridge/`. The controller reaches them only through the registry in
driverapi.py.
"""
