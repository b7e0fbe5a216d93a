-- bench/tls.lua: bench/throughput.lua over HTTPS with a private CA. The client that
-- bench/common.lua makes gets the option ca_file = BENCH_CA_FILE (the certificate
-- bench/tls makes at run time); everything else, the cases and the result line, is
-- bench/throughput.lua's own, run as it is:
--
--   BENCH_CA_FILE=cert.pem BENCH_BASE_URL=https://127.0.0.1:PORT/api/ \
--     lua5.4 bench/tls.lua SERVER OP MODE N WARMUP
--
-- Without BENCH_CA_FILE it is bench/throughput.lua unchanged (plain http:// too).
package.path = "bench/?.lua;" .. package.path
local B = require "common"

local ca_file = os.getenv("BENCH_CA_FILE")
if ca_file and ca_file ~= "" then
  local base = os.getenv("BENCH_BASE_URL")
  assert(base and base ~= "", "set BENCH_BASE_URL")
  function B.client()
    return B.stream.connect(os.getenv("STREAM_API_KEY") or "local-api-key",
      os.getenv("STREAM_API_SECRET") or "local-api-secret-change-me-0123456789",
      { base_url = base, ca_file = ca_file })
  end
end

dofile("bench/throughput.lua")
