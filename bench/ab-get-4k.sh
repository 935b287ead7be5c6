#!/bin/bash
# A/B of `kfetch get` builds at 4 KiB single-block requests (issue 14, the downloader's per-request cost): each
# round runs every build once against the same running seeders, in turn, so drift in the machine's load falls on all
# alike. One line per run: label, wall s, user s, sys s (GNU time), the done event's session seconds, wire and HTTP
# bytes, its `cpu` object (main-thread `receive`, worker and checkpoint parts), the 1-minute load average.
#
#   K=kascade.json [EXTRA=--no-wire] bench/ab-get-4k.sh ROUNDS host:port[,host:port…] A=/path/to/checkoutA B=/path/to/checkoutB
#
# Each checkout is built (`npm run build`, so its md5x addon is there too) with node_modules linked. The seeders are
# `kfetch seed K --port 0 --wire-port 0 --trust` children started beforehand (one build for both sides).
set -u
R=$1; PEER=$2; shift 2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for ((i = 0; i < R; i++)); do
  for spec in "$@"; do
    label=${spec%%=*}; dir=${spec#*=}
    rm -rf "$T/out" "$T/home"
    # shellcheck disable=SC2046,SC2086
    /usr/bin/time -f "%e %U %S" -o "$T/time" node "$dir/dist/src/cli/main.js" get "$K" --out "$T/out" --json --no-serve --timeout 120 \
      $(for p in ${PEER//,/ }; do echo --peer "$p"; done) --max-range-bytes 4096 --home "$T/home" ${EXTRA:-} > "$T/log" 2>&1
    done=$(grep '"event":"done"' "$T/log" | node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>{try{const e=JSON.parse(s);console.log(e.seconds.toFixed(2),e.transport.wireBytes,e.transport.httpBytes,JSON.stringify(e.cpu))}catch{console.log("NA")}})')
    echo "$label $(cat "$T/time") $done $(cut -d' ' -f1 /proc/loadavg)"
  done
done
