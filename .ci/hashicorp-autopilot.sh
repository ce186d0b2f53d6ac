#!/usr/bin/env bash
# Builds examples/autopilot against hashicorp/raft v1.7.3 and
# hashicorp/raft-autopilot v0.3.0 with only the import paths changed, runs
# it, and checks it goes through the same steps as on this library: a
# program written for raft-autopilot's API builds and behaves the same on
# ours.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sed -e 's#github.com/seed48a2b68f/raft/autopilot#github.com/hashicorp/raft-autopilot#' \
    -e 's#github.com/seed48a2b68f/raft"#github.com/hashicorp/raft"#' \
    examples/autopilot/main.go > "$work/main.go"
(
  cd "$work"
  go mod init hashicorpautopilot >/dev/null 2>&1
  go get github.com/hashicorp/raft@v1.7.3 github.com/hashicorp/raft-autopilot@v0.3.0 >/dev/null 2>&1
  go mod tidy >/dev/null 2>&1
  go run . > hashicorp.out
)
go run ./examples/autopilot > "$work/ours.out"

steps() { grep -oE '^[0-9]\. [a-z ]+' "$1"; }
if ! diff <(steps "$work/ours.out") <(steps "$work/hashicorp.out"); then
  echo "the autopilot example's steps differ between the libraries"; exit 1
fi
# The outcomes too, but for which node led and died.
outcome() { sed -E 's/n[0-9]/nX/g' "$1"; }
if ! diff <(outcome "$work/ours.out") <(outcome "$work/hashicorp.out"); then
  echo "the autopilot example's outcomes differ between the libraries"; exit 1
fi
tail -n1 "$work/hashicorp.out" | grep -qx ok
echo "autopilot example: same $(steps "$work/ours.out" | wc -l) steps and outcomes on hashicorp/raft v1.7.3 + raft-autopilot v0.3.0 and on this library"
