#!/usr/bin/env bash
# `make demo`: the article's db/web link example on a throwaway "demo host".
#
# Everything runs inside a fresh network namespace (the demo host) with its own
# --root and --exec-root, so the machine's own network is never touched; the trap
# removes all of it at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
MD="$PWD/.venv/bin/minidock"
NS="minidock-demo-$$"
DIR=$(mktemp -d /tmp/minidock-demo.XXXXXX)
export MINIDOCK_ROOT="$DIR/root" MINIDOCK_EXEC_ROOT="$DIR/run"
unset MINIDOCK_CONFIG

in_host() { nsenter --net="/run/netns/$NS" "$@"; }
md() { in_host "$MD" "$@"; }
title() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; }

cleanup() {
  set +e
  ids=$(md ps -aq 2>/dev/null)
  [ -n "$ids" ] && md rm -f $ids >/dev/null 2>&1
  md network prune -f >/dev/null 2>&1
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  grep -o " $DIR[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  for l in /run/netns/*; do [ -L "$l" ] && case "$(readlink "$l")" in "$DIR"*) rm -f "$l";; esac; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT

ip netns add "$NS"
in_host ip link set lo up
mkdir -p "$MINIDOCK_ROOT"
# The article's setting: inter-container communication off, links open what is needed.
echo '{"icc": false}' > "$MINIDOCK_ROOT/daemon.json"

title "A demo host: network namespace $NS, root $MINIDOCK_ROOT"
md image load -i build/busybox.tar
md image load -i build/training-postgres.tar
md image ls

title "1. What a container is"
show "minidock run --rm busybox sh -c 'hostname; ls -l /proc/self/ns; ps; grep Cap /proc/self/status'"
md run --rm busybox sh -c 'echo "hostname: $(hostname)"; ls -l /proc/self/ns | sed -n "2,20p" | awk "{print \$9, \$10, \$11}"; ps; grep -E "Cap|NoNewPrivs" /proc/self/status'

title "2. The article's link example (icc=false)"
show "minidock run -d --name db training/postgres"
md run -d --name db training/postgres
show "minidock run -d --name web --link db:webdb busybox sleep 3600"
md run -d --name web --link db:webdb busybox sleep 3600
md ps

title "web's link variables"
md exec web env | grep '^WEBDB_' | sort
title "web's /etc/hosts"
md exec web cat /etc/hosts
title "the ACCEPT pair in iptables-save (filter MINIDOCK chain)"
in_host iptables-save -t filter | grep -- '-A MINIDOCK ' || true
title "web reaches db's exposed port by alias; ping is dropped (icc=false)"
md exec web sh -c 'echo | nc -w 2 webdb 5432'
md exec web sh -c 'ping -c1 -W1 webdb >/dev/null 2>&1 && echo "ping: answered" || echo "ping: dropped"'

title "3. A published port on the default bridge"
show "minidock run -d --name webapp -p 8080:80 busybox httpd -f -p 80 -h /etc"
md run -d --name webapp -p 8080:80 busybox sh -c 'mkdir -p /www && echo "hello from a minidock container" > /www/index.html && exec httpd -f -p 80 -h /www'
md port webapp
show "curl http://127.0.0.1:8080/   (from the demo host)"
in_host curl -s --max-time 5 http://127.0.0.1:8080/

title "What minidock built: the bridge, the veths, the NAT rules"
in_host ip -br addr show minidock0
in_host ip -br link show type veth
in_host iptables-save -t nat | grep -E 'MINIDOCK|minidock0'

title "Cleaning up"
md rm -f web db webapp
echo "done: the demo host and everything in it are removed on exit"
