#!/usr/bin/env bash
# bench.sh — benchmarks (`make bench`): start-up time to node Ready with its
# phases, RSS and PSS of the server's and the agent's process trees per
# process, the agent's Go heap (pprof), binary size by section, asset and
# module, kube-proxy rule sync for 1,000
# Services, pod-to-pod TCP throughput (same node, same subnet, cross
# subnet, with tcpsend/tcpsink of tests/images/httpd; no extra package),
# the strongSwan VPN (TestVPNBench: throughput against a plain
# strongSwan-to-strongSwan tunnel, create → traffic, remote restart);
# HA (TestHABench: write throughput 3 servers vs 1, snapshot save and
# restore of 10,000 objects, 10 kills of the etcd leader's server);
# the CIS benchmark (TestCISBench: kube-bench with cis/iks-cis-1.9, when
# bin/kube-bench exists: scripts/kube-bench.sh builds it);
# each printed with its target and
# a baseline measured in the same run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
make
if [ -x bin/kube-bench ] && [ -z "${IKS_KUBE_BENCH:-}" ]; then
	export IKS_KUBE_BENCH=$PWD/bin/kube-bench
fi
IKS_BENCH=1 go test -count=1 -v -timeout 30m ./tests/bench/ | grep -v '^=== RUN\|^--- PASS\|^PASS\|^ok'
