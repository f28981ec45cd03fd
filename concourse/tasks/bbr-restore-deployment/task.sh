#!/usr/bin/env bash
# Concourse task: bbr deployment restore, from the backup input (its one
# <deployment>_<timestamp> directory) or from ARTIFACT_PATH.
set -euo pipefail
: "${BOSH_DEPLOYMENT:?set BOSH_DEPLOYMENT}"
root="$PWD"
src="${ARTIFACT_PATH:-}"
if [ -z "$src" ]; then
  shopt -s nullglob
  found=("$root"/backup/"${BOSH_DEPLOYMENT}"_*/)
  if [ "${#found[@]}" -ne 1 ]; then
    echo "the backup input must hold exactly one ${BOSH_DEPLOYMENT}_<timestamp> directory (it holds ${#found[@]})" >&2
    exit 1
  fi
  src="${found[0]%/}"
fi
ids=()
if [ -n "${BBR_IDENTITY:-}" ]; then
  keys="$(mktemp -d)"
  trap 'rm -rf "$keys"' EXIT
  (umask 077 && printf '%s\n' "$BBR_IDENTITY" > "$keys/identity")
  ids=(--identity-file "$keys/identity")
fi
exec "$root/bbr/bbr" deployment restore --artifact-path "$src" "${ids[@]}"
