#!/usr/bin/env bash
# make demo: runs examples/users.lua, then examples/feeds.lua. With Stream credentials in the
# environment (STREAM_URL, or STREAM_API_KEY and STREAM_API_SECRET) it talks
# to Stream; otherwise it starts the local server on a free loopback port,
# points the example at it and stops the server afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
lua="${LUA:-lua5.4}"

if [ -z "${STREAM_URL:-}" ] && [ -z "${STREAM_API_KEY:-}" ]; then
  port="$("$lua" -e 'local s = assert(require("socket").bind("127.0.0.1", 0)); local _, p = s:getsockname(); s:close(); io.write(p)')"
  prefix="$(mktemp -d "${TMPDIR:-/tmp}/stream-demo.XXXXXX")"
  trap 'server/stop "$prefix" >/dev/null 2>&1 || true' EXIT
  echo "demo: no Stream credentials set; starting the local server on 127.0.0.1:$port"
  STREAM_LOCAL_PORT="$port" server/start --daemon --prefix "$prefix" >/dev/null
  export STREAM_API_KEY=local-api-key
  export STREAM_API_SECRET=local-api-secret-change-me-0123456789
  export STREAM_APP_ID=1
  export STREAM_BASE_URL="http://127.0.0.1:$port/api/"
fi

"$lua" examples/users.lua
echo
"$lua" examples/feeds.lua
