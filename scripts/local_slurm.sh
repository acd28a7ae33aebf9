#!/usr/bin/env bash
# A real single-node Slurm (slurmctld + slurmd + slurmdbd on MariaDB) for tests
# of the harness's SLURM launcher. Debian 12 packages (Slurm 22.05), run as root,
# no systemd. See /work/shared/notes/slurm.md for why each setting is there.
#
#   scripts/local_slurm.sh up      install if needed, (re)start, wait until usable
#   scripts/local_slurm.sh down    cancel jobs, stop the daemons this script started
#   scripts/local_slurm.sh status  daemons + sinfo; exit 0 when usable, 1 otherwise
#
# Environment:
#   HARNESS_SLURM_DIR      state folder (default /tmp/harness-slurm): config, logs,
#                          pid records, spool/state (wiped at each start), MariaDB datadir
#   HARNESS_SLURM_AUTH     auto (default) | none | munge. auto = auth/none when the
#                          installed Slurm ships it, else munge (own munged + key).
#   HARNESS_SLURM_TIMEOUT  seconds to wait for each step of `up` (default 60)
#
# Clients find the cluster through SLURM_CONF=<state>/etc/slurm.conf; `up` also
# links /etc/slurm/slurm.conf to it (only when that path is free or already our
# link) so sbatch/sacct/submitit work without any environment; `down` removes it.
# Daemons run in the foreground of their own session (setsid), so the PID that is
# recorded in <state>/pids/NAME.pid is the daemon itself. Only processes whose PID
# was recorded, whose name matches and whose environment carries this state folder
# are ever signalled.
set -euo pipefail

STATE_DIR=${HARNESS_SLURM_DIR:-/tmp/harness-slurm}
AUTH_MODE=${HARNESS_SLURM_AUTH:-auto}
STEP_TIMEOUT=${HARNESS_SLURM_TIMEOUT:-60}
[[ $STEP_TIMEOUT =~ ^[0-9]+$ ]] || { echo "HARNESS_SLURM_TIMEOUT must be whole seconds" >&2; exit 2; }
CLUSTER=harness
PARTITION=debug
NODE=localhost
PORTS=(6817 6818 6819)          # slurmctld, slurmd, slurmdbd (Slurm defaults)
SYSTEM_CONF=/etc/slurm/slurm.conf
PACKAGES=(slurmctld slurmd slurm-client slurmdbd mariadb-server)
BINARIES=(slurmctld slurmd slurmdbd sinfo sbatch sacct sacctmgr scontrol scancel squeue mariadbd mariadb mariadb-admin mariadb-install-db)
DAEMON_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }   # locale-proof (no decimal separator)
START_US=$(now_us)

# ---------------------------------------------------------------- messages

elapsed() {  # seconds since the script started, one decimal
    local us=$(( $(now_us) - START_US ))
    printf '%d.%d' $(( us / 1000000 )) $(( us % 1000000 / 100000 ))
}
say() { printf '[local_slurm %5ss] %s\n' "$(elapsed)" "$*"; }
warn() { printf '[local_slurm %5ss] WARNING: %s\n' "$(elapsed)" "$*" >&2; }
die() { printf '[local_slurm %5ss] ERROR: %s\n' "$(elapsed)" "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

# ---------------------------------------------------------------- paths

resolve_state_dir() {
    case $STATE_DIR in
        /*) ;;
        *) STATE_DIR="$PWD/$STATE_DIR" ;;
    esac
    STATE_DIR=${STATE_DIR%/}
    [[ -n $STATE_DIR && $STATE_DIR != / ]] || die "HARNESS_SLURM_DIR must not be '/'"
    ETC=$STATE_DIR/etc
    PIDS=$STATE_DIR/pids
    LOGS=$STATE_DIR/log
    VAR=$STATE_DIR/var              # wiped at each start
    DB=$STATE_DIR/mysql             # owned by mysql; data/ survives restarts
    SLURM_CONF_FILE=$ETC/slurm.conf
    MYSQL_SOCK=$DB/mysqld.sock
    MUNGE_SOCK=$VAR/munge/munge.socket
    export SLURM_CONF=$SLURM_CONF_FILE
}

# The folder is ours when it is new, empty, or carries our marker: never wipe
# anything inside a folder someone else owns.
claim_state_dir() {
    if [[ -e $STATE_DIR && ! -e $STATE_DIR/.harness-slurm ]]; then
        if [[ -n $(ls -A "$STATE_DIR" 2>/dev/null) ]]; then
            die "$STATE_DIR exists, is not empty and was not created by this script; set HARNESS_SLURM_DIR to another folder"
        fi
    fi
    mkdir -p "$STATE_DIR" "$ETC" "$PIDS" "$DB"
    touch "$STATE_DIR/.harness-slurm"
    chmod 755 "$STATE_DIR"      # mariadbd runs as mysql and must reach $DB
    chown mysql:mysql "$DB"
    chmod 750 "$DB"
}

# ---------------------------------------------------------------- processes

DAEMONS=(mariadb munged slurmdbd slurmctld slurmd)   # start order
declare -A COMM=([mariadb]=mariadbd [munged]=munged [slurmdbd]=slurmdbd [slurmctld]=slurmctld [slurmd]=slurmd)
declare -A STOP_WAIT=([mariadb]=30 [munged]=5 [slurmdbd]=15 [slurmctld]=15 [slurmd]=15)

# alive PID: exists and is not a zombie (PID 1 here may be slow to reap orphans,
# and kill -0 succeeds on a zombie).
alive() {
    local stat
    stat=$( { read -r line <"/proc/$1/stat" && echo "$line"; } 2>/dev/null ) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != [ZX] ]]
}

recorded_pid() { [[ -f $PIDS/$1.pid ]] && tr -dc '0-9' <"$PIDS/$1.pid"; }

# 0 when the recorded PID of daemon $1 is alive AND is the process we started.
is_ours() {
    local name=$1 pid
    pid=$(recorded_pid "$name" 2>/dev/null) || return 1
    [[ -n $pid ]] || return 1
    alive "$pid" || return 1
    [[ $( { cat "/proc/$pid/comm"; } 2>/dev/null) == "${COMM[$name]}" ]] || return 1
    (( EUID == 0 )) || return 0     # `status` as a user cannot read root's environ (nor signal)
    local environ
    environ=$( { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null) || return 1
    [[ $'\n'$environ$'\n' == *$'\n'"HARNESS_SLURM_STATE=$STATE_DIR"$'\n'* ]]
}

# launch NAME CONSOLE_LOG CMD...: run CMD in the foreground of a new session, detached
# from our stdio (to CONSOLE_LOG), with a minimal environment; record its PID (the
# exec'd daemon itself, not a wrapper).
launch() {
    local name=$1 log=$2; shift 2
    local pidfile=$PIDS/$name.pid
    rm -f "$pidfile"
    # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner bash
    env -i PATH="$DAEMON_PATH" HOME=/root LANG=C.UTF-8 ${TZ:+TZ="$TZ"} \
        HARNESS_SLURM_STATE="$STATE_DIR" SLURM_CONF="$SLURM_CONF_FILE" MYSQL_UNIX_PORT="$MYSQL_SOCK" \
        setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
        </dev/null >>"$log" 2>&1 9>&- &     # 9 is our lock: the daemon must not keep it
    local i
    for (( i = 0; i < 50; i++ )); do
        [[ -s $pidfile ]] && break
        sleep 0.05
    done
    [[ -s $pidfile ]] || die "$name did not start (no pid recorded); see $log"
    local pid
    pid=$(recorded_pid "$name")
    for (( i = 0; i < 100; i++ )); do      # until the wrapper has exec'd the daemon
        is_ours "$name" && break
        alive "$pid" || break
        sleep 0.02
    done
    is_ours "$name" || { show_log "$name"; die "$name exited right after starting; see $log"; }
    say "started $name (pid $(recorded_pid "$name"))"
}

# stop NAME: TERM the recorded daemon, wait, KILL if needed. Stale records are dropped.
stop() {
    local name=$1 pid i
    pid=$(recorded_pid "$name" 2>/dev/null) || pid=
    if ! is_ours "$name"; then
        [[ -n $pid ]] && say "$name: recorded pid $pid is not running (stale record removed)"
        rm -f "$PIDS/$name.pid"
        return 0
    fi
    local t0
    t0=$(now_us)
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < STOP_WAIT[$name] * 20; i++ )); do
        alive "$pid" || break
        sleep 0.05
    done
    if is_ours "$name"; then
        warn "$name (pid $pid) ignored TERM for ${STOP_WAIT[$name]} s: sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        for (( i = 0; i < 50; i++ )); do alive "$pid" || break; sleep 0.1; done
    fi
    rm -f "$PIDS/$name.pid"
    say "stopped $name (pid $pid, $(( ($(now_us) - t0) / 1000 )) ms)"
}

show_log() {
    local f
    for f in "$LOGS/$1.log" "$LOGS/$1.console.log" "$LOGS/$1.stderr.log"; do
        [[ -s $f ]] || continue
        echo "---- last lines of $f ----" >&2
        tail -n 25 "$f" >&2
        echo "----" >&2
    done
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
    local seconds=$1 what=$2; shift 2
    local deadline=$(( $(now_us) + seconds * 1000000 )) out=
    while (( $(now_us) < deadline )); do
        if out=$("$@" 2>&1); then
            return 0
        fi
        sleep 0.2
    done
    warn "timed out after ${seconds} s waiting for $what${out:+; last answer: $(tail -n 3 <<<"$out")}"
    return 1
}

port_in_use() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# ---------------------------------------------------------------- checks

mysql_cmd() { mariadb --no-defaults --socket="$MYSQL_SOCK" -uroot "$@"; }
mysql_ping() { mariadb-admin --no-defaults --socket="$MYSQL_SOCK" -uroot ping; }
mysql_ping_or_dead() { mysql_ping || ! is_ours mariadb; }
dbd_answers() { timeout 5 sacctmgr -n list cluster; }
ctld_answers() { local out; out=$(timeout 5 scontrol ping 2>/dev/null) && [[ $out == *"is UP"* ]]; }
node_state() { local out; out=$(timeout 5 sinfo -h -n "$NODE" -o '%T' 2>/dev/null) || true; echo "${out%%$'\n'*}"; }
node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }
job_state() { local out; out=$(timeout 5 sacct -n -X -P -j "$1" -o State 2>/dev/null) || true; echo "${out%%$'\n'*}"; }
job_completed() { [[ $(job_state "$1") == COMPLETED ]]; }

auth_plugin_present() {
    compgen -G "/usr/lib/*/slurm-wlm/auth_$1.so" >/dev/null \
        || compgen -G "/usr/lib*/slurm/auth_$1.so" >/dev/null \
        || compgen -G "/usr/local/lib*/slurm/auth_$1.so" >/dev/null
}

needed_daemons() {
    if [[ $(cat "$STATE_DIR/auth" 2>/dev/null || true) == munge ]]; then
        echo mariadb munged slurmdbd slurmctld slurmd
    else
        echo mariadb slurmdbd slurmctld slurmd
    fi
}

# 0 when every daemon of the cluster is ours and alive, the node is usable and
# accounting answers.
healthy() {
    [[ -f $SLURM_CONF_FILE ]] || return 1
    local name
    for name in $(needed_daemons); do is_ours "$name" || return 1; done
    node_usable && dbd_answers >/dev/null 2>&1
}

# ---------------------------------------------------------------- up

ensure_root() { [[ $(id -u) == 0 ]] || die "must run as root (it starts Slurm and MariaDB as root/mysql)"; }

install_packages() {
    local missing=() b
    for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
    if [[ ${#missing[@]} == 0 ]]; then
        say "packages present ($(slurmd -V))"
        return 0
    fi
    say "missing ${missing[*]}: installing ${PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    for b in "${BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || die "$b still missing after apt-get install"; done
    say "installed ($(slurmd -V))"
}

choose_auth() {
    case $AUTH_MODE in
        none|munge) AUTH=$AUTH_MODE ;;
        auto) if auth_plugin_present none; then AUTH=none; else AUTH=munge; fi ;;
        *) die "HARNESS_SLURM_AUTH must be auto, none or munge (got '$AUTH_MODE')" ;;
    esac
    if [[ $AUTH == munge ]] && ! command -v munged >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends munge >/dev/null
    fi
    echo "$AUTH" >"$STATE_DIR/auth"
}

write_configs() {
    local cpus mem first_job_id=$1 auth_lines
    cpus=$(nproc)
    mem=$(env -u SLURM_CONF slurmd -C | sed -n '1,/RealMemory=/s/.*RealMemory=\([0-9]*\).*/\1/p')
    [[ -n $mem ]] || die "could not read RealMemory from 'slurmd -C'"
    if [[ $AUTH == none ]]; then
        auth_lines="AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=5"
    else
        auth_lines="AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=5,socket=$MUNGE_SOCK
AccountingStoragePass=$MUNGE_SOCK"   # the munge socket of connections to slurmdbd
    fi
    cat >"$SLURM_CONF_FILE.tmp" <<EOF
# Written by scripts/local_slurm.sh: rewritten at each 'up', do not edit.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
$auth_lines
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
MinJobAge=300
KillWait=5
JobRequeue=1
FirstJobId=$first_job_id
StateSaveLocation=$VAR/slurmctld
SlurmdSpoolDir=$VAR/slurmd
SlurmctldPidFile=$VAR/run/slurmctld.pid
SlurmdPidFile=$VAR/run/slurmd.pid
SlurmctldDebug=info
SlurmdDebug=info
SlurmdLogFile=$LOGS/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$SLURM_CONF_FILE.tmp" "$SLURM_CONF_FILE"
    chmod 644 "$SLURM_CONF_FILE"

    local dbd=$ETC/slurmdbd.conf
    ( umask 077
      cat >"$dbd.tmp" <<EOF
# Written by scripts/local_slurm.sh: rewritten at each 'up', do not edit.
AuthType=auth/$AUTH
$( [[ $AUTH == munge ]] && echo "AuthInfo=socket=$MUNGE_SOCK" )
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
DebugLevel=info
PidFile=$VAR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
    )
    mv "$dbd.tmp" "$dbd"
    chmod 600 "$dbd"
    say "wrote $SLURM_CONF_FILE (CPUs=$cpus RealMemory=$mem auth/$AUTH FirstJobId=$first_job_id) and $dbd (mode 600)"
}

link_system_conf() {
    if [[ -L $SYSTEM_CONF && $(readlink "$SYSTEM_CONF") == "$SLURM_CONF_FILE" ]]; then
        return 0
    fi
    if [[ -e $SYSTEM_CONF || -L $SYSTEM_CONF ]]; then
        local target
        target=$(readlink "$SYSTEM_CONF" || true)
        if [[ -L $SYSTEM_CONF && $target == */etc/slurm.conf && ( ! -e $target || -e ${target%/etc/slurm.conf}/.harness-slurm ) ]]; then
            ln -sfn "$SLURM_CONF_FILE" "$SYSTEM_CONF"     # ours from another state folder, or dangling
        else
            warn "$SYSTEM_CONF exists and is not ours: left alone; clients need 'export SLURM_CONF=$SLURM_CONF_FILE'"
            return 0
        fi
    else
        mkdir -p "$(dirname "$SYSTEM_CONF")"
        ln -s "$SLURM_CONF_FILE" "$SYSTEM_CONF"
    fi
    say "linked $SYSTEM_CONF -> $SLURM_CONF_FILE"
}

unlink_system_conf() {
    if [[ -L $SYSTEM_CONF && $(readlink "$SYSTEM_CONF") == "$SLURM_CONF_FILE" ]]; then
        rm -f "$SYSTEM_CONF"
        say "removed link $SYSTEM_CONF"
    fi
}

start_munge() {
    local key=$ETC/munge.key
    if [[ ! -s $key ]]; then
        ( umask 077; dd if=/dev/urandom of="$key" bs=1024 count=1 status=none )
    fi
    chmod 400 "$key"
    mkdir -p "$VAR/munge"
    chmod 755 "$VAR/munge"
    launch munged "$LOGS/munged.log" munged --foreground --force --key-file="$key" --socket="$MUNGE_SOCK" \
        --pid-file="$VAR/munge/munged.pid" --seed-file="$VAR/munge/munged.seed"
    wait_for 10 "munged socket" test -S "$MUNGE_SOCK" || { show_log munged; die "munged did not come up"; }
}

start_mariadb() {
    local data=$DB/data fresh=0
    if [[ ! -d $data/mysql ]]; then
        rm -rf "$data"
        install -d -o mysql -g mysql -m 750 "$data"
        mariadb-install-db --no-defaults --user=mysql --datadir="$data" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOGS/mariadb-install-db.log" 2>&1 \
            || { cat "$LOGS/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
        fresh=1
        say "initialised MariaDB datadir $data"
    fi
    rm -f "$MYSQL_SOCK" "$DB/mariadbd.pid"
    launch mariadb "$LOGS/mariadb.console.log" mariadbd --no-defaults --user=mysql --datadir="$data" --socket="$MYSQL_SOCK" \
        --pid-file="$DB/mariadbd.pid" --skip-networking --log-error="$LOGS/mariadb.log" \
        --innodb-buffer-pool-size=512M --innodb-lock-wait-timeout=900   # slurmdbd's minimums
    if ! wait_for "$STEP_TIMEOUT" "MariaDB on $MYSQL_SOCK" mysql_ping_or_dead; then
        show_log mariadb
        die "MariaDB is running but does not answer on $MYSQL_SOCK"
    fi
    if ! is_ours mariadb; then
        show_log mariadb
        if (( fresh )); then die "MariaDB exited at start on a fresh datadir; see $LOGS/mariadb.log"; fi
        # Only the datadir this script created (accounting data only) is ever wiped.
        warn "MariaDB exited at start on the existing datadir $data: re-initialising it"
        stop mariadb
        rm -rf "$data"
        start_mariadb
        return 0
    fi
    say "MariaDB answers on $MYSQL_SOCK"
}

# Job ids restart at 1 when slurmctld's state is wiped. To never hand out an id
# twice from one state folder, the next start continues after the highest id in the
# previous accounting database, or after the floor recorded in <state>/next_job_id
# (written at each up and down), whichever is higher.
previous_max_job_id() {
    local max
    max=$(mysql_cmd -N -B -e "SELECT COALESCE(MAX(id_job),0) FROM slurm_acct_db.${CLUSTER}_job_table" 2>/dev/null) || max=0
    [[ $max =~ ^[0-9]+$ ]] || max=0
    echo "$max"
}

next_job_id() {
    local next floor
    next=$(( $(previous_max_job_id) + 1 ))
    floor=$(cat "$STATE_DIR/next_job_id" 2>/dev/null || true)
    if [[ $floor =~ ^[0-9]+$ ]] && (( floor > next )); then next=$floor; fi
    echo "$next"
}

cmd_up() {
    ensure_root
    install_packages
    claim_state_dir
    exec 9>"$STATE_DIR/.lock"
    flock -w 180 9 || die "another local_slurm.sh holds $STATE_DIR/.lock"

    local running_auth
    running_auth=$(cat "$STATE_DIR/auth" 2>/dev/null || true)
    if [[ $AUTH_MODE != auto && $AUTH_MODE != "$running_auth" ]]; then
        say "running with auth/${running_auth:-?}, auth/$AUTH_MODE asked for: restarting"
    elif healthy; then
        link_system_conf
        say "already up: nothing to do (SLURM_CONF=$SLURM_CONF_FILE)"
        return 0
    fi

    # Whatever is left of an earlier run (crash, partial start): stop it, wipe state.
    local name leftovers=0
    for name in slurmd slurmctld slurmdbd munged mariadb; do
        if [[ -f $PIDS/$name.pid ]]; then leftovers=1; stop "$name"; fi
    done
    if (( leftovers )); then say "cleaned up the remains of an earlier run"; fi
    local port
    for port in "${PORTS[@]}"; do
        if port_in_use "$port"; then
            die "port $port on 127.0.0.1 is taken by a process this script did not start ($(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:.*' || echo 'see ss -ltnp')); stop it first"
        fi
    done

    rm -rf "$VAR"
    mkdir -p "$VAR/slurmctld" "$VAR/slurmd" "$VAR/run"
    if [[ -d $LOGS ]]; then rm -rf "$LOGS.prev"; mv "$LOGS" "$LOGS.prev"; fi
    mkdir -p "$LOGS"
    chmod 755 "$LOGS"
    touch "$LOGS/mariadb.log"; chown mysql:mysql "$LOGS/mariadb.log"   # mariadbd writes it as mysql

    trap 'rc=$?; if (( rc != 0 )); then warn "up failed: stopping what was started (logs in $LOGS)"; stop_all quiet; fi' EXIT

    choose_auth
    start_mariadb
    local first_job_id
    first_job_id=$(next_job_id)
    echo "$first_job_id" >"$STATE_DIR/next_job_id"
    mysql_cmd -e "DROP DATABASE IF EXISTS slurm_acct_db"
    say "dropped old slurm_acct_db"
    write_configs "$first_job_id"
    link_system_conf
    if [[ $AUTH == munge ]]; then start_munge; fi

    launch slurmdbd "$LOGS/slurmdbd.log" slurmdbd -D
    # Poll the port first: a sacctmgr that finds no listener backs off for seconds.
    wait_for "$STEP_TIMEOUT" "slurmdbd listening on port ${PORTS[2]}" port_in_use "${PORTS[2]}" || { show_log slurmdbd; die "slurmdbd did not listen"; }
    wait_for "$STEP_TIMEOUT" "slurmdbd (sacctmgr list cluster)" dbd_answers || { show_log slurmdbd; die "slurmdbd did not answer"; }
    local clusters
    clusters=$(sacctmgr -n -P list cluster format=cluster)
    if [[ $'\n'$clusters$'\n' != *$'\n'$CLUSTER$'\n'* ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
    say "slurmdbd answers; cluster '$CLUSTER' registered"

    launch slurmctld "$LOGS/slurmctld.log" slurmctld -D -f "$SLURM_CONF_FILE"
    wait_for "$STEP_TIMEOUT" "slurmctld listening on port ${PORTS[0]}" port_in_use "${PORTS[0]}" || { show_log slurmctld; die "slurmctld did not listen"; }
    wait_for "$STEP_TIMEOUT" "slurmctld (scontrol ping)" ctld_answers || { show_log slurmctld; die "slurmctld did not answer"; }
    say "slurmctld answers"

    # slurmd writes slurmd.log itself (SlurmdLogFile, shared with slurmstepd); its
    # console copy goes to slurmd.console.log.
    launch slurmd "$LOGS/slurmd.console.log" slurmd -D -N "$NODE" -f "$SLURM_CONF_FILE"
    wait_for "$STEP_TIMEOUT" "node $NODE idle in sinfo" node_usable || { show_log slurmd; show_log slurmctld; die "node $NODE is '$(node_state)', not idle"; }
    say "node $NODE is $(node_state)"

    local job
    job=$(sbatch --parsable -J local-slurm-smoke -D /tmp -o /dev/null -e /dev/null --wrap true) \
        || die "sbatch of the smoke job failed"
    job=${job%%;*}
    [[ $job =~ ^[0-9]+$ ]] || die "sbatch of the smoke job printed '$job', not a job id"
    wait_for "$STEP_TIMEOUT" "smoke job $job COMPLETED in sacct" job_completed "$job" \
        || { show_log slurmctld; show_log slurmd; die "smoke job $job did not complete (sacct state: '$(job_state "$job")')"; }
    say "smoke job $job COMPLETED and recorded in sacct"

    trap - EXIT
    say "UP in $(elapsed) s: cluster '$CLUSTER', partition '$PARTITION', node $NODE ($(nproc) CPUs), auth/$AUTH"
    say "clients: SLURM_CONF=$SLURM_CONF_FILE$( [[ -L $SYSTEM_CONF && $(readlink "$SYSTEM_CONF") == "$SLURM_CONF_FILE" ]] && echo " (also linked from $SYSTEM_CONF)" ); logs in $LOGS"
}

# ---------------------------------------------------------------- down

cancel_jobs() {
    is_ours slurmctld && ctld_answers >/dev/null 2>&1 || return 0
    local ids
    ids=$(timeout 10 squeue -h -o '%A' 2>/dev/null | tr '\n' ' ') || ids=
    if [[ -z ${ids// } ]]; then
        return 0
    fi
    say "cancelling leftover jobs: $ids"
    # shellcheck disable=SC2086
    timeout 10 scancel $ids 2>/dev/null || true
    wait_for 30 "cancelled jobs to leave squeue" queue_empty || warn "jobs still in squeue: $(timeout 5 squeue -h -o '%A:%T' | tr '\n' ' ')"
}
queue_empty() { [[ -z $(timeout 5 squeue -h -o '%A' 2>/dev/null) ]] && timeout 5 squeue >/dev/null 2>&1; }

stop_all() {  # stop_all [quiet]
    local name
    for name in slurmd slurmctld slurmdbd munged mariadb; do
        if [[ ${1:-} == quiet ]]; then stop "$name" >/dev/null 2>&1 || true; else stop "$name"; fi
    done
}

cmd_down() {
    ensure_root
    if [[ ! -e $STATE_DIR/.harness-slurm ]]; then
        say "already down (no state folder $STATE_DIR)"
        return 0
    fi
    exec 9>"$STATE_DIR/.lock"
    flock -w 180 9 || die "another local_slurm.sh holds $STATE_DIR/.lock"
    local name any=0
    for name in "${DAEMONS[@]}"; do if is_ours "$name"; then any=1; fi; done
    if (( ! any )); then
        for name in "${DAEMONS[@]}"; do rm -f "$PIDS/$name.pid"; done
        unlink_system_conf
        say "already down"
        return 0
    fi
    cancel_jobs
    if is_ours mariadb; then next_job_id >"$STATE_DIR/next_job_id.tmp" && mv "$STATE_DIR/next_job_id.tmp" "$STATE_DIR/next_job_id"; fi
    stop_all loud
    unlink_system_conf
    say "DOWN in $(elapsed) s (state and logs kept in $STATE_DIR)"
}

# ---------------------------------------------------------------- status

cmd_status() {
    local name pid ok=0
    if [[ ! -e $STATE_DIR/.harness-slurm ]]; then
        echo "no cluster: state folder $STATE_DIR does not exist (run: $0 up)"
        return 1
    fi
    for name in $(needed_daemons); do
        pid=$(recorded_pid "$name" 2>/dev/null) || pid=
        if is_ours "$name"; then
            printf '%-10s running (pid %s)\n' "$name" "$pid"
        else
            printf '%-10s NOT running%s\n' "$name" "${pid:+ (stale pid $pid)}"
            ok=1
        fi
    done
    echo "SLURM_CONF=$SLURM_CONF_FILE"
    if is_ours slurmctld; then
        timeout 5 sinfo 2>&1 || true
        node_usable || { echo "node $NODE is '$(node_state)'"; ok=1; }
    else
        ok=1
    fi
    if is_ours slurmdbd; then
        dbd_answers >/dev/null 2>&1 || { echo "slurmdbd does not answer sacctmgr"; ok=1; }
    fi
    if (( ok == 0 )); then echo "cluster usable"; else echo "cluster NOT usable"; fi
    return "$ok"
}

# ---------------------------------------------------------------- main

main() {
    local cmd=${1:-}
    resolve_state_dir
    case $cmd in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        -h|--help|help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
