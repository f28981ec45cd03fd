#!/usr/bin/env bash
# Concourse task: bosh run-errand; it fails when the errand fails.
set -euo pipefail
: "${BOSH_DEPLOYMENT:?set BOSH_DEPLOYMENT}"
exec bosh -n run-errand "${ERRAND:-backup}"
