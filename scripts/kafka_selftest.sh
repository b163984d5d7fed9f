#!/usr/bin/env bash
# kafka_selftest.sh - end-to-end check of scripts/kafka.sh against a real broker:
# fetch; single node up, probed, stopped; secure node up, probed as its admin
# over SASL/SCRAM, its app user (no ACLs) and an unauthenticated client turned
# away, stopped; three nodes up, an RF 3 topic created,
# one node SIGKILLed, acks=all produce/consume still served by the other two
# (min.insync.replicas=2), the node restarted and caught up, everything stopped,
# and no broker JVM of ours left behind. Honours the KRETRY_KAFKA_* variables.
#
#   scripts/kafka_selftest.sh [BASE_DIR]     (default: a fresh temporary directory)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
KAFKA=$SCRIPT_DIR/kafka.sh
BASE=${1:-$(mktemp -d /tmp/kretry-kafka-selftest.XXXXXX)}
SINGLE=$BASE/single
SECURE=$BASE/secure
CLUSTER=$BASE/cluster
CHECKER=$BASE/kafkaready
passed=0

step() { printf '\n== %s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*" >&2; }

cleanup() {
	local rc=$?
	"$KAFKA" stop --dir "$SINGLE" >/dev/null 2>&1 || true
	"$KAFKA" stop --dir "$SECURE" >/dev/null 2>&1 || true
	"$KAFKA" stop --dir "$CLUSTER" >/dev/null 2>&1 || true
	if ((rc != 0)); then
		printf 'FAILED (logs kept under %s)\n%d passed, 1 failed\n' "$BASE" "$passed" >&2
	fi
}
trap cleanup EXIT

# ours_running DIR: PIDs of broker JVMs started for DIR (matched on kafka.sh's marker).
ours_running() {
	pgrep -f -- "-Dkretry.kafka.node=$1/node" || true
}

step "fetch"
"$KAFKA" fetch
ok "fetch"

(cd "$REPO_DIR" && go build -o "$CHECKER" ./scripts/kafkaready)

step "single node"
brokers=$("$KAFKA" start single --dir "$SINGLE")
[[ $brokers =~ ^127\.0\.0\.1:[0-9]+$ ]] || { echo "bad brokers line: $brokers" >&2; exit 1; }
[[ $(<"$SINGLE/brokers") == "$brokers" ]]
"$CHECKER" -brokers "$brokers" -expect 1 -timeout 60s
ok "single node ready at $brokers"
"$KAFKA" status --dir "$SINGLE"
"$KAFKA" stop --dir "$SINGLE"
[[ -z $(ours_running "$SINGLE") ]] || { echo "single: JVM left behind" >&2; exit 1; }
ok "single node stopped, no JVM left"

step "secure node"
brokers=$("$KAFKA" start secure --dir "$SECURE")
[[ $brokers =~ ^127\.0\.0\.1:[0-9]+$ ]] || { echo "bad brokers line: $brokers" >&2; exit 1; }
# shellcheck source=/dev/null
. "$SECURE/secure.env"
[[ $KRETRY_SECURE_BROKERS == "$brokers" && -n $KRETRY_SASL_PASS && -n $KRETRY_SASL_ADMIN_PASS ]]
KAFKAREADY_SASL_PASS=$KRETRY_SASL_ADMIN_PASS "$CHECKER" -brokers "$brokers" -expect 1 -timeout 60s \
	-sasl "$KRETRY_SASL_MECHANISM" -sasl-user "$KRETRY_SASL_ADMIN_USER"
ok "secure node ready at $brokers for the admin (SASL/SCRAM)"
if KAFKAREADY_SASL_PASS=$KRETRY_SASL_PASS "$CHECKER" -brokers "$brokers" -expect 1 -timeout 5s \
	-sasl "$KRETRY_SASL_MECHANISM" -sasl-user "$KRETRY_SASL_USER" 2>"$BASE/app.log"; then
	echo "the app user, who has no ACLs, created and used a topic" >&2
	exit 1
fi
grep -q TOPIC_AUTHORIZATION_FAILED "$BASE/app.log" || { cat "$BASE/app.log" >&2; exit 1; }
ok "the app user authenticates but is denied without ACLs"
if "$CHECKER" -brokers "$brokers" -expect 1 -timeout 5s 2>"$BASE/plain.log"; then
	echo "an unauthenticated client was served" >&2
	exit 1
fi
ok "an unauthenticated client is not served"
"$KAFKA" stop --dir "$SECURE"
[[ -z $(ours_running "$SECURE") ]] || { echo "secure: JVM left behind" >&2; exit 1; }
ok "secure node stopped, no JVM left"

step "three-node cluster"
brokers=$("$KAFKA" start cluster --dir "$CLUSTER")
[[ $brokers =~ ^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+){2}$ ]] || { echo "bad brokers line: $brokers" >&2; exit 1; }
"$CHECKER" -brokers "$brokers" -expect 3 -topic selftest-rf3 -keep -timeout 60s
ok "cluster ready, RF 3 topic selftest-rf3 created"

step "kill node 2"
"$KAFKA" kill 2 --dir "$CLUSTER"
"$CHECKER" -brokers "$brokers" -expect 2 -rf 3 -topic selftest-rf3 -keep -timeout 60s
ok "two nodes serve acks=all produce and group consume on the RF 3 topic"

step "restart node 2"
"$KAFKA" restart-node 2 --dir "$CLUSTER" >/dev/null
"$CHECKER" -brokers "$brokers" -expect 3 -topic selftest-rf3 -timeout 60s
ok "node 2 rejoined; all partitions fully in sync"

step "stop"
"$KAFKA" stop --dir "$CLUSTER"
[[ -z $(ours_running "$CLUSTER") ]] || { echo "cluster: JVM left behind" >&2; exit 1; }
ls "$CLUSTER"/node*.pid >/dev/null 2>&1 && { echo "PID files left behind" >&2; exit 1; }
ok "cluster stopped, no JVM or PID file left"

rm -rf "$BASE"
printf '%d passed, 0 failed\n' "$passed"
