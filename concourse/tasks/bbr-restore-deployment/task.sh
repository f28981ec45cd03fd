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
  # The identity opens every backup: it must not outlive the task on disk,
  # whatever ends it (bbr is exec'd, so no trap would run). It is written
  # to a private file, opened on fd 3 and removed at once; bbr reads the
  # open file through /dev/fd/3 (as often as it needs: each open of it
  # starts at the beginning) and no name on disk leads to it.
  keys="$(mktemp -d)"
  (umask 077 && printf '%s\n' "$BBR_IDENTITY" > "$keys/identity")
  exec 3<"$keys/identity"
  rm -rf "$keys"
  ids=(--identity-file /dev/fd/3)
fi
unset BBR_IDENTITY # bbr reads the identity from fd 3, not its environment
exec "$root/bbr/bbr" deployment restore --artifact-path "$src" "${ids[@]}"
