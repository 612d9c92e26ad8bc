#!/usr/bin/env bash
# Stop the daemons start_local_cluster.sh started from DIR (munged is left running: other
# programs may use it).
set -euo pipefail
DIR=${1:-/tmp/digit-slurm}
for daemon in slurmd slurmctld; do
    pidfile=$DIR/$daemon.pid
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
done
