#!/usr/bin/env bash
# Concourse task: bbr deployment backup. Credentials come from the params
# (the environment), never from arguments.
set -euo pipefail
: "${BOSH_ENVIRONMENT:?set BOSH_ENVIRONMENT}" "${BOSH_CLIENT:?set BOSH_CLIENT}" "${BOSH_CLIENT_SECRET:?set BOSH_CLIENT_SECRET}" "${BOSH_DEPLOYMENT:?set BOSH_DEPLOYMENT}"
root="$PWD"
dest="${ARTIFACT_PATH:-$root/backup}"
# BBR_FLAGS is split on spaces on purpose: it holds flags, never secrets.
# shellcheck disable=SC2086
"$root/bbr/bbr" deployment backup --artifact-path "$dest" --report "$root/backup/report.json" ${BBR_FLAGS:-}
