"""The overlay driver: one network across hosts over VXLAN, etcd as the cluster store
(driver.py: the verbs; agent.py / agentd.py: the per-host agent; datapath.py: the
kernel objects; records.py: endpoint records shared by both)."""

from minidock.net.drivers.overlay.driver import DRIVER

__all__ = ["DRIVER"]
