#!/usr/bin/env bash
# `make test-slurm`: install Slurm (apt), start a one-node cluster inside a private network
# namespace (only loopback exists there, so no daemon can reach or be reached from another
# address; slurmctld 22.05 cannot be told to bind 127.0.0.1 only), run tests/test_slurm.py
# against it through real sbatch, stop the daemons. Needs root (apt, namespaces, daemons).
#   PY=.venv/bin/python scripts/slurm/test_slurm.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
skip() { echo "make test-slurm: SKIPPED, not run: $1" >&2; exit 0; }
if [[ ${DIGIT_SLURM_NETNS:-} != 1 ]]; then
    # what the machine must allow; anything else failing below is a real failure
    [[ $(id -u) == 0 ]] || skip "needs root (apt, a network namespace, the daemons)"
    unshare --net --uts true 2>/dev/null || skip "this machine forbids network namespaces"
    scripts/slurm/install_slurm.sh || skip "slurm-wlm and munge could not be installed with apt"
    exec unshare --net --uts --fork env DIGIT_SLURM_NETNS=1 "$0" "$@"
fi
# Loopback only. A second loopback address, because getaddrinfo(AI_ADDRCONFIG), which Slurm
# uses, resolves nothing while 127.0.0.1 is the only address; the host name "localhost"
# (private to this UTS namespace) resolves to 127.0.0.1 for slurmd's NoInAddrAny.
ip link set lo up
ip addr add 127.0.0.2/8 dev lo
hostname localhost
DIR=$(mktemp -d /tmp/digit-slurm.XXXXXX)
trap 'scripts/slurm/stop_local_cluster.sh "$DIR"; rm -rf "$DIR"' EXIT
scripts/slurm/start_local_cluster.sh "$DIR"
export SLURM_CONF=$DIR/slurm.conf DIGIT_SLURM_TEST=1
"$PY" -m pytest -q -p no:cacheprovider tests/test_slurm.py "$@"
