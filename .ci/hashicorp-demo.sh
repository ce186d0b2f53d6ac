#!/usr/bin/env bash
# Builds examples/demo against hashicorp/raft v1.7.3 with only the import path
# changed, runs it, and checks it goes through the same steps as on this
# library. Shows that a program written for hashicorp/raft's API builds and
# behaves the same on ours.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sed 's#github.com/seed48a2b68f/raft#github.com/hashicorp/raft#' examples/demo/main.go > "$work/main.go"
(
  cd "$work"
  go mod init hashicorpdemo >/dev/null 2>&1
  go get github.com/hashicorp/raft@v1.7.3 >/dev/null 2>&1
  go mod tidy >/dev/null 2>&1
  go run . > hashicorp.out
)
go run ./examples/demo > "$work/ours.out"

steps() { grep -oE '^[0-9]\. [a-zA-Z +]+:' "$1" | sed 's/:$//'; }
if ! diff <(steps "$work/ours.out") <(steps "$work/hashicorp.out"); then
  echo "the demo's steps differ between the libraries"; exit 1
fi
tail -n1 "$work/hashicorp.out" | grep -qx ok
tail -n1 "$work/ours.out" | grep -qx ok
echo "demo: same $(steps "$work/ours.out" | wc -l) steps on hashicorp/raft v1.7.3 and on this library"
