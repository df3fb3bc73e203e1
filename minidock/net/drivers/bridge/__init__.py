"""The bridge driver (driver.py): a Linux bridge per network, a veth pair per endpoint;
its kernel steps (setup.py), its iptables rules as data (rules.py) and the
anti-spoofing guard of each port (antispoof.py).
"""
