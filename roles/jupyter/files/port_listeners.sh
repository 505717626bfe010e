#!/bin/bash
# Print the TCP listeners on port $1 that are not the published port of container $2.
# Docker publishes a container's port through a docker-proxy process started with
# "-container-ip <the container's address>"; such a listener is the container's own.
set -euo pipefail
port=$1
container=$2
ours=""
if command -v docker >/dev/null 2>&1; then
    ours=$(docker container inspect --format \
        '{{if .State.Running}}{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}{{end}}' \
        "$container" 2>/dev/null || true)
fi
ss -ltnpH "sport = :$port" | while IFS= read -r line; do
    mine=no
    for pid in $(grep -o 'pid=[0-9]*' <<<"$line" | cut -d= -f2); do
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        for ip in $ours; do
            case "$cmd " in
                *docker-proxy*" -container-ip $ip "*) mine=yes ;;
            esac
        done
    done
    if [ "$mine" = no ]; then
        printf '%s\n' "$line"
    fi
done
