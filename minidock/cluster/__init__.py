"""The cluster store: what hosts running minidock share (etcd, v3 API).

`etcd.py` is a small client of etcd's JSON gateway (a plain socket: cheap enough for
the start path); `layout.py` says which keys hold what and builds the transactions;
`gstore.py` is the global-scope store the network code calls; `agent.py` is the
client (connect-or-spawn) of the per-host overlay agent that holds this host's lease
(net/drivers/overlay/agentd.py).
"""
