#!/usr/bin/env bash
# Concourse task: bbr director backup. The private key is written to a
# file only this task's user reads, and removed when the task ends.
set -euo pipefail
: "${BOSH_DIRECTOR_HOST:?set BOSH_DIRECTOR_HOST}" "${BOSH_DIRECTOR_PRIVATE_KEY:?set BOSH_DIRECTOR_PRIVATE_KEY}"
root="$PWD"
dest="${ARTIFACT_PATH:-$root/backup}"
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
umask 077
printf '%s\n' "$BOSH_DIRECTOR_PRIVATE_KEY" > "$keys/director.key"
known=()
if [ -n "${KNOWN_HOSTS:-}" ]; then
  printf '%s\n' "$KNOWN_HOSTS" > "$keys/known_hosts"
  known=(--known-hosts "$keys/known_hosts")
fi
# shellcheck disable=SC2086
"$root/bbr/bbr" director --host "$BOSH_DIRECTOR_HOST" --username "${BOSH_DIRECTOR_USERNAME:-jumpbox}" \
  --private-key-path "$keys/director.key" "${known[@]}" \
  backup --artifact-path "$dest" --report "$root/backup/report.json" ${BBR_FLAGS:-}
