-- The README's Lua samples run as written, in order, against the local server.
--
-- Every fenced ```lua block of README.md that is not an nginx module (a block whose
-- first line is `-- <name>.lua` and that uses `ngx`: spec/openresty/readme_spec.lua
-- runs those inside nginx, with the README's ```nginx block) is one part of a single chunk, so a sample may use what an
-- earlier one defined (`client`, `alice`, `activity`), as a reader going down the page
-- would. The chunk keeps the README's line numbers (every other line is blank), so an
-- error names the README line that failed. The samples see `api_key`, `api_secret` and
-- `app_id` (the local server's credentials) as globals, as the quick start assumes; what
-- they print is kept and shown when they fail. The server answers the personalization
-- resource the README's sample reads (STREAM_LOCAL_PERSONALIZATION).
local server = require "helpers.server"

local blocks_of = require "helpers.readme"

local README = server.root .. "/README.md"

describe("README.md", function()
  local s
  setup(function()
    -- the personalization sample's resource, as a reader's local server would have it
    s = server.start({ personalization = '{"follow_recommendations":[{"foreign_id":"user:bob"}]}' })
  end)
  teardown(function()
    if s then s:stop() end
  end)

  it("has Lua samples", function()
    local blocks = blocks_of.blocks(README, "lua")
    assert.is_true(#blocks >= 5, "found only " .. #blocks .. " ```lua blocks")
  end)

  it("runs every Lua sample in order against the local server", function()
    local blocks, nlines = blocks_of.blocks(README, "lua")
    local chunk = {}
    for i = 1, nlines do chunk[i] = "" end
    local ran = 0
    for _, b in ipairs(blocks) do
      if not blocks_of.is_nginx_module(b) then
        local i = b.first
        for line in (b.text .. "\n"):gmatch("([^\n]*)\n") do
          chunk[i] = line
          i = i + 1
        end
        ran = ran + 1
      end
    end
    local printed = {}
    local env = setmetatable({
      api_key = s.api_key, api_secret = s.api_secret, app_id = "1",
      print = function(...)
        local t = table.pack and table.pack(...) or { n = select("#", ...), ... }
        for k = 1, t.n do t[k] = tostring(t[k]) end
        printed[#printed + 1] = table.concat(t, "\t", 1, t.n)
      end,
    }, { __index = _G })
    -- The samples' client must reach the local server, not Stream: the quick start's
    -- stream.connect(api_key, api_secret, app_id) gets the base URL from here.
    local stream = require "stream"
    local connect = stream.connect
    env.require = function(name)
      if name ~= "stream" then return require(name) end
      return setmetatable({
        connect = function(key, secret, id, opts)
          opts = opts or {}
          if type(opts) == "table" and opts.base_url == nil then opts.base_url = s.base_url end
          return connect(key, secret, id, opts)
        end,
      }, { __index = stream })
    end
    local text = table.concat(chunk, "\n")
    local fn, perr
    if setfenv then -- luacheck: ignore 113
      fn, perr = loadstring(text, "@README.md") -- luacheck: ignore 113
      if fn then setfenv(fn, env) end -- luacheck: ignore 113
    else
      fn, perr = load(text, "@README.md", "t", env)
    end
    assert(fn, perr)
    local ok, err = xpcall(fn, debug.traceback)
    assert(ok, tostring(err) .. "\n-- the samples printed:\n" .. table.concat(printed, "\n"))
    assert.is_true(ran >= 5)
    assert.is_true(#printed > 0, "the samples printed nothing")
    -- nothing the samples printed may be an error of the library
    for _, line in ipairs(printed) do
      assert.is_nil(line:match("stream: %d%d%d"), "a sample printed an error: " .. line)
    end
    assert.is_nil(s:error_log():match("%[error%][^\n]*lua[^\n]*"))
  end)
end)

