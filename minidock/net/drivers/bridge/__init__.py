"""The bridge driver (driver.py): a Linux bridge per network, a veth pair per endpoint,
its iptables rules and the anti-spoofing guard of each port (antispoof.py).
"""
