"""Docker's legacy plugin protocol (v1), so that network and IPAM plugins written for
Docker run under minidock unchanged: discovery (discovery.py), the wire (client.py)
and the request bodies byte for byte as Docker 20.10 sends them (api.py). The drivers
that speak it are net/drivers/remote.py and net/ipams/remote.py.
"""
