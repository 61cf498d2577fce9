#!/usr/bin/env bash
# A real one-machine Slurm cluster (munged + slurmctld + slurmd) in a scratch folder: for trying the worker under
# srun --mpi=pmix, and for the tests (tests/integration/slurm_test.cc). Usage: slurm/local-cluster.sh start DIR | stop DIR.
# Then: export SLURM_CONF=DIR/slurm.conf. Needs slurm-wlm and munge (apt; scripts/install-deps.sh). Recipe measured in
# ../shared/PLATFORM.md (no systemd, no cgroups). Several clusters can run at once (each its own DIR and ports).
# Environment:
#   CADENZA_SLURM_CPUS     CPUs the node offers (default: nproc; more than the machine has oversubscribes its cores)
#   CADENZA_SLURM_PORT     slurmctld's port; slurmd takes the next (default: the first free pair from 16817 up)
#   CADENZA_SLURM_CRED_EXPIRE  seconds before a requeued job may start again (Slurm's default 120; default here 5)
set -euo pipefail
cmd=${1:?usage: local-cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: local-cluster.sh start|stop DIR}")
if [ "$cmd" = stop ]; then
  for f in slurmd.pid slurmctld.pid munged.pid; do
    [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null || true
  done
  # Until they are gone (a new cluster on the same ports must be able to bind them).
  for f in slurmd.pid slurmctld.pid munged.pid; do
    [ -f "$dir/$f" ] || continue
    for _ in $(seq 1 50); do kill -0 "$(cat "$dir/$f")" 2>/dev/null || break; sleep 0.1; done
  done
  exit 0
fi
command -v slurmctld >/dev/null || { echo "local-cluster: slurm-wlm is not installed (apt-get install slurm-wlm munge, or scripts/install-deps.sh)"; exit 1; }
command -v munged >/dev/null || { echo "local-cluster: munge is not installed (apt-get install munge, or scripts/install-deps.sh)"; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${CADENZA_SLURM_PORT:-}
if [ -z "$port" ]; then
  port=16817
  while ! { port_free "$port" && port_free $((port + 1)); }; do port=$((port + 2)); done
fi
mkdir -p "$dir"/{munge,spool/localhost,state,tmp/localhost,log}
chown munge:munge "$dir/munge" && chmod 755 "$dir/munge"
[ -f /etc/munge/munge.key ] || { /usr/sbin/mungekey -c 2>/dev/null || create-munge-key -f; }
runuser -u munge -- munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
cp "$dir/munge/munged.pid" "$dir/munged.pid"
: > "$dir/plugstack.conf"
cpus=${CADENZA_SLURM_CPUS:-$(nproc)}
cat > "$dir/slurm.conf" <<CONF
ClusterName=cadenza
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=${CADENZA_SLURM_CRED_EXPIRE:-5}
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmdParameters=config_overrides
SchedulerParameters=bf_interval=1,sched_interval=1
MailProg=/bin/true
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
  sinfo -h -o %T 2>/dev/null | grep -q idle && { echo "local-cluster: up, $cpus CPUs, port $port (export SLURM_CONF=$SLURM_CONF)"; exit 0; }
  sleep 0.2
done
echo "local-cluster: the node did not become idle; see $dir/log"; exit 1
