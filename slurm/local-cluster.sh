#!/usr/bin/env bash
# A real one-machine Slurm cluster (munged + slurmctld + slurmd) in a scratch folder, for trying the worker
# under srun --mpi=pmix. Usage: slurm/local-cluster.sh start DIR | stop DIR. Then: export SLURM_CONF=DIR/slurm.conf
# Needs slurm-wlm and munge (apt). Recipe measured in ../shared/PLATFORM.md (no systemd, no cgroups).
set -euo pipefail
cmd=${1:?usage: local-cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: local-cluster.sh start|stop DIR}")
if [ "$cmd" = stop ]; then
  for f in slurmd.pid slurmctld.pid munged.pid; do
    [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true
  done
  exit 0
fi
command -v slurmctld >/dev/null || { echo "local-cluster: slurm-wlm is not installed (apt-get install slurm-wlm munge)"; exit 1; }
mkdir -p "$dir"/{munge,spool/localhost,state,tmp/localhost,log}
chown munge:munge "$dir/munge" && chmod 755 "$dir/munge"
[ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey -c 2>/dev/null || create-munge-key -f; }
runuser -u munge -- munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
cp "$dir/munge/munged.pid" "$dir/munged.pid"
: > "$dir/plugstack.conf"
cpus=$(nproc)
cat > "$dir/slurm.conf" <<CONF
ClusterName=cadenza
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
TmpFS=$dir/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
PlugStackConfig=$dir/plugstack.conf
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 1 50); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && { echo "local-cluster: up (export SLURM_CONF=$SLURM_CONF)"; exit 0; }
  sleep 0.2
done
echo "local-cluster: the node did not become idle; see $dir/log"; exit 1
