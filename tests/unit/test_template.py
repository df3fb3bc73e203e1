"""The Go-template subset of `inspect -f`."""

import pytest

from minidock.errors import InvalidArgument
from minidock.runtime.template import render

DOC = {"Name": "/web", "State": {"Pid": 42, "Running": True},
       "Config": {"Env": ["A=1", "B=2"], "Labels": {}},
       "NetworkSettings": {"IPAddress": "172.17.0.2", "Ports": {"80/tcp": None},
                           "Networks": {"bridge": {"IPAddress": "172.17.0.2"},
                                        "net1": {"IPAddress": "10.0.0.2"}}}}


@pytest.mark.parametrize("tpl,out", [
    ("{{.State.Pid}}", "42"),
    ("{{.Name}}", "/web"),
    ("{{.NetworkSettings.IPAddress}}", "172.17.0.2"),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    ("{{.Config.Env | json}}", '["A=1","B=2"]'),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
     "bridge=172.17.0.2 net1=10.0.0.2 "),
    ('{{index .NetworkSettings.Networks "net1"}}', "map[IPAddress:10.0.0.2]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Missing}}", "<no value>"),
    ("{{.NetworkSettings.Ports}}", "map[80/tcp:<nil>]"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ('{{join .Config.Env ","}}', "A=1,B=2"),
    ("a {{- .State.Pid -}} b", "a42b"),
    ("{{json .Config.Labels}}", "{}"),
    ('{{printf "%s:%d" .Name .State.Pid}}', "/web:42"),
    ("{{range $e := .Config.Env}}{{$e}};{{end}}", "A=1;B=2;"),
    ("{{$.Name}}", "/web"),
])
def test_render(tpl, out):
    assert render(tpl, DOC) == out


def test_errors():
    with pytest.raises(InvalidArgument):
        render("{{range .Config.Env}}", DOC)
    with pytest.raises(InvalidArgument):
        render("{{nosuchfunc .Name}}", DOC)
    with pytest.raises(InvalidArgument, match="can't evaluate field X"):
        render("{{.Name.X}}", DOC)
