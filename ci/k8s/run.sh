#!/usr/bin/env bash
# Run a sharded load test in Kubernetes: the Indexed Job of N shards, then
# the merge Job; prints the merged summary and exits with its verdict.
#
#   SHARDS=4 SERVER=xmpp.default.svc:5222 DOMAIN=example.org SCENARIO=chat \
#   USERS=40000 RATE=20000 DURATION=60s IMAGE=xmppcheck:dev \
#   THRESHOLDS="--threshold=p99<50ms --threshold=errors<0.1%" ci/k8s/run.sh
#
# Needs kubectl and envsubst (gettext-base). The results stay on the
# xmppcheck-load-results volume (merged.json, merged.html, shard-*.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${SHARDS:?}" "${SERVER:?}" "${DOMAIN:?}" "${SCENARIO:=chat}" "${USERS:?}" "${RATE:?}" "${DURATION:=60s}" "${IMAGE:=xmppcheck:dev}"
: "${THRESHOLDS:=}"
secs="${DURATION%s}"
case "$secs" in *[!0-9]*) secs=600 ;; esac
export SHARDS SERVER DOMAIN SCENARIO USERS RATE DURATION IMAGE THRESHOLDS
export DEADLINE=$((secs + 900)) # setup, drain and scheduling slack; the Job is killed past it
vars='${SHARDS} ${SERVER} ${DOMAIN} ${SCENARIO} ${USERS} ${RATE} ${DURATION} ${IMAGE} ${THRESHOLDS} ${DEADLINE}'

kubectl apply -f "$here/results-pvc.yaml"
kubectl delete job xmppcheck-load xmppcheck-load-merge --ignore-not-found --wait
envsubst "$vars" <"$here/load-shards.yaml" | kubectl apply -f -
if ! kubectl wait --for=condition=complete job/xmppcheck-load --timeout="${DEADLINE}s"; then
	echo "shards did not all complete:" >&2
	kubectl logs -l app.kubernetes.io/component=shard --tail=20 --prefix >&2 || true
	exit 2
fi
envsubst "$vars" <"$here/load-merge.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete job/xmppcheck-load-merge --timeout=600s || true
kubectl logs job/xmppcheck-load-merge
code="$(kubectl get pod -l app.kubernetes.io/component=merge -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')"
exit "${code:-2}"
