#!/usr/bin/env bash
# Debian's Slurm (slurm-wlm 22.05 on bookworm) and munge, with apt, unless already installed.
set -euo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    exit 0
fi
echo "install_slurm: installing slurm-wlm and munge with apt" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
