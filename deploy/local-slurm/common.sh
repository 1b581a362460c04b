# shellcheck shell=bash disable=SC2034  # the variables set here are used by up and down
# Sourced by deploy/local-slurm/up and deploy/local-slurm/down: the STATE_DIR layout and the
# pid-file checks. Expects log() and die() to be defined by the caller.

# Default STATE_DIR: same scheme as deploy/dev/test uses for deploy/postgres/up.
default_state_dir() {
    local repo_id
    repo_id="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd | sha256sum | cut -c1-8)"
    printf '%s/orchestrator-slurm-%s\n' "${TMPDIR:-/tmp}" "$repo_id"
}

# set_paths STATE_DIR (must exist): everything up/down read or write.
set_paths() {
    STATE_DIR="$(cd -- "$1" && pwd -P)"
    RUN_DIR="$STATE_DIR/run"            # pid files, sockets
    LOG_DIR="$STATE_DIR/log"
    SLURM_CONF_FILE="$STATE_DIR/slurm.conf"
    SLURMDBD_CONF_FILE="$STATE_DIR/slurmdbd.conf"   # slurmdbd finds it next to $SLURM_CONF
    SSHD_CONFIG="$STATE_DIR/sshd_config"
    PORTS_FILE="$STATE_DIR/ports"
    MUNGE_SOCKET="$RUN_DIR/munge.socket"
    DB_DIR="$STATE_DIR/mariadb"
    DB_SOCKET="$RUN_DIR/mariadb.sock"
}

# Daemons in start order: name, binary. 'down' stops them in reverse order.
DAEMONS=(munged mariadb slurmdbd slurmctld slurmd sshd)
daemon_exe() {
    case "$1" in
        munged) echo /usr/sbin/munged ;;
        mariadb) echo /usr/sbin/mariadbd ;;
        slurmdbd) echo /usr/sbin/slurmdbd ;;
        slurmctld) echo /usr/sbin/slurmctld ;;
        slurmd) echo /usr/sbin/slurmd ;;
        sshd) echo /usr/sbin/sshd ;;
    esac
}
pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }

# running_pid NAME: prints the pid from NAME's pid file if that process is alive, runs NAME's
# binary and belongs to this STATE_DIR (its command line or environment mentions STATE_DIR),
# so a stale pid file or a recycled pid never matches.
running_pid() {
    local name="$1" pf pid exe want proc_text
    pf="$(pid_file "$name")"
    [[ -r "$pf" ]] || return 1
    pid="$(head -n 1 "$pf" 2>/dev/null | tr -d '[:space:]')"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ]] || return 1
    want="$(daemon_exe "$name")"
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    exe="${exe% (deleted)}"
    [[ "$exe" == "$want" || "$(readlink -f "$want")" == "$exe" ]] || return 1
    # (no 'grep -q' in a pipe here: with pipefail its early exit can fail the pipeline)
    proc_text="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null || true
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null || true)"
    [[ "$proc_text" == *"$STATE_DIR"* ]] || return 1
    printf '%s\n' "$pid"
}

# stop_daemon NAME: SIGTERM the pid in NAME's pid file (if it is ours), wait up to 30 s, then
# SIGKILL. Removes the pid file.
stop_daemon() {
    local name="$1" pid i
    if pid="$(running_pid "$name")"; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            running_pid "$name" >/dev/null || break
            sleep 0.1
        done
        if running_pid "$name" >/dev/null; then
            log "$name (pid $pid) still running after 30 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                running_pid "$name" >/dev/null || break
                sleep 0.1
            done
        fi
    fi
    rm -f -- "$(pid_file "$name")"
}
