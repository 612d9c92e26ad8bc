#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for `make test-slurm` (and for trying the batch
# scripts by hand): Debian's slurm-wlm (22.05) and munge, started without systemd.
#
#   scripts/slurm/start_local_cluster.sh [DIR]     # default DIR: /tmp/digit-slurm
#   export SLURM_CONF=DIR/slurm.conf               # then sbatch, squeue, scontrol, ... use it
#   scripts/slurm/stop_local_cluster.sh [DIR]
#
# Addresses are 127.0.0.1 (SlurmctldHost, NodeAddr); slurmd binds NodeAddr only
# (CommunicationParameters=NoInAddrAny), but slurmctld 22.05 has no bind-address setting and
# listens on every interface: run this inside a private network namespace where loopback is the
# only one, as `make test-slurm` does (scripts/slurm/test_slurm.sh: `unshare --net`). The
# plugins that need cgroups are off (proctrack/linuxproc, task/none, no accounting). The node
# offers max(4, cores) CPUs (config_overrides), so a merge job can start next to array tasks
# on a small machine. AuthInfo=cred_expire=30: a requeued job waits cred_expire + 1 s before it
# may start again (120 s by default), which a test of requeueing should not spend. Needs root
# (apt, munged as user munge, slurmd). Installs slurm-wlm and
# munge with apt when missing (install_slurm.sh). Idempotent: a cluster already running from
# DIR is left as it is.
set -euo pipefail

DIR=${1:-/tmp/digit-slurm}
CTLD_PORT=${DIGIT_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${DIGIT_SLURMD_PORT:-6818}
NODE=localhost

"$(dirname "$0")/install_slurm.sh"

mkdir -p "$DIR"/{state,spool,log}
CONF=$DIR/slurm.conf
CPUS=$(( $(nproc) > 4 ? $(nproc) : 4 ))
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

cat >"$CONF" <<EOF
# written by scripts/slurm/start_local_cluster.sh: one node, everything on 127.0.0.1
ClusterName=digit-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
CommunicationParameters=NoInAddrAny
AuthType=auth/munge
AuthInfo=cred_expire=30
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=600
KillWait=5
JobRequeue=1
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge: the system daemon (its default socket is what Slurm's auth/munge talks to)
if ! pgrep -x munged >/dev/null; then
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null || { echo "start_local_cluster: munge does not work" >&2; exit 1; }

export SLURM_CONF=$CONF
running "$DIR/slurmctld.pid" || /usr/sbin/slurmctld -f "$CONF" -i
running "$DIR/slurmd.pid" || /usr/sbin/slurmd -f "$CONF" -N "$NODE"

# wait until the node takes jobs
for _ in $(seq 60); do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    case $state in
        idle | mix | alloc) echo "start_local_cluster: up ($CONF, node $NODE $state)"; exit 0 ;;
        down* | drain* | inval*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 1
done
echo "start_local_cluster: the node did not come up; see $DIR/log/" >&2
exit 1
