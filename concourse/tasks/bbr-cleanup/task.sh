#!/usr/bin/env bash
# Concourse task: bbr deployment backup-cleanup, of one deployment or all.
set -euo pipefail
: "${BOSH_ENVIRONMENT:?set BOSH_ENVIRONMENT}" "${BOSH_CLIENT:?set BOSH_CLIENT}" "${BOSH_CLIENT_SECRET:?set BOSH_CLIENT_SECRET}"
root="$PWD"
if [ -n "${BOSH_DEPLOYMENT:-}" ]; then
  exec "$root/bbr/bbr" deployment backup-cleanup
fi
exec "$root/bbr/bbr" deployment --all-deployments backup-cleanup
