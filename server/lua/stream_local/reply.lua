-- stream_local.reply: writing responses the way the Stream API shapes them.
--
-- What it does:
--   * send(status, json_text) writes a JSON response with Content-Length; the caller
--     passes the body without "duration" and this module appends "duration":"0.31ms".
--   * error(status, detail, fields) writes the Stream error body
--     {"detail","status_code","code","exception","duration","more_info"[,"exception_fields"]}
--     with the code/exception pair from the catalogue below.
--   * headers common to every answer: Content-Type, X-Stream-Local-Connection(-Requests).
--     Rate-limit headers are set by stream_local.ratelimit before any reply.
--
-- What it deliberately does not do: no content negotiation, no gzip, no pretty printing,
-- no CORS headers.

local clock = require "stream_local.clock"
local json = require "stream_local.json"

-- luacheck: globals ngx
local ngx = ngx
local format, concat = string.format, table.concat
local ipairs, type = ipairs, type

local M = {}

M.MORE_INFO = "https://getstream.io/docs/api_error_responses"

-- status -> { code, exception }. Codes from stream-api.md section 4; the ones marked
-- "server choice" in server/README.md are this server's own.
local CATALOGUE = {
  [301] = { 1, "MovedPermanently" },
  [400] = { 4, "InputException" },
  [401] = { 2, "ApiKeyException" },
  [403] = { 17, "NotAllowedException" },
  [404] = { 16, "DoesNotExistException" },
  [405] = { 1, "MethodNotAllowed" },
  [408] = { 1, "RequestTimeout" },
  [409] = { 22, "ConflictException" },
  [411] = { 4, "InputException" },
  [413] = { 18, "InputException" },
  [414] = { 4, "InputException" },
  [429] = { 9, "RateLimitReached" },
  [431] = { 4, "InputException" },
  [494] = { 4, "InputException" },
  [500] = { -1, "InternalServerError" },
  [502] = { -1, "BadGateway" },
  [503] = { -1, "ServiceUnavailable" },
  [504] = { -1, "GatewayTimeout" },
  [507] = { -1, "StorageFullException" },
}
M.CATALOGUE = CATALOGUE

local clock_ms = clock.monotonic_ms

-- start(): remember when handling began (per request, in ngx.ctx)
function M.start()
  ngx.ctx.stream_local_t0 = clock_ms()
end

function M.duration()
  local t0, ms = ngx.ctx.stream_local_t0, nil
  if t0 then
    local now = clock_ms()
    if now then ms = now - t0 end
  end
  if not ms then
    ngx.update_time()
    ms = (ngx.now() - ngx.req.start_time()) * 1000
  end
  if ms < 0 then ms = 0 end
  return format("%.2fms", ms)
end

function M.common_headers()
  ngx.header["X-Stream-Local-Connection"] = ngx.var.connection
  ngx.header["X-Stream-Local-Connection-Requests"] = ngx.var.connection_requests
end

local function write(status, body)
  M.common_headers()
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #body
  if ngx.req.get_method() ~= "HEAD" then
    ngx.print(body)
  end
  return true
end

-- send(status, text): text is a JSON object text without "duration"; it is appended.
function M.send(status, text)
  local d = '"duration":' .. json.quote(M.duration())
  if text == "{}" then
    return write(status, "{" .. d .. "}")
  end
  return write(status, text:sub(1, -2) .. "," .. d .. "}")
end

-- error_text(status, detail, fields, code, exception) -> the complete error body
function M.error_text(status, detail, fields, code, exception)
  local entry = CATALOGUE[status] or { 1, "StreamApiException" }
  code = code or entry[1]
  exception = exception or entry[2]
  local parts = {
    '{"detail":', json.quote(detail),
    ',"status_code":', format("%d", status),
    ',"code":', format("%d", code),
    ',"exception":', json.quote(exception),
    ',"duration":', json.quote(M.duration()),
    ',"more_info":', json.quote(M.MORE_INFO),
  }
  if fields then
    -- fields: list of { name, message } pairs, kept in order
    local seen, order = {}, {}
    for _, f in ipairs(fields) do
      if not seen[f[1]] then
        seen[f[1]] = {}
        order[#order + 1] = f[1]
      end
      local list = seen[f[1]]
      list[#list + 1] = json.quote(f[2])
    end
    local fparts = {}
    for i, name in ipairs(order) do
      fparts[i] = json.quote(name) .. ":[" .. concat(seen[name], ",") .. "]"
    end
    parts[#parts + 1] = ',"exception_fields":{' .. concat(fparts, ",") .. "}"
  end
  parts[#parts + 1] = "}"
  return concat(parts)
end

-- error(status, detail [, fields [, code, exception]])
-- fields: { {"id", "message"}, ... } or nil; code/exception override the catalogue.
function M.error(status, detail, fields, code, exception)
  if type(fields) == "table" and fields[1] == nil then fields = nil end
  return write(status, M.error_text(status, detail, fields, code, exception))
end

-- invalid(fields): 400 code 4, every { field, message } in the detail and in
-- exception_fields
function M.invalid(fields)
  local parts = {}
  for i, e in ipairs(fields) do parts[i] = e[1] .. ": " .. e[2] end
  return M.error(400, "invalid input: " .. concat(parts, "; "), fields)
end

return M
