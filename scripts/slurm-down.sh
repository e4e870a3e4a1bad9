#!/usr/bin/env bash
# slurm-down.sh -- stop the daemons that slurm-up.sh started, and nothing else.
# It reads the pid records in /run/drosweep-slurm/owned/ (written by slurm-up.sh), checks that each pid
# still runs the expected binary (no pid-reuse accidents), sends SIGTERM, waits, SIGKILL as last resort.
# Before stopping slurmd/slurmctld it cancels the jobs still queued/running on the cluster and waits
# for them to end, so no slurmstepd/job processes are left behind.
# Idempotent: running it when nothing is up is a no-op. Works with no TTY.
#   DROSWEEP_SLURM_KEEP_JOBS=1   do not scancel jobs first
#   DROSWEEP_SLURM_TIMEOUT=30    seconds to wait for each daemon to exit
set -uo pipefail
RUN=/run/drosweep-slurm; OWN=$RUN/owned
TIMEOUT=${DROSWEEP_SLURM_TIMEOUT:-30}
log() { printf '[slurm-down %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -d "$OWN" ] || { log "nothing recorded in $OWN: nothing to stop"; exit 0; }

# shellcheck source=scripts/slurm-common.sh
. "$(dirname "$0")/slurm-common.sh"

# 1. cancel remaining jobs (only if it is our slurmctld that is up)
if [ "${DROSWEEP_SLURM_KEEP_JOBS:-0}" != 1 ] && [ -s "$OWN/slurmctld.pid" ] \
   && pid_alive "$(cat "$OWN/slurmctld.pid")" slurmctld && scontrol ping 2>/dev/null | grep -q UP; then
  jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
  if [ -n "${jobs// }" ]; then
    log "cancelling jobs: $jobs"; scancel $jobs 2>/dev/null || true
    end=$(( $(date +%s) + TIMEOUT ))
    while [ -n "$(squeue -h -t R,CG,S -o %A 2>/dev/null)" ] && [ "$(date +%s)" -lt $end ]; do sleep 0.5; done
  fi
fi

# the daemons' own pid files; slurmctld/slurmdbd (running as user slurm) cannot delete theirs in /run,
# and a stale /run/slurmctld.pid makes Debian's slurmctld prerm (apt-get remove) run scancel and fail
declare -A DAEMON_PIDFILE=([slurmd]=/run/slurmd.pid [slurmctld]=/run/slurmctld.pid [slurmdbd]=/run/slurmdbd.pid
                           [mariadbd]=$RUN/mysql/mysqld.pid [munged]=/run/munge/munged.pid)

# 2. stop daemons in reverse start order
rc=0
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  f="$OWN/$name.pid"; [ -f "$f" ] || continue
  pid=$(tr -dc 0-9 < "$f")
  if ! pid_alive "$pid" "$name"; then log "$name (pid $pid) not running"; rm -f "$f"; continue; fi  # stale record
  kill -TERM "$pid" 2>/dev/null
  end=$(( $(date +%s) + TIMEOUT ))
  while pid_alive "$pid" "$name" && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
  if pid_alive "$pid" "$name"; then
    log "$name (pid $pid) ignored SIGTERM for ${TIMEOUT}s -> SIGKILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.5
  fi
  if pid_alive "$pid" "$name"; then log "$name (pid $pid) still alive!"; rc=1; continue; fi
  log "$name (pid $pid) stopped"; rm -f "$f"
  dpf=${DAEMON_PIDFILE[$name]}
  [ -f "$dpf" ] && [ "$(tr -dc 0-9 < "$dpf")" = "$pid" ] && rm -f "$dpf"
done
exit $rc
