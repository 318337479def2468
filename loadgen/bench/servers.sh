#!/usr/bin/env bash
# Server comparison for BENCHMARKS.md: the reference server (xmppcheck
# serve), Prosody 0.12 and ejabberd 23.01 (Debian packages) as host
# processes bound to 127.0.0.1, under the same chat and login scenarios
# driven by xmppcheck load:
#   - highest sustained rate with p99 <= 50 ms (and nothing lost, no error):
#     every rate step is run on every server (a server leaves the ladder
#     only once its p99 passes 1 s), and p50/p99 of each step are listed;
#   - server memory per session: the server's RSS growth with HOLD idle
#     sessions, divided by HOLD.
# Every run is bounded; the servers are stopped at exit. For one server,
# `xmppcheck load chat --find-max 1000,2000,… --duration 10s` runs the
# same ladder in one command (it stops at the first failing step).
#
#   loadgen/bench/servers.sh [reference] [prosody] [ejabberd]
#
# Knobs: USERS (chat users, 200), STEP (seconds per rate step, 10),
# CHAT_RATES, LOGIN_RATES (space-separated steps; empty: none, memory only),
# HOLD (2000 sessions, measured first, before any rate step),
# PROSODY_NAGLE (off: Prosody with TCP_NODELAY; default: as shipped).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/xmppcheck-servers.XXXXXX)}"
chmod 755 "$work" # the servers' own users (prosody, ejabberd) read their configs in it
export ERL_EPMD_ADDRESS=127.0.0.1
USERS="${USERS:-200}"
STEP="${STEP:-10}"
CHAT_RATES="${CHAT_RATES-1000 2000 4000 6000 8000 12000 16000}"
LOGIN_RATES="${LOGIN_RATES-10 25 50 100 200 400}"
HOLD="${HOLD:-2000}"
PORT="${PORT:-15322}"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(reference prosody ejabberd)
pid=""
started=()
stop_server() {
	for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
	fi
	if [ -d "$work/ejabberd" ]; then
		ejctl --config-dir "$work/ejabberd" --node "xcbench@localhost" stop >/dev/null 2>&1 || true
	fi
}
trap stop_server EXIT
log() { printf '== %s\n' "$*" >&2; }

go build -o "$work/xmppcheck" "$repo/cmd/xmppcheck"
X="$work/xmppcheck"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$work/key.pem" -out "$work/cert.pem" -days 7 -subj /CN=localhost 2>/dev/null

wait_port() {
	for _ in $(seq 1 150); do
		ss -ltn | grep -q "127.0.0.1:$PORT " && return 0
		sleep 0.2
	done
	echo "server did not listen on $PORT" >&2
	return 1
}

# start_NAME sets pid (the process whose RSS is measured) and provision (the
# load flags that create the accounts).
start_reference() {
	mkdir -p "$work/reference"
	cat >"$work/reference/config.yaml" <<YAML
limits:
  max_conns_per_addr: -1
  max_offline: 100000
YAML
	"$X" serve --data "$work/reference/data" --key-file "$work/reference/at-rest.key" --config "$work/reference/config.yaml" \
		--c2s "127.0.0.1:$PORT" --c2s-tls "" --log-level warn >"$work/reference/server.log" 2>&1 &
	pid=$!
	wait_port
	provision=(--provision-cmd "printf %s {password} | $X admin --data $work/reference/data --key-file $work/reference/at-rest.key user add {user}@localhost")
}

start_prosody() {
	mkdir -p "$work/prosody/data"
	cp "$work/key.pem" "$work/cert.pem" "$work/prosody/"
	sed "s|@DIR@|$work/prosody|g; s|@PORT@|$PORT|; s|@DOMAIN@|localhost|" "$here/prosody.cfg.lua" >"$work/prosody/prosody.cfg.lua"
	# Prosody 0.12 leaves Nagle's algorithm on by default; its login replies
	# come in several small writes, so each login waits ~40 ms on the
	# client's delayed ACK. PROSODY_NAGLE=default measures Prosody as shipped.
	if [ "${PROSODY_NAGLE:-off}" = off ]; then
		sed -i 's|^VirtualHost|network_settings = { nagle = false }\nVirtualHost|' "$work/prosody/prosody.cfg.lua"
	fi
	chmod -R a+rwX "$work/prosody"
	prosody --config "$work/prosody/prosody.cfg.lua" >"$work/prosody/stdout.log" 2>&1 &
	pid=$!
	wait_port
	provision=(--register)
}

# ejctl ARGS...: ejabberdctl as the ejabberd user with this shell's limits.
# Run as root, ejabberdctl switches user with su, whose PAM session drops
# the open-file limit to 1024: ejabberd then fails its accepts ("too many
# open files") long before 2000 sessions and its VM stops. setpriv switches
# without PAM, so the limits stay.
ejctl() {
	if [ "$(id -u)" = 0 ]; then
		HOME="$work/ejabberd" setpriv --reuid ejabberd --regid ejabberd --init-groups ejabberdctl "$@"
	else
		ejabberdctl "$@"
	fi
}

start_ejabberd() {
	local d="$work/ejabberd"
	mkdir -p "$d/db" "$d/log"
	cat "$work/key.pem" "$work/cert.pem" >"$d/ejabberd.pem"
	sed "s|@DIR@|$d|g; s|@PORT@|$PORT|" "$here/ejabberd.yml" >"$d/ejabberd.yml"
	# Our own ejabberdctl.cfg: Debian's points EJABBERD_CONFIG_PATH at
	# /etc/ejabberd (which listens on every interface).
	cat >"$d/ejabberdctl.cfg" <<CFG
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_CONFIG_PATH=$d/ejabberd.yml
EJABBERD_PID_PATH=$d/ejabberd.pid
CONTRIB_MODULES_CONF_DIR=$d/modules.d
INET_DIST_INTERFACE=127.0.0.1
CFG
	mkdir -p "$d/modules.d"
	cp /etc/ejabberd/inetrc "$d/" 2>/dev/null || true
	chown -R ejabberd "$d" 2>/dev/null || true
	chmod -R a+rwX "$d"
	ejctl --config-dir "$d" --config "$d/ejabberd.yml" --ctl-config "$d/ejabberdctl.cfg" --spool "$d/db" --logs "$d/log" --node "xcbench@localhost" \
		foreground >"$d/stdout.log" 2>&1 &
	wait_port
	# The Erlang VM's own pid, for its RSS.
	pid="$(pgrep -f 'beam.smp.*xcbench@localhost' | head -1)"
	provision=(--register)
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# step_one SCENARIO METRIC RATE: one step against $PORT; succeeds when p99
# <= 50 ms with nothing lost and no error.
step_one() {
	local scenario="$1" metric="$2" r="$3"
	"$X" load "$scenario" --server "127.0.0.1:$PORT" --users "$USERS" --rate "$r" --duration "${STEP}s" \
		--progress never --json "$work/$name-$scenario-$r.json" >"$work/$name-$scenario-$r.txt" 2>&1 || true
	local verdict
	verdict="$(verdict "$work/$name-$scenario-$r.json" "$metric")"
	log "$name $scenario $r/s: $verdict (load average $(cut -d' ' -f1 /proc/loadavg))"
	echo "$name $scenario $r $verdict load=$(cut -d' ' -f1 /proc/loadavg)" >>"$work/steps.txt"
	case "$verdict" in
	ok*) return 0 ;;
	*saturated*) return 2 ;;
	*) return 1 ;;
	esac
}

verdict() {
	python3 - "$1" "$2" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print("fail no-result"); sys.exit()
m = r["metrics"].get(sys.argv[2])
c = r["counters"]
exp = c.get("expected", 0)
lost = max(0, exp - c.get("completed", 0))
errs = c.get("errors", 0)
p99 = m["p99_us"] / 1000 if m else float("inf")
p50 = m["p50_us"] / 1000 if m else float("inf")
ok = m is not None and p99 <= 50 and lost == 0 and errs == 0 and c.get("completed", 0) > 0
sat = " saturated" if p99 > 1000 else ""
print(("ok" if ok else "fail"), f"p50={p50:.1f}ms p99={p99:.1f}ms lost={lost} errors={errs}{sat}")
PY
}

# All servers run at once on their own ports; each rate step is run on
# every server back to back, so that the machine's background load hits
# them alike (side by side, interleaved).
declare -A port pidof prov best_chat best_login failed_chat failed_login
i=0
for name in "${servers[@]}"; do
	PORT=$((15322 + i))
	i=$((i + 1))
	log "starting $name on $PORT"
	"start_$name"
	port[$name]="$PORT"
	pidof[$name]="$pid"
	prov[$name]="${provision[*]}"
	started+=("$pid")
	# Accounts: HOLD of them (the chat and login runs use the first USERS).
	"$X" load login --server "127.0.0.1:$PORT" --users "$HOLD" "${provision[@]}" --rate 1 --duration 1s --progress never >/dev/null
	best_chat[$name]=0 best_login[$name]=0 failed_chat[$name]="" failed_login[$name]=""
done
pid=""

# Memory first, right after provisioning and before any rate step, so that
# no server (ejabberd's Erlang VM above all) has allocator pools left over
# from the steps to lend to the sessions.
declare -A per_session
for name in "${servers[@]}"; do
	PORT="${port[$name]}"
	p="${pidof[$name]}"
	base="$(rss_kb "$p")"
	"$X" load chat --server "127.0.0.1:$PORT" --users "$HOLD" --rate 1 --duration 20s --max-inflight 100 --progress never \
		>"$work/$name-hold.txt" 2>&1 &
	lp=$!
	# Two figures: the peak (which includes the log-in burst's transient
	# memory: TLS handshakes, SCRAM, garbage not yet collected) and the
	# settled RSS, the last sample taken while all HOLD sessions were
	# still established and idle (the end of the 20 s window).
	peak="$base" settled=""
	while kill -0 "$lp" 2>/dev/null; do
		v="$(rss_kb "$p" || echo 0)"
		[ "${v:-0}" -gt "$peak" ] && peak="$v"
		up="$(ss -Htn state established "( sport = :$PORT )" | wc -l)"
		[ "$up" -ge "$HOLD" ] && settled="$v"
		sleep 0.5
	done
	wait "$lp" || true
	if [ -z "$settled" ]; then
		per_session[$name]="n/a (the $HOLD sessions were never all up; see $work/$name-hold.txt)"
	else
		per_session[$name]="$(python3 -c "print(f'{($settled-$base)/$HOLD:.1f} KiB settled, {($peak-$base)/$HOLD:.1f} KiB peak')")"
	fi
	log "$name: ${per_session[$name]} per session (RSS $base -> peak $peak, settled ${settled:-?} KiB)"
done

for r in $CHAT_RATES; do
	for name in "${servers[@]}"; do
		[ -z "${failed_chat[$name]}" ] || continue
		PORT="${port[$name]}"
		rc=0
		step_one chat message "$r" || rc=$?
		case $rc in 0) best_chat[$name]="$r" ;; 2) failed_chat[$name]=1 ;; esac
	done
done
for r in $LOGIN_RATES; do
	for name in "${servers[@]}"; do
		[ -z "${failed_login[$name]}" ] || continue
		PORT="${port[$name]}"
		rc=0
		step_one login login "$r" || rc=$?
		case $rc in 0) best_login[$name]="$r" ;; 2) failed_login[$name]=1 ;; esac
	done
done

printf '| server | chat: highest passing rate (p99 ≤ 50 ms) | login: highest passing rate (p99 ≤ 50 ms) | server memory per session (RSS) |\n|---|---|---|---|\n' >"$work/table.md"
for name in "${servers[@]}"; do
	log "$name: chat ${best_chat[$name]}/s, login ${best_login[$name]}/s, ${per_session[$name]} per session"
	printf '| %s | %s msg/s | %s logins/s | %s |\n' "$name" "${best_chat[$name]}" "${best_login[$name]}" "${per_session[$name]}" >>"$work/table.md"
done
cat "$work/table.md"
echo
echo "steps (server scenario rate verdict):"
cat "$work/steps.txt" 2>/dev/null || true
