#!/usr/bin/env bash
# The whole story on the offline sandbox: run it as
#   harden sandbox exec --config-out .sandbox.toml -- bash examples/demo.sh .sandbox.toml
# (what `make demo` does). Each step prints what a person would read; the exit codes are
# checked so the demo fails loudly if a step could not run (exit 2 or 3), while exit 1
# ("drift found", "changes planned") is the expected answer of the first steps.
set -u
CONFIG=${1:?usage: demo.sh HARDEN_TOML}
HARDEN=${HARDEN:-harden}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect() {  # expect MAX_OK_EXIT command...: run it; exit codes above MAX_OK_EXIT end the demo
    local max=$1; shift
    "$@"; local rc=$?
    if [ "$rc" -gt "$max" ]; then echo "demo: '$*' exited $rc" >&2; exit "$rc"; fi
}

step "1. harden verify: what is wrong with this account (exit 1 = drift)"
expect 1 "$HARDEN" verify --config "$CONFIG"

step "2. harden remediate: what harden would fix with boto3 (dry run: nothing changes)"
expect 1 "$HARDEN" remediate --config "$CONFIG"

step "3. harden remediate --apply: fix it, then verify what was touched"
expect 1 "$HARDEN" remediate --config "$CONFIG" --apply

step "4. harden ebs migrate --apply: encrypt the volumes already in use (originals kept)"
expect 1 "$HARDEN" ebs migrate --config "$CONFIG" --apply

step "5. harden eip release: idle Elastic IPs (dry run; harden:keep is honoured)"
expect 1 "$HARDEN" eip release --config "$CONFIG"

step "6. harden events allocate-address: who allocated addresses in the last 7 days"
expect 1 "$HARDEN" events allocate-address --config "$CONFIG"

step "7. harden verify --controls <the fixable ones>: they all pass now"
expect 0 "$HARDEN" verify --config "$CONFIG" \
    --controls cloudtrail.multi_region,cloudtrail.log_validation,flow_logs,config,scp,ebs.default_encryption,alarms.cpu,network

step "8. harden ec2 amis: the images the instances run (report-only), then the address pool"
expect 1 "$HARDEN" ec2 amis --config "$CONFIG"
expect 1 "$HARDEN" verify --config "$CONFIG" --controls eip.pool

step "9. harden verify: what is left needs Terraform (harden bootstrap) or a person (respond, release)"
expect 1 "$HARDEN" verify --config "$CONFIG"
