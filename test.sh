#!/usr/bin/env bash
# The one test command: formatting, vet, staticcheck, and every test with the
# race detector. CI runs it through .ci/run.
set -euo pipefail
cd "$(dirname "$0")"

staticcheck_version=v0.8.2
gobin="$(go env GOPATH)/bin"
staticcheck="$gobin/staticcheck"
if ! [ -x "$staticcheck" ]; then
	staticcheck="$(command -v staticcheck || true)"
fi
if [ -z "$staticcheck" ]; then
	echo "test.sh: installing staticcheck $staticcheck_version into $gobin"
	go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
	staticcheck="$gobin/staticcheck"
fi

echo "== gofmt"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
"$staticcheck" ./...

echo "== kube-apiserver and etcd for the real Kubernetes API tier"
# Built once from the Go module proxy (about 5 minutes on 2 cores) and
# cached outside the repository; later runs print "cached".
bash hack/kube-binaries.sh

echo "== chromium for the browser tier (web/)"
if ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
	else
		echo "test.sh: chromium is not installed and this is not root: install the Debian package chromium (apt-get install chromium) and run again" >&2
		exit 1
	fi
fi

echo "== go test -race"
# The chaos tests of the root package (50 daemon kill -9 scenarios) take
# several minutes on 2 cores: more than go test's default 10m is needed.
go test -race -count=1 -timeout 30m ./...
