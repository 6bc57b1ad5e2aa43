#!/bin/sh
# /docker-entrypoint.d/40-follow-upstreams.sh in the gateway image: keeps
# the `server` lines of each upstream group equal to the addresses its name
# has NOW in Docker's DNS, and reloads nginx when they change. So the gateway
# follows replicas that come and go (compose re-creating one, a Swarm
# rolling update, a task killed and replaced, `docker service scale`) with
# no restart.
#
#   GATEWAY_FOLLOW_NAMES  space-separated NAME:PORT, e.g. "client_service:8000
#                         order_service:8001"; for each, this script writes
#                         /etc/nginx/rendered/upstreams/NAME.conf, one
#                         `server ADDRESS:PORT <params>;` line per address
#                         (`include`d by the upstream group: see
#                         GATEWAY_*_SERVERS in the Dockerfile). Empty: does
#                         nothing (Kubernetes: each name is a Service's
#                         ClusterIP, which never changes).
#   GATEWAY_FOLLOW_SECS   how often the names are looked up (default 1)
#
# The official image's entrypoint runs this before nginx starts: the files
# are written once (nginx needs them to start), then a loop in the
# background looks the names up every GATEWAY_FOLLOW_SECS and, when a file
# changed, sends SIGHUP to nginx (PID 1 once the entrypoint has exec'd it).
#
# Why a reload, and not nginx's own `resolve` on the server lines (nginx
# 1.27.3+): with `resolve`, a request whose first try failed is NOT passed to
# another server when the group's addresses changed while it was in flight
# (nginx drops the retry). When a task is killed, its address stops
# answering (connections time out, 2 s) and leaves the DNS at about the same
# time, so the requests sent to it in those seconds failed: 4 of 860 reads
# in make swarm-test's step 2 (a SIGKILLed task). A reload instead starts
# new workers with the new servers, and lets the old ones finish their
# requests, retries included, with the servers they had: 0 failed.
set -eu

names="${GATEWAY_FOLLOW_NAMES:-}"
[ -n "$names" ] || exit 0
every="${GATEWAY_FOLLOW_SECS:-1}"
dir=/etc/nginx/rendered/upstreams
# The failover parameters of every server line: KEEP IN SYNC with
# server_params in gateway/render.sh (scripts/deploy/check-deploy.sh checks).
params="max_fails=2 fail_timeout=2s"

say() { echo "follow-upstreams: $*" >&2; }

# servers NAME PORT: the group's server lines, one per IPv4 address of NAME,
# sorted (the DNS answers in any order). None (the service is starting, or
# has no task): one server marked down, as nginx needs at least one; the
# group answers 502 at once until a task is there.
servers() {
    addresses="$(getent hosts "$1" 2>/dev/null | awk '$1 ~ /^[0-9.]+$/ { print $1 }' | sort -u)"
    if [ -z "$addresses" ]; then
        echo "server 127.0.0.1:$2 down; # $1 has no address yet"
        return
    fi
    for address in $addresses; do
        echo "server $address:$2 $params;"
    done
}

# write_files: each group's file written again; true when one changed.
write_files() {
    changed=1
    for spec in $names; do
        name="${spec%:*}"
        port="${spec##*:}"
        servers "$name" "$port" >"$dir/$name.conf.new"
        if cmp -s "$dir/$name.conf.new" "$dir/$name.conf"; then
            rm -f "$dir/$name.conf.new"
        else
            mv -f "$dir/$name.conf.new" "$dir/$name.conf"
            say "$name: $(grep -c 'server [0-9]' "$dir/$name.conf" || true) address(es): $(awk '{ printf "%s ", $2 }' "$dir/$name.conf")"
            changed=0
        fi
    done
    return "$changed"
}

mkdir -p "$dir"
write_files || true
say "following $names every ${every}s"
(
    while sleep "$every"; do
        if write_files; then
            say "reloading nginx"
            # (PID 1 is the entrypoint until it has exec'd nginx.)
            if [ "$(cat /proc/1/comm 2>/dev/null)" = nginx ]; then
                kill -HUP 1 || say "cannot signal nginx (PID 1)"
            fi
        fi
    done
) </dev/null &
