#!/usr/bin/env bash
# Concourse task: bbr deployment --all-deployments backup.
set -euo pipefail
: "${BOSH_ENVIRONMENT:?set BOSH_ENVIRONMENT}" "${BOSH_CLIENT:?set BOSH_CLIENT}" "${BOSH_CLIENT_SECRET:?set BOSH_CLIENT_SECRET}"
unset BOSH_DEPLOYMENT # --all-deployments and --deployment exclude each other
root="$PWD"
dest="${ARTIFACT_PATH:-$root/backup}"
# shellcheck disable=SC2086
"$root/bbr/bbr" deployment --all-deployments backup --artifact-path "$dest" --report "$root/backup/report.json" ${BBR_FLAGS:-}
