#!/usr/bin/env bash
# Installs the benchmark anchors (issue 4): aria2, nginx, mktorrent and opentracker from Debian packages, and
# WebTorrent (webtorrent-cli) plus bittorrent-tracker from npm into a folder outside the project's dependencies,
# with node-datachannel's native binding stubbed (see below).
# Usage: scripts/install-anchors.sh [anchors-dir]   (default: $KFETCH_ANCHORS or ~/.cache/kfetch-anchors)
# `npm run bench` looks in the same folder; a missing anchor is skipped and the table says so.
set -euo pipefail

ANCHORS="${1:-${KFETCH_ANCHORS:-$HOME/.cache/kfetch-anchors}}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "== Debian packages: aria2 nginx mktorrent opentracker"
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq aria2 nginx-light mktorrent \
    || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq aria2 nginx mktorrent
  # opentracker (a BitTorrent tracker for the aria2 swarm anchor) is optional: bittorrent-tracker below also serves.
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opentracker \
    || echo "opentracker not available; the aria2 BitTorrent anchor will use bittorrent-tracker from npm"
  # The bench starts its own nginx on 127.0.0.1 with its own config; the packaged service is not needed.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
    $SUDO systemctl stop nginx || true
  fi
else
  echo "apt-get not found: install aria2, nginx, mktorrent (and opentracker) with your package manager" >&2
fi

echo "== npm: webtorrent-cli and bittorrent-tracker into $ANCHORS"
mkdir -p "$ANCHORS"
if [ ! -f "$ANCHORS/package.json" ]; then
  printf '{ "name": "kfetch-anchors", "private": true }\n' >"$ANCHORS/package.json"
fi
# --ignore-scripts: a dependency (ip-set) runs `npx only-allow pnpm` on install; no native build is needed.
npm install --prefix "$ANCHORS" --no-audit --no-fund --loglevel=error --ignore-scripts webtorrent-cli@6 bittorrent-tracker@11
# WebTorrent imports node-datachannel (WebRTC) at start-up, whose native module is a prebuilt binary downloaded
# from GitHub (else a long cmake build of libdatachannel): neither can be had here. A swarm over TCP on loopback
# never makes a WebRTC connection, so the binding is replaced by a stub whose every function throws if called
# (the bench says "WebTorrent over TCP; node-datachannel stubbed"). Idempotent; a real binding, if one was built, is
# left alone.
NDC="$ANCHORS/node_modules/node-datachannel"
if [ -d "$NDC" ] && [ ! -f "$NDC/build/Release/node_datachannel.node" ]; then
  mkdir -p "$NDC/stub"
  cat >"$NDC/stub/node_datachannel_stub.cjs" <<'STUB'
'use strict';
// Installed by kfetch's scripts/install-anchors.sh in place of node-datachannel's native binding (not fetchable
// here). WebTorrent over TCP never calls it; any use of WebRTC throws.
function stubbed(name) {
  const f = function () {
    throw new Error(`node-datachannel is stubbed (no native binding): ${name} is unavailable; WebRTC cannot be used`);
  };
  Object.defineProperty(f, 'name', { value: name });
  return f;
}
module.exports = new Proxy({}, { get: (target, name) => (typeof name === 'string' && name !== 'then' ? (target[name] ??= stubbed(name)) : undefined) });
STUB
  for f in "$NDC/dist/cjs/lib/node-datachannel.cjs" "$NDC/dist/esm/lib/node-datachannel.mjs"; do
    if [ -f "$f" ]; then sed -i 's#"\.\./\.\./\.\./build/Release/node_datachannel\.node"#"../../../stub/node_datachannel_stub.cjs"#' "$f"; fi
  done
  echo "node-datachannel: native binding stubbed (WebRTC unavailable; WebTorrent runs over TCP only)"
fi

echo "== installed"
for c in aria2c nginx mktorrent opentracker; do
  printf '%-18s %s\n' "$c" "$(command -v "$c" || echo missing)"
done
for c in webtorrent bittorrent-tracker; do
  if [ -x "$ANCHORS/node_modules/.bin/$c" ]; then printf '%-18s %s\n' "$c" "$ANCHORS/node_modules/.bin/$c"; else printf '%-18s missing\n' "$c"; fi
done
