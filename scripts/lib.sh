# Shared helpers for the scripts; source it, do not run it.
# shellcheck shell=bash

# Every script starts without the caller's BOSH_*, AWS_*, CA_CERT and bbr
# settings (BBR_*): an operator's shell exports BOSH_ENVIRONMENT and
# BOSH_CA_CERT for a real Director (or a lab long gone), and they would
# mix with what the scripts set themselves (the lab's director.env, the
# specs' own variables) or send the bosh CLI through BOSH_ALL_PROXY.
# BBR_LAB_DIR is the scripts' own setting. Only the names are printed.
clear_outside_env() {
  local v ignored=()
  for v in $(compgen -v); do
    case "$v" in
      BBR_LAB_DIR) ;;
      BOSH_* | AWS_* | CA_CERT | BBR_*) ignored+=("$v"); unset "$v" 2>/dev/null || true ;;
    esac
  done
  if [ ${#ignored[@]} -gt 0 ]; then
    echo "$(basename "$0"): ignoring ${ignored[*]} from the environment: the scripts set what they use" >&2
  fi
}
clear_outside_env

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bin"
BOSH_CLI_VERSION="v7.9.13"

# sudo resets PATH: find Go where it is usually installed.
if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin /snap/bin; do
    if [ -x "$d/go" ]; then PATH="$d:$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "Go is not on the PATH (sudo resets it). Install Go 1.26, or run: sudo env \"PATH=\$PATH\" $0" >&2
  exit 1
fi

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# run_as_root "$@" (first thing in a script that needs root): as root, it
# returns and the script runs on; otherwise it runs the script again
# through sudo, passing on PATH (for Go) and the settings the scripts
# read, which sudo would reset. A fresh Debian machine, used as root, has
# no sudo: the scripts must not need it there.
run_as_root() {
  if [ "$(id -u)" = 0 ]; then return 0; fi
  local self keep=("PATH=$PATH") v
  self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$0") needs root (the lab starts sshd in mount namespaces, creates users, runs Redis and PostgreSQL): run it as root, or install sudo" >&2
    exit 1
  fi
  for v in BBR_LAB_DIR GOPROXY GOFLAGS GOPRIVATE GONOSUMDB GOTOOLCHAIN; do
    if [ -n "${!v:-}" ]; then keep+=("$v=${!v}"); fi
  done
  echo "$(basename "$0") needs root: running it through sudo" >&2
  exec sudo env "${keep[@]}" "$self" "$@"
}

# install_packages installs the Debian packages the lab and the tests need,
# only those that are missing (a fresh machine has none of them).
install_packages() {
  local want=(openssh-server sudo redis-server redis-tools postgresql openssl iproute2 util-linux procps curl ruby awscli age zstd prometheus)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "Installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# build_bbr builds bbr and bbr-lab into bin/.
build_bbr() {
  mkdir -p "$BIN"
  local version
  version="$(cat "$ROOT/VERSION" 2>/dev/null || echo dev)"
  (cd "$ROOT" && CGO_ENABLED=0 go build -ldflags "-X main.version=$version" -o "$BIN/bbr" ./src/cmd/bbr)
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN/bbr-lab" ./src/cmd/bbr-lab)
}

# build_bosh_cli builds the real bosh CLI from the module proxy (its module
# cannot be `go install`ed, see machine-notes); cached in bin/.
build_bosh_cli() {
  if [ -x "$BIN/bosh" ]; then return; fi
  say "Building the bosh CLI $BOSH_CLI_VERSION (once, about a minute)"
  local dir
  dir="$(cd "$ROOT" && go mod download -json "github.com/cloudfoundry/bosh-cli/v7@$BOSH_CLI_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  (cd "$dir" && go build -mod=mod -ldflags "-X github.com/cloudfoundry/bosh-cli/v7/cmd.VersionLabel=${BOSH_CLI_VERSION#v}" -o "$BIN/bosh" .)
}

GOLANGCI_LINT_VERSION="v2.15.0"

# build_golangci_lint builds the pinned linter into bin/ (once: about three
# minutes on 2 cores); .golangci.yml says what it checks.
build_golangci_lint() {
  if [ -x "$BIN/golangci-lint" ] && "$BIN/golangci-lint" --version 2>/dev/null | grep -q "version ${GOLANGCI_LINT_VERSION#v} "; then return; fi
  say "Building golangci-lint $GOLANGCI_LINT_VERSION (once, a few minutes)"
  (cd "$ROOT" && GOBIN="$BIN" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION")
}

SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"

# build_weed builds the SeaweedFS server (the real S3-compatible server the
# suites store backups in) from the module proxy; its go.mod has replace
# directives, so it builds inside its own module. About 6 minutes on 2 cores,
# once: cached in bin/.
build_weed() {
  if [ -x "$BIN/weed" ]; then return; fi
  say "Building SeaweedFS $SEAWEEDFS_VERSION (once, about 6 minutes)"
  local dir
  dir="$(cd "$ROOT" && go mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  (cd "$dir" && CGO_ENABLED=0 go build -mod=mod -o "$BIN/weed.tmp" ./weed)
  mv "$BIN/weed.tmp" "$BIN/weed"
}
