# Shared by slurm-up.sh and slurm-down.sh (sourced, not run).

pid_alive() {  # pid_alive PID NAME: true if PID runs /usr/sbin/NAME (alternatives resolved; zombies = dead)
  local pid=$1 want exe
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  want=$(readlink -f "/usr/sbin/$2")                 # /usr/sbin/slurmd -> /usr/sbin/slurmd-wlm
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null); exe=${exe% (deleted)}
  [ "$exe" = "$want" ]
}
