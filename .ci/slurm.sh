#!/usr/bin/env bash
# .ci/slurm.sh -- a throwaway single-node SLURM cluster on localhost, for CI and tests.
#
# Usage (as root):
#   .ci/slurm.sh start          install slurm-wlm + munge if missing, start the daemons
#   .ci/slurm.sh stop           cancel our jobs, stop only the daemons this script started
#   .ci/slurm.sh status         sinfo / squeue
#   .ci/slurm.sh run -- CMD...  start, run CMD, always stop; exits with CMD's status
#
# Environment: CEBRA_SLURM_DIR (state, default $TMPDIR/cebra-pipe-slurm),
#   CEBRA_SLURM_FAKE_GPU (1 = advertise one gres gpu backed by /dev/null, so that the
#   pipeline's `--gpus=1` training jobs schedule; default 1), CEBRA_SLURM_TIMEOUT (s).
#
# Traps this script handles (Debian slurm-wlm 22.05, no systemd, no cgroups):
# * The config must live at the compiled-in path /etc/slurm/slurm.conf: the SLURM
#   jobstep executor strips SLURM_* variables (SLURM_CONF too) before its nested srun.
#   We symlink it there and refuse to replace a real config.
# * There is no accounting daemon, so `sacct` fails; run Snakemake with
#   `--slurm-status-command squeue --slurm-no-account` (MinJobAge keeps finished jobs
#   visible to squeue).
# * No cgroups: proctrack/linuxproc, task/none.
# * Everything binds to 127.0.0.1. Only PIDs recorded by this script are signalled.
set -euo pipefail

STATE=${CEBRA_SLURM_DIR:-${TMPDIR:-/tmp}/cebra-pipe-slurm}
FAKE_GPU=${CEBRA_SLURM_FAKE_GPU:-1}
WAIT_S=${CEBRA_SLURM_TIMEOUT:-90}
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf

log() { printf '[slurm.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$STATE/$1.pid" ] && cat "$STATE/$1.pid" || true; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v squeue >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null || die "slurm is not installed and apt-get is unavailable"
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
    mkdir -p /run/munge /etc/munge
    chown munge:munge /run/munge
    chmod 0755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        log "munged already running (not ours, left alone)"
        return
    fi
    setpriv --reuid=munge --regid=munge --init-groups \
        /usr/sbin/munged -F --force >"$STATE/munged.out" 2>&1 &
    echo $! >"$STATE/munged.pid"
    for _ in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.2
    done
    cat "$STATE/munged.out" >&2 || true
    die "munged did not start"
}

write_config() {
    local host node gres_types="" node_gres=""
    host=$(hostname -s)
    node=$(slurmd -C | head -n1)
    case "$node" in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $node" ;; esac
    : >"$STATE/gres.conf"
    if [ "$FAKE_GPU" = 1 ]; then
        gres_types="GresTypes=gpu"
        node_gres="Gres=gpu:1"
        echo "NodeName=$host Name=gpu File=/dev/null" >"$STATE/gres.conf"
    fi
    cat >"$STATE/slurm.conf" <<EOF
# written by cebra_pipe .ci/slurm.sh: single-node test cluster on the loopback
ClusterName=cebraci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
$gres_types
$node NodeAddr=127.0.0.1 $node_gres State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p /etc/slurm
    for pair in "$CONF:$STATE/slurm.conf" "$GRES:$STATE/gres.conf"; do
        local dst=${pair%%:*} src=${pair#*:}
        if [ -e "$dst" ] && [ "$(readlink "$dst" || true)" != "$src" ]; then
            die "$dst exists and is not ours; refusing to replace a real SLURM config"
        fi
        ln -sfn "$src" "$dst"
    done
}

cmd_start() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    mkdir -p "$STATE/ctld" "$STATE/spool"
    if alive "$(pid_of slurmctld)"; then log "already running"; return; fi
    install
    start_munge
    write_config
    slurmctld -D -c >"$STATE/slurmctld.out" 2>&1 &
    echo $! >"$STATE/slurmctld.pid"
    slurmd -D >"$STATE/slurmd.out" 2>&1 &
    echo $! >"$STATE/slurmd.pid"
    local state=""
    for _ in $(seq 1 $((WAIT_S * 2))); do
        state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
        case "$state" in idle|mixed|allocated) log "cluster up (node $state)"; return ;; esac
        case "$state" in down*|drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;; esac
        sleep 0.5
    done
    tail -n 20 "$STATE"/*.log "$STATE"/*.out >&2 || true
    cmd_stop || true
    die "SLURM did not come up (node state '$state')"
}

stop_pid() {
    local pid
    pid=$(pid_of "$1")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/$1.pid"
}

cmd_stop() {
    if alive "$(pid_of slurmctld)"; then
        local ids
        ids=$(squeue -h -o %i 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || scancel $ids 2>/dev/null || true
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
    for f in "$CONF" "$GRES"; do
        case "$(readlink "$f" 2>/dev/null || true)" in "$STATE"/*) rm -f "$f" ;; esac
    done
    log "stopped"
}

cmd_run() {
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || die "usage: $0 run -- CMD..."
    cmd_start
    trap cmd_stop EXIT
    set +e
    "$@"
    local rc=$?
    set -e
    return $rc
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) sinfo; squeue --states=all -o '%.8i %.10T %.30j %.10M %b %R' ;;
    run) shift; cmd_run "$@" ;;
    *) echo "usage: $0 {start|stop|status|run -- CMD...}" >&2; exit 2 ;;
esac
