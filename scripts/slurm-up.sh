#!/usr/bin/env bash
# slurm-up.sh -- bring up a single-node SLURM 22.05 cluster on this Debian 12 machine for drosweep's
# integration tests (tests/integration), WITHOUT systemd: munged, mariadbd + slurmdbd (real sacct,
# which `drosweep status` reads), slurmctld, slurmd as plain background daemons.
# Partitions: 'debug' (default, preemptible: REQUEUE) and 'urgent' (higher tier, preempts 'debug').
# Idempotent: re-running while the cluster is up is a no-op (or a restart if the config changed).
# Must run as root. Works with no TTY (bash slurm-up.sh < /dev/null).
#
# Environment knobs (all optional):
#   DROSWEEP_SLURM_FAKE_GPUS=2               number of fake GRES gpus on the node (0 = none)
#   DROSWEEP_SLURM_CPUS=<n>                  advertise n CPUs instead of the real count (SlurmdParameters=config_overrides)
#   DROSWEEP_SLURM_PARTITION=debug           name of the default partition
#   DROSWEEP_SLURM_INSTALL=1                 apt-get install missing packages (0 = fail if missing)
#   DROSWEEP_SLURM_FRESH=0                   1 = wipe slurmctld/slurmd state (job ids restart at 1) and the accounting DB
#   DROSWEEP_SLURM_TIMEOUT=60                seconds to wait for each daemon / the node to become ready
set -euo pipefail

ACCOUNTING=slurmdbd   # drosweep status reads sacct: accounting is not optional
FAKE_GPUS=${DROSWEEP_SLURM_FAKE_GPUS:-2}
PARTITION=${DROSWEEP_SLURM_PARTITION:-debug}
INSTALL=${DROSWEEP_SLURM_INSTALL:-1}
FRESH=${DROSWEEP_SLURM_FRESH:-0}
TIMEOUT=${DROSWEEP_SLURM_TIMEOUT:-60}

RUN=/run/drosweep-slurm              # our pid records ("owned/") + fake gpu devices + mariadb socket
LIB=/var/lib/drosweep-slurm          # private MariaDB datadir
LOG=/var/log/slurm             # Debian's slurm log dir
OWN=$RUN/owned                 # pid files of daemons THIS script started (used by slurm-down.sh)
DBPORT=3307                    # private MariaDB on 127.0.0.1:3307 (does not clash with a system one on 3306)
DBPASS=drosweep-db-pass         # local-only DB password (loopback only)

log() { printf '[slurm-up %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
T0=$(date +%s.%N)

# ---------------------------------------------------------------- packages
PKGS=(munge slurmctld slurmd slurm-client)
[ "$ACCOUNTING" = slurmdbd ] && PKGS+=(slurmdbd mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$INSTALL" = 1 ] || die "missing packages: ${missing[*]}"
  log "installing: ${missing[*]}"
  # keep apt from starting the services through init scripts (there is no systemd)
  tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; tmp_policy=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /tmp/drosweep-slurm-apt.log 2>&1 \
    || { tail -30 /tmp/drosweep-slurm-apt.log >&2; die "apt-get install failed"; }
  [ $tmp_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# ---------------------------------------------------------------- helpers
# shellcheck source=scripts/slurm-common.sh
. "$(dirname "$0")/slurm-common.sh"
pidfile_alive() { [ -s "$1" ] && pid_alive "$(tr -dc 0-9 < "$1")" "$2"; }
wait_for() {  # wait_for DESCRIPTION CMD...
  local what=$1; shift; local end=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt $end ] || die "timed out waiting for $what"
    sleep 0.2
  done
}
own() { cp "$2" "$OWN/$1.pid"; }   # record that we started daemon $1 (pid taken from its own pid file)
stop_pidfile() {  # stop_pidfile PIDFILE EXE  (used only to restart after a config change)
  local pf=$1 exe=$2 end=$(( $(date +%s) + TIMEOUT ))
  pidfile_alive "$pf" "$exe" || return 0
  kill "$(tr -dc 0-9 < "$pf")" 2>/dev/null || true
  while pidfile_alive "$pf" "$exe"; do [ "$(date +%s)" -lt $end ] || die "$exe did not stop"; sleep 0.2; done
}

mkdir -p "$RUN" "$OWN" "$LOG" "$LIB"
chmod 755 "$RUN"; chown root:root "$RUN"

# ---------------------------------------------------------------- hostname / hardware
NODE=$(hostname -s)
getent hosts "$NODE" >/dev/null || { log "adding $NODE to /etc/hosts"; echo "127.0.0.1 $NODE" >> /etc/hosts; }
HW=$(slurmd -C | head -1)
hw() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(hw CPUs); BOARDS=$(hw Boards); SOCKETS=$(hw SocketsPerBoard); CORES=$(hw CoresPerSocket); THREADS=$(hw ThreadsPerCore)
MEM=$(( $(hw RealMemory) * 90 / 100 ))          # leave 10% headroom, else node is drained "Low RealMemory"
NODE_HW="CPUs=$CPUS Boards=$BOARDS SocketsPerBoard=$SOCKETS CoresPerSocket=$CORES ThreadsPerCore=$THREADS"
EXTRA=""
if [ -n "${DROSWEEP_SLURM_CPUS:-}" ]; then            # oversubscribe on purpose (e.g. 8 "CPUs" on a 2-core box)
  NODE_HW="CPUs=$DROSWEEP_SLURM_CPUS"; EXTRA="SlurmdParameters=config_overrides"
fi
GRES_NODE=""; GRES_TYPES=""; ACCT_TRES=""
if [ "$FAKE_GPUS" -gt 0 ]; then
  mkdir -p "$RUN/dev"
  for ((i = 0; i < FAKE_GPUS; i++)); do      # dummy char devices (same major/minor as /dev/null)
    [ -c "$RUN/dev/fakegpu$i" ] || mknod -m 666 "$RUN/dev/fakegpu$i" c 1 3
  done
  GRES_NODE="Gres=gpu:$FAKE_GPUS"; GRES_TYPES="GresTypes=gpu"; ACCT_TRES="AccountingStorageTRES=gres/gpu"
fi

# ---------------------------------------------------------------- config files
if [ "$ACCOUNTING" = slurmdbd ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
$ACCT_TRES
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MinJobAge=300"
fi

NEW_CONF=$(cat <<EOF
# generated by slurm-up.sh -- single-node test cluster
ClusterName=drosweep
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no systemd / no cgroup delegation here -> track processes via /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# fast turnaround for tests: schedule on every event, short kill wait, short requeue hold
SchedulerParameters=batch_sched_delay=0,bf_interval=5,sched_interval=10
KillWait=5
# cred_expire also = how long a requeued job is held before it may start again (default 120 s).
# keep it > KillWait + cleanup, else a requeued job can start while its old processes still exist.
AuthInfo=cred_expire=20
ReturnToService=2
MaxArraySize=10001
MaxJobCount=100000
MailProg=/bin/true
# preemption: jobs in partition '$PARTITION' are requeued when an 'urgent' job needs their resources;
# the job's --signal (submitit: USR2) is sent at preemption time
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
$GRES_TYPES
$EXTRA
$ACCT
NodeName=$NODE NodeHostname=$NODE NodeAddr=127.0.0.1 $NODE_HW RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=20
PartitionName=urgent Nodes=$NODE MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
)
NEW_GRES=$( [ "$FAKE_GPUS" -gt 0 ] && printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/fakegpu[0-%d]\n' "$NODE" "$RUN" $((FAKE_GPUS - 1)) || true)
NEW_DBD=$(cat <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
)
CHANGED=0
put() {  # put FILE CONTENT MODE OWNER
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then printf '%s\n' "$2" > "$1"; CHANGED=1; fi
  chmod "$3" "$1"; chown "$4" "$1"
}
mkdir -p /etc/slurm
put /etc/slurm/slurm.conf "$NEW_CONF" 644 root:root
if [ "$FAKE_GPUS" -gt 0 ]; then put /etc/slurm/gres.conf "$NEW_GRES" 644 root:root
elif [ -f /etc/slurm/gres.conf ]; then rm -f /etc/slurm/gres.conf; CHANGED=1; fi
[ "$ACCOUNTING" = slurmdbd ] && put /etc/slurm/slurmdbd.conf "$NEW_DBD" 600 slurm:slurm


# ---------------------------------------------------------------- state / log dirs
for d in /var/lib/slurm/slurmctld /var/lib/slurm/slurmd "$LOG"; do mkdir -p "$d"; chown slurm:slurm "$d"; done
if [ "$FRESH" = 1 ]; then
  pidfile_alive /run/slurmctld.pid slurmctld && die "DROSWEEP_SLURM_FRESH=1 needs the cluster down (run slurm-down.sh)"
  log "wiping slurm state"; rm -rf /var/lib/slurm/slurmctld/* /var/lib/slurm/slurmd/*
fi

# ---------------------------------------------------------------- munge
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"; dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
if pidfile_alive /run/munge/munged.pid munged; then
  log "munged already running (pid $(cat /run/munge/munged.pid))"
else
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid </dev/null >/dev/null 2>&1
  wait_for "munged" bash -c 'munge -n | unmunge'
  own munged /run/munge/munged.pid; log "munged started (pid $(cat /run/munge/munged.pid))"
fi

# ---------------------------------------------------------------- mariadb + slurmdbd
if [ "$ACCOUNTING" = slurmdbd ]; then
  install -d -o mysql -g mysql -m 0755 "$RUN/mysql"
  if [ "$FRESH" = 1 ] && ! pidfile_alive "$RUN/mysql/mysqld.pid" mariadbd; then rm -rf "$LIB/mysql"; fi
  if [ ! -d "$LIB/mysql/mysql" ]; then
    log "initialising private MariaDB datadir $LIB/mysql"
    mariadb-install-db --no-defaults --user=mysql --datadir="$LIB/mysql" --auth-root-authentication-method=socket \
      --skip-test-db >/tmp/drosweep-slurm-mariadb-install.log 2>&1 || { cat /tmp/drosweep-slurm-mariadb-install.log >&2; die "mariadb-install-db failed"; }
  fi
  MYSOCK="$RUN/mysql/mysqld.sock"
  if pidfile_alive "$RUN/mysql/mysqld.pid" mariadbd; then
    log "mariadbd already running"
  else
    setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$LIB/mysql" --socket="$MYSOCK" \
      --pid-file="$RUN/mysql/mysqld.pid" --bind-address=127.0.0.1 --port=$DBPORT --skip-name-resolve \
      --log-error="$LIB/mysql/mariadb.err" --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
      --max-connections=50 </dev/null >/dev/null 2>&1 &
    wait_for "mariadbd" mariadb-admin --no-defaults --socket="$MYSOCK" -uroot ping
    wait_for "mariadbd pid file" test -s "$RUN/mysql/mysqld.pid"
    own mariadbd "$RUN/mysql/mysqld.pid"; log "mariadbd started (pid $(cat "$RUN/mysql/mysqld.pid"))"
  fi
  mariadb --no-defaults --socket="$MYSOCK" -uroot <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
  if pidfile_alive /run/slurmdbd.pid slurmdbd && [ $CHANGED = 0 ]; then
    log "slurmdbd already running"
  else
    stop_pidfile /run/slurmdbd.pid slurmdbd
    /usr/sbin/slurmdbd </dev/null >/dev/null 2>&1
    wait_for "slurmdbd pid file" pidfile_alive /run/slurmdbd.pid slurmdbd
    wait_for "slurmdbd" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
    own slurmdbd /run/slurmdbd.pid; log "slurmdbd started (pid $(cat /run/slurmdbd.pid))"
  fi
fi

# ---------------------------------------------------------------- slurmctld + slurmd
start_slurm() {  # start_slurm NAME PIDFILE
  local name=$1 pf=$2
  if pidfile_alive "$pf" "$name"; then
    if [ $CHANGED = 0 ]; then log "$name already running"; return; fi
    log "config changed: restarting $name"; stop_pidfile "$pf" "$name"
  fi
  rm -f "$pf"
  "/usr/sbin/$name" </dev/null >/dev/null 2>&1
  wait_for "$name pid file" pidfile_alive "$pf" "$name"
  own "$name" "$pf"; log "$name started (pid $(cat "$pf"))"
}
start_slurm slurmctld /run/slurmctld.pid
wait_for "slurmctld" bash -c 'scontrol ping | grep -q UP'
start_slurm slurmd /run/slurmd.pid

# ---------------------------------------------------------------- node ready?
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }
end=$(( $(date +%s) + TIMEOUT ))
while :; do
  st=$(node_state)
  case "$st" in
    idle|mixed|allocated|completing) break;;
    *drain*|down*|*fail*|inval*)   # leftover DOWN/DRAIN from an earlier session: clear it
      log "node state '$st' ($(sinfo -h -n "$NODE" -o %E)) -> resume"
      scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true;;
  esac
  [ "$(date +%s)" -lt $end ] || die "node $NODE not ready (state '$st'); see $LOG/slurmctld.log $LOG/slurmd.log"
  sleep 0.3
done
if [ "$ACCOUNTING" = slurmdbd ]; then
  wait_for "cluster registered in slurmdbd" bash -c 'sacctmgr -n -P show cluster format=cluster | grep -qx drosweep'
fi
log "cluster up: node $NODE state $(node_state), accounting=$ACCOUNTING, fake gpus=$FAKE_GPUS ($(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
sinfo
