-- spec/openresty/files_og_cases.lua: runs inside the nginx that files_og_spec.lua
-- starts.
--
--   location /files  run()  ?base=URL&key=K&secret=S&path=P&page=URL: a file upload
--                           streamed from `path`, the same from a path that does not
--                           exist, and an og call for `page`, through the ngx transport,
--                           answered as a JSON summary that the spec checks (page may be
--                           empty: no og call)
--
-- Nothing here asserts: the spec does, on the summary.
local ngx = ngx -- luacheck: ignore 113 (the nginx API, a global inside nginx)
local stream = require "stream"

local M = {}

function M.run()
  local args = ngx.req.get_uri_args()
  local c = stream.connect(args.key, args.secret, "1", { base_url = args.base, retries = 0 })
  local out = { transport = c._transport.name }
  local res, err = c.files:upload({ path = args.path }, "streamed.bin")
  out.file = res and res.file
  out.upload_error = err and tostring(err)
  local _, missing = c.files:upload({ path = args.path .. ".missing" }, "x.bin")
  out.missing = missing and missing.kind
  if args.page and args.page ~= "" then
    local og
    og, err = c:og(args.page)
    out.title = og and og.title
    out.og_error = err and tostring(err)
  end
  c:close()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(stream.json.encode(out))
end

return M
