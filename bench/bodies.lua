-- bench/bodies.lua: writes the bench data where the other benchmarks read it (not a
-- benchmark itself). From bench/common.lua: DIR/profile.json, DIR/data-1k.json,
-- DIR/data-10k.json (for bench/js/bench.js), and the request bodies rawcurl sends with
-- its "@N@" request counter: DIR/body-create.json ({"id":"TAG-raw-@N@","data":<1 kB>})
-- and DIR/body-update.json ({"data":<1 kB>}), encoded as lua-stream encodes them.
--   lua5.4 bench/bodies.lua DIR TAG
package.path = "bench/?.lua;" .. package.path
local B = require "common"
local dir, tag = assert(arg[1], "usage: bodies.lua DIR TAG"), arg[2] or "bench"
local enc = B.stream.json.encode

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(text, "\n")
  f:close()
end

local d1k = assert(enc(B.data(1000)))
write("profile.json", assert(enc(B.profile())))
write("data-1k.json", d1k)
write("data-10k.json", assert(enc(B.data(10000))))
write("body-create.json", '{"id":"' .. tag .. '-raw-@N@","data":' .. d1k .. '}')
write("body-update.json", '{"data":' .. d1k .. '}')
