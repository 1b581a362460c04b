# shellcheck shell=bash
# Sourced by deploy/local-platform/up and down: paths in STATE_DIR and pid checks.

default_state_dir() { printf '%s\n' "${TMPDIR:-/tmp}/orchestrator-platform"; }

set_paths() {
    STATE_DIR="$1"
    RUN_DIR="$STATE_DIR/run"             # pid files of what up started itself
    LOG_DIR="$STATE_DIR/log"
    FRONT_DOOR_DIR="$STATE_DIR/front-door"   # its data folder: the development issuer's key
    INSTANCES_DIR="$STATE_DIR/instances"     # the local instances' pid files, logs, data
    EXPORTS_FILE="$STATE_DIR/exports"        # what up printed, printed again when all runs
    STARTED_FILE="$STATE_DIR/started"        # postgres / slurm when up started them
}

# The pid in RUN_DIR/NAME.pid if that process is alive and its command line holds PATTERN
# (a recycled pid does not match).
running_pid() {
    local name="$1" pattern="$2" pid
    [[ -r "$RUN_DIR/$name.pid" ]] || return 1
    pid="$(cat "$RUN_DIR/$name.pid" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    pid_runs "$pid" "$pattern" || return 1
    printf '%s\n' "$pid"
}

pid_runs() {
    local pid="$1" pattern="$2"
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$pattern"* ]]
}

# SIGTERM, then SIGKILL after TIMEOUT seconds.
stop_pid() {
    local pid="$1" what="$2" timeout="${3:-20}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { log "stopped $what (pid $pid)"; return 0; }
        sleep 0.1
    done
    log "$what (pid $pid) did not stop within ${timeout}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
}
