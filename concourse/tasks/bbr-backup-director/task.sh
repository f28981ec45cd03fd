#!/usr/bin/env bash
# Concourse task: bbr director backup. The private key never stays on
# disk, and the Director VM's host key is pinned with KNOWN_HOSTS (or the
# pipeline says SKIP_HOST_KEY_CHECK=true).
set -euo pipefail
: "${BOSH_DIRECTOR_HOST:?set BOSH_DIRECTOR_HOST}" "${BOSH_DIRECTOR_PRIVATE_KEY:?set BOSH_DIRECTOR_PRIVATE_KEY}"
root="$PWD"
dest="${ARTIFACT_PATH:-$root/backup}"
known=()
if [ -z "${KNOWN_HOSTS:-}" ]; then
  if [ "${SKIP_HOST_KEY_CHECK:-false}" != true ]; then
    echo "KNOWN_HOSTS is empty: without it the Director VM's host key is not checked, and anyone who can answer for $BOSH_DIRECTOR_HOST gets the Director's backup. Give its known_hosts line (ssh-keyscan $BOSH_DIRECTOR_HOST, checked), or set SKIP_HOST_KEY_CHECK=true to accept any host key." >&2
    exit 1
  fi
  echo "SKIP_HOST_KEY_CHECK=true: the Director VM's host key is not verified" >&2
fi

# The key (and the known_hosts line) are written to private files, opened
# on fds 3 and 4 and removed at once: no name on disk leads to them,
# whatever ends the task (bbr is exec'd, so no trap would run). bbr reads
# them through /dev/fd/3 and /dev/fd/4.
keys="$(mktemp -d)"
(umask 077 && printf '%s\n' "$BOSH_DIRECTOR_PRIVATE_KEY" > "$keys/key" && printf '%s\n' "${KNOWN_HOSTS:-}" > "$keys/known_hosts")
exec 3<"$keys/key" 4<"$keys/known_hosts"
rm -rf "$keys"
unset BOSH_DIRECTOR_PRIVATE_KEY # bbr reads the key from fd 3, not its environment
if [ -n "${KNOWN_HOSTS:-}" ]; then
  known=(--known-hosts /dev/fd/4)
fi
# BBR_FLAGS is split on spaces on purpose: it holds flags, never secrets.
# shellcheck disable=SC2086
exec "$root/bbr/bbr" director --host "$BOSH_DIRECTOR_HOST" --username "${BOSH_DIRECTOR_USERNAME:-jumpbox}" \
  --private-key-path /dev/fd/3 "${known[@]}" \
  backup --artifact-path "$dest" --report "$root/backup/report.json" ${BBR_FLAGS:-}
