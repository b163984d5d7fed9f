#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: every scenario on embedded kfake, then on a
# real Apache Kafka broker (started here from Maven Central jars and stopped
# at the end), where Spring Kafka runs too. Results land in
# docs/benchmarks/{kfake,kafka}: results.json, table.md and the PNG plots,
# rewritten after every scenario (a failed scenario keeps the earlier ones).
#
#   bash bench/run.sh              # both passes (over an hour here since S1 has
#                                  # 10 M records, S2 and S2b 3 M, nine repetitions)
#   bash bench/run.sh kfake        # one pass
#   bash bench/run.sh kafka -reps 3  # extra flags go to the bench program
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/docs/benchmarks"
passes=${1:-all}
shift || true
kafka_dir=""
cleanup() {
	if [ -n "$kafka_dir" ]; then
		bash "$root/scripts/kafka.sh" stop --dir "$kafka_dir" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

build() {
	echo "== building the bench program and the Spring Kafka peer" >&2
	(cd bench && go build -o "$root/bench/bench.bin" .)
	mvn -q -f bench/peers/spring/pom.xml -DskipTests package >&2
}

pass_kfake() {
	mkdir -p "$out/kfake"
	(cd bench && ./bench.bin -out "$out/kfake" "$@")
}

pass_kafka() {
	kafka_dir=$(mktemp -d /tmp/kretry-bench-kafka.XXXXXX)
	bash scripts/kafka.sh fetch >&2
	local brokers
	brokers=$(bash scripts/kafka.sh start single --dir "$kafka_dir")
	mkdir -p "$out/kafka"
	# 10,000 partitions is a kfake-only size for S5.
	(cd bench && ./bench.bin -brokers "$brokers" -s5-partitions 1000 -out "$out/kafka" "$@")
}

build
case "$passes" in
all) pass_kfake "$@"; pass_kafka "$@" ;;
kfake) pass_kfake "$@" ;;
kafka) pass_kafka "$@" ;;
*) echo "usage: bash bench/run.sh [all|kfake|kafka] [bench flags]" >&2; exit 2 ;;
esac
