#!/usr/bin/env bash
# Run a sharded load test in Kubernetes: the Indexed Job of N shards, then
# the merge Job; prints the merged summary and exits with its verdict.
#
#   SHARDS=4 SERVER=xmpp.default.svc:5222 DOMAIN=example.org SCENARIO=chat \
#   USERS=40000 RATE=20000 DURATION=60s IMAGE=xmppcheck:dev \
#   THRESHOLDS="--threshold=p99<50ms --threshold=errors<0.1%" ci/k8s/run.sh
#
#   ci/k8s/run.sh render DIR     # only write the filled-in manifests to DIR
#
# Every run works in its own directory of the results volume,
# /results/RUN_ID (RUN_ID: random hex unless given): shard results of
# earlier runs stay where they are and never mix into this merge. The shards
# start sending together at START_AT (default: START_DELAY seconds, 120,
# from now: time for the pods to be scheduled and log their sessions in).
# THRESHOLDS are whitespace-separated, each "--threshold=EXPR" or "EXPR";
# they reach xmppcheck without a shell. Needs kubectl (except render).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${SHARDS:?}" "${SERVER:?}" "${DOMAIN:?}" "${SCENARIO:=chat}" "${USERS:?}" "${RATE:?}" "${DURATION:=60s}" "${IMAGE:=xmppcheck:dev}"
: "${THRESHOLDS:=}" "${START_DELAY:=120}"
: "${RUN_ID:=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')}"
case "$RUN_ID" in *[!0-9a-f]* | "") echo "RUN_ID must be hex" >&2; exit 2 ;; esac
: "${START_AT:=$(date -u -d "+${START_DELAY} seconds" +%Y-%m-%dT%H:%M:%SZ)}"
secs="${DURATION%s}"
case "$secs" in *[!0-9]*) secs=600 ;; esac
DEADLINE=$((secs + START_DELAY + 900)) # setup, drain and scheduling slack; the Job is killed past it

THRESHOLD_ARGS=""
for t in $THRESHOLDS; do
	t="${t#--threshold=}"
	case "$t" in *[\"\\\$]*) echo "threshold $t: no quotes, backslashes or dollars" >&2; exit 2 ;; esac
	THRESHOLD_ARGS+="\"--threshold=$t\", "
done

# render FILE: the manifest with every ${VAR} placeholder filled in (no
# envsubst needed; $(VAR) references are Kubernetes' own and stay).
render() {
	local s v
	s="$(cat "$1")"
	for v in SHARDS SERVER DOMAIN SCENARIO USERS RATE DURATION IMAGE RUN_ID START_AT DEADLINE THRESHOLD_ARGS; do
		s="${s//"\${$v}"/${!v}}"
	done
	printf '%s\n' "$s"
}

if [ "${1:-}" = render ]; then
	out="${2:?render DIR}"
	mkdir -p "$out"
	for f in results-pvc.yaml load-shards.yaml load-merge.yaml; do render "$here/$f" >"$out/$f"; done
	echo "$RUN_ID" >"$out/run-id"
	exit 0
fi

echo "run $RUN_ID: $SHARDS shards start at $START_AT; results in /results/$RUN_ID" >&2
kubectl apply -f "$here/results-pvc.yaml"
kubectl delete job xmppcheck-load xmppcheck-load-merge --ignore-not-found --wait
render "$here/load-shards.yaml" | kubectl apply -f -
if ! kubectl wait --for=condition=complete job/xmppcheck-load --timeout="${DEADLINE}s"; then
	echo "shards did not all complete:" >&2
	kubectl logs -l app.kubernetes.io/component=shard --tail=20 --prefix >&2 || true
	exit 2
fi
render "$here/load-merge.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete job/xmppcheck-load-merge --timeout=600s || true
kubectl logs job/xmppcheck-load-merge
code="$(kubectl get pod -l app.kubernetes.io/component=merge -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')"
exit "${code:-2}"
