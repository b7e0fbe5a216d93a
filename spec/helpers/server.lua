-- spec/helpers/server.lua: start and stop the local Stream server (server/start) from
-- specs.
--
--   local server = require "helpers.server"
--   local s = server.start({ faults = true, rate_limit = nil, workers = 2,
--                            api_key = ..., api_secret = ...,
--                            feed_groups = "user,timeline", db = path, memory = "64m",
--                            aggregation_formats = '{"agg":"{{ actor }}"}',
--                            personalization = '{"popular": [...]}' })
--   -- feed_groups: the STREAM_LOCAL_FEED_GROUPS text ("user,notification:notification"),
--   -- or a list of its items ({ "user", "timeline", "notification:notification" });
--   -- unset, the server's default groups
--   -- s.port, s.url ("http://127.0.0.1:PORT"), s.base_url (".../api/v1.0/"),
--   -- s.api_key, s.api_secret, s.prefix
--   s:error_log()  -- text of nginx's error log (e.g. to assert no Lua errors)
--   s:stop()   -- in teardown; calling it again does nothing
--
-- What it does: picks a free port (luasocket bind to port 0), runs
-- `server/start --daemon` (which returns once the server answers), retries with another
-- port when the port was taken meanwhile, and stops the server with `server/stop`.
-- The repository root is found from this file's location, else the current directory.
-- A server a spec forgot to stop is stopped when the Lua state closes.
--
-- What it deliberately does not do: no HTTP of its own (see helpers.http), no sharing of
-- one server between spec files (each file starts its own, so state never leaks).

local socket = require "socket"

local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function repo_root()
  local src = debug.getinfo(1, "S").source
  local root = "."
  if src:sub(1, 1) == "@" then
    local dir = src:sub(2):match("^(.*)/spec/helpers/[^/]+$")
    if dir and dir ~= "" then root = dir end
  end
  if root:sub(1, 1) ~= "/" then
    local pwd = os.getenv("PWD")
    if pwd and pwd ~= "" then
      root = root == "." and pwd or (pwd .. "/" .. root)
    end
  end
  return root
end
M.root = repo_root()

function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local Server = {}
Server.__index = Server

-- servers not stopped yet; whatever a failing spec left running is stopped when the
-- Lua state closes (busted exits with os.exit(code, true), which runs finalizers)
local running = {}
M._sentinel = setmetatable({}, { __gc = function()
  for srv in pairs(running) do srv:stop() end
end })

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  running[self] = nil
  os.execute(q(M.root .. "/server/stop") .. " " .. q(self.prefix) .. " >/dev/null 2>&1")
end

-- error_log() -> the text of the server's nginx error log ("" when there is none)
function Server:error_log()
  local f = io.open(self.prefix .. "/logs/error.log", "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- feed_groups_text(v) -> the STREAM_LOCAL_FEED_GROUPS value for opts.feed_groups
local function feed_groups_text(v)
  if type(v) == "table" then return table.concat(v, ",") end
  return v or ""
end

function M.start(opts)
  opts = opts or {}
  local last
  for _ = 1, 5 do
    local port = opts.port or M.free_port()
    local env = {
      "STREAM_LOCAL_PORT=" .. q(port),
      "STREAM_LOCAL_WORKERS=" .. q(opts.workers or 2),
      "STREAM_LOCAL_FAULTS=" .. (opts.faults and "1" or "''"),
      "STREAM_LOCAL_RATE_LIMIT=" .. q(opts.rate_limit or ""),
      "STREAM_API_KEY=" .. q(opts.api_key or "local-api-key"),
      "STREAM_API_SECRET=" .. q(opts.api_secret or "local-api-secret-change-me-0123456789"),
      "STREAM_LOCAL_FEED_GROUPS=" .. q(feed_groups_text(opts.feed_groups)),
      "STREAM_LOCAL_AGGREGATION_FORMATS=" .. q(opts.aggregation_formats or ""),
      "STREAM_LOCAL_DB=" .. q(opts.db or ""),
      "STREAM_LOCAL_MEMORY=" .. q(opts.memory or ""),
      "STREAM_LOCAL_PERSONALIZATION=" .. q(opts.personalization or ""),
    }
    local errf = os.tmpname()
    local cmd = "env " .. table.concat(env, " ") .. " " .. q(M.root .. "/server/start")
      .. " --daemon 2>" .. q(errf)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("*a")
    local ok = p:close()
    local f = io.open(errf, "rb")
    local err = f and f:read("*a") or ""
    if f then f:close() end
    os.remove(errf)
    local vars = {}
    for k, v in out:gmatch("([%w_]+)=([^\n]*)") do vars[k] = v end
    if ok and vars.STREAM_LOCAL_PREFIX then
      local s = setmetatable({
        port = port,
        url = "http://127.0.0.1:" .. port,
        base_url = "http://127.0.0.1:" .. port .. "/api/v1.0/",
        api_key = opts.api_key or "local-api-key",
        api_secret = opts.api_secret or "local-api-secret-change-me-0123456789",
        prefix = vars.STREAM_LOCAL_PREFIX,
      }, Server)
      running[s] = true
      return s
    end
    last = err
    if opts.port or not err:find("already in use", 1, true) then break end
  end
  error("could not start the local Stream server: " .. tostring(last), 2)
end

return M
