#!/usr/bin/env bash
# Side-by-side load benchmarks for BENCHMARKS.md (see there for the figures).
#
#   loadgen/bench/run.sh tsung     # xmppcheck vs Tsung, same server (Prosody), same work
#   loadgen/bench/run.sh servers   # reference vs Prosody vs ejabberd, same scenarios
#
# Needs Debian's prosody, tsung and time packages (ejabberd for "servers").
# Every server binds to 127.0.0.1 only; every run is bounded in time and
# count. Environment knobs: USERS, RATE, DURATION, LOGIN_RATE, HOLD_USERS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="${WORK:-$(mktemp -d /tmp/xmppcheck-bench.XXXXXX)}"
export ERL_EPMD_ADDRESS=127.0.0.1 # Tsung's and ejabberd's Erlang port mapper: loopback only
USERS="${USERS:-200}"
RATE="${RATE:-2000}"
DURATION="${DURATION:-30}"
LOGIN_RATE="${LOGIN_RATE:-100}"
HOLD_USERS="${HOLD_USERS:-2000}"
PORT="${PORT:-15222}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

log() { printf '\n== %s\n' "$*" >&2; }

go build -o "$work/xmppcheck" "$repo/cmd/xmppcheck"
X="$work/xmppcheck"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$work/key.pem" -out "$work/cert.pem" -days 7 -subj /CN=localhost 2>/dev/null

start_prosody() {
	mkdir -p "$work/prosody/data"
	cp "$work/key.pem" "$work/cert.pem" "$work/prosody/"
	sed "s|@DIR@|$work/prosody|g; s|@PORT@|$PORT|; s|@DOMAIN@|localhost|" "$here/prosody.cfg.lua" >"$work/prosody/prosody.cfg.lua"
	chmod -R a+rwX "$work/prosody"
	prosody --config "$work/prosody/prosody.cfg.lua" >"$work/prosody/stdout.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 50); do
		ss -ltn | grep -q "127.0.0.1:$PORT " && return 0
		sleep 0.2
	done
	echo "prosody did not start" >&2
	cat "$work/prosody/stdout.log" >&2
	exit 1
}

# timed OUT CMD...: runs CMD under GNU time with its output to OUT; prints
# "user_s sys_s maxrss_kb".
timed() {
	local out="$1"
	shift
	/usr/bin/time -f "%U %S %M" -o "$work/time.out" "$@" >"$out" 2>&1 || true
	cat "$work/time.out" | tail -1
}

accounts_file() { # tsung's naming: tsu1..tsuN with pw1..pwN
	for i in $(seq 1 "$1"); do echo "tsu$i pw$i"; done >"$work/accounts-$1.txt"
	echo "$work/accounts-$1.txt"
}

tsung_conf() { # template out key=value...
	local tpl="$1" out="$2"
	shift 2
	cp "$tpl" "$out"
	for kv in "$@"; do sed -i "s|@${kv%%=*}@|${kv#*=}|g" "$out"; done
}

tsung_count() { # the total of a tsung stats counter in the last log
	local d
	d="$(ls -td "$work"/tsunglog/*/ | head -1)"
	grep -E "^stats: $1 " "$d/tsung.log" | tail -1 | awk '{print $NF}'
}

bench_tsung() {
	start_prosody
	local acc
	acc="$(accounts_file "$USERS")"
	log "registering $USERS accounts"
	"$X" load login --server "127.0.0.1:$PORT" --accounts "$acc" --register --rate 50 --duration 1s --progress never >/dev/null

	log "chat: xmppcheck, $USERS users, $RATE msg/s, ${DURATION}s"
	read -r xu xs xm < <(timed "$work/x-chat.txt" "$X" load chat --server "127.0.0.1:$PORT" --accounts "$acc" --mechanisms PLAIN \
		--rate "$RATE" --duration "${DURATION}s" --progress never --json "$work/x-chat.json")
	cat "$work/x-chat.txt" >&2
	xmsgs="$(python3 -c "import json;print(json.load(open('$work/x-chat.json'))['counters']['sent'])")"

	log "chat: tsung, same work"
	local per=$((RATE * DURATION / USERS)) think
	think="$(python3 -c "print($USERS/$RATE)")"
	local arrival=$((USERS / 100 + 2))
	tsung_conf "$here/tsung-chat.xml" "$work/tsung-chat.xml" PORT="$PORT" USERS="$USERS" ARRIVAL="$arrival" \
		ARRIVALRATE=100 PERUSER="$per" SIZE=64 THINK="$think" SETTLE=$((arrival + 1)) RATE="$RATE"
	read -r tu ts tm < <(timed "$work/tsung-chat.out" tsung -f "$work/tsung-chat.xml" -l "$work/tsunglog" start)
	tusers="$(tsung_count users_count)"
	tnoack="$(tsung_count request_noack)"
	tmsgs=$((tnoack - 2 * tusers)) # minus each user's presence and close

	local logins=$((LOGIN_RATE * DURATION)) lacc
	lacc="$(accounts_file "$logins")" # distinct accounts: Tsung gives each session its own user id
	"$X" load login --server "127.0.0.1:$PORT" --accounts "$lacc" --register --rate 500 --duration 1s --progress never >/dev/null
	log "login: xmppcheck, $LOGIN_RATE logins/s, ${DURATION}s"
	read -r lxu lxs lxm < <(timed "$work/x-login.txt" "$X" load login --server "127.0.0.1:$PORT" --accounts "$lacc" --mechanisms PLAIN \
		--rate "$LOGIN_RATE" --duration "${DURATION}s" --progress never --json "$work/x-login.json")
	cat "$work/x-login.txt" >&2
	xlogins="$(python3 -c "import json;print(json.load(open('$work/x-login.json'))['counters']['completed'])")"

	log "login: tsung, same work"
	tsung_conf "$here/tsung-login.xml" "$work/tsung-login.xml" PORT="$PORT" USERS="$logins" DURATION="$DURATION" \
		TOTAL="$logins" RATE="$LOGIN_RATE" HOLD=0.01
	read -r ltu lts ltm < <(timed "$work/tsung-login.out" tsung -f "$work/tsung-login.xml" -l "$work/tsunglog" start)
	tlogins="$(tsung_count tr_login)"

	log "held sessions: $HOLD_USERS idle sessions each"
	hacc="$(accounts_file "$HOLD_USERS")"
	"$X" load login --server "127.0.0.1:$PORT" --accounts "$hacc" --register --rate 500 --duration 1s --progress never >/dev/null
	read -r hxu hxs hxm < <(timed "$work/x-hold.txt" "$X" load chat --server "127.0.0.1:$PORT" --accounts "$hacc" --mechanisms PLAIN \
		--rate 1 --duration 5s --max-inflight 200 --progress never --json "$work/x-hold.json")
	cat "$work/x-hold.txt" >&2
	tsung_conf "$here/tsung-login.xml" "$work/tsung-hold.xml" PORT="$PORT" USERS="$HOLD_USERS" DURATION=$((HOLD_USERS / 200 + 1)) \
		TOTAL="$HOLD_USERS" RATE=200 HOLD=$((HOLD_USERS / 200 + 8))
	read -r htu hts htm < <(timed "$work/tsung-hold.out" tsung -f "$work/tsung-hold.xml" -l "$work/tsunglog" start)
	theld="$(tsung_count users_count)"

	python3 - "$xu" "$xs" "$xmsgs" "$tu" "$ts" "$tmsgs" "$lxu" "$lxs" "$xlogins" "$ltu" "$lts" "$tlogins" \
		"$hxm" "$HOLD_USERS" "$htm" "$theld" "$xm" "$tm" <<'PY'
import sys
a = sys.argv[1:]
f = [float(x) for x in a]
xu, xs, xmsgs, tu, ts, tmsgs, lxu, lxs, xlog, ltu, lts, tlog, hxm, hold, htm, theld, xm, tm = f
xc, tc = xu + xs, tu + ts
print("| | xmppcheck | Tsung 1.7 | ratio |")
print("|---|---|---|---|")
print(f"| chat: messages sent | {xmsgs:.0f} | {tmsgs:.0f} | |")
print(f"| chat: CPU seconds user + sys (whole process) | {xu:.2f} + {xs:.2f} = {xc:.2f} | {tu:.2f} + {ts:.2f} = {tc:.2f} | |")
print(f"| chat: messages per CPU-second | {xmsgs/xc:.0f} | {tmsgs/tc:.0f} | **{(xmsgs/xc)/(tmsgs/tc):.1f}×** |")
print(f"| chat: messages per user-space CPU-second | {xmsgs/xu:.0f} | {tmsgs/tu:.0f} | {(xmsgs/xu)/(tmsgs/tu):.1f}× |")
lx, lt = lxu + lxs, ltu + lts
print(f"| login: logins | {xlog:.0f} | {tlog:.0f} | |")
print(f"| login: CPU seconds user + sys | {lxu:.2f} + {lxs:.2f} | {ltu:.2f} + {lts:.2f} | |")
print(f"| login: logins per CPU-second | {xlog/lx:.0f} | {tlog/lt:.0f} | **{(xlog/lx)/(tlog/lt):.1f}×** |")
print(f"| held sessions: peak RSS for {hold:.0f} sessions (Tsung: {theld:.0f} started) | {hxm/1024:.0f} MiB | {htm/1024:.0f} MiB | |")
print(f"| held sessions: RSS per session | {hxm/hold:.1f} KiB | {htm/max(theld,1):.1f} KiB | **{(htm/max(theld,1))/(hxm/hold):.1f}×** fewer bytes |")
print(f"| sessions in 24 GiB at that rate | {24*1024*1024/(hxm/hold):,.0f} | {24*1024*1024/(htm/max(theld,1)):,.0f} | |")
PY
}

case "${1:-}" in
tsung) bench_tsung ;;
*)
	echo "usage: $0 tsung|servers" >&2
	exit 2
	;;
esac
