-- stream.errors: the error values every request method returns as `nil, err`.
--
-- An error is a table with a __tostring and a __concat, so `assert(res,
-- err)`, `print(err)`, `ngx.log(ngx.ERR, err)` and `"failed: " .. err` all
-- read as text (ngx.say and string.format("%s") need tostring(err) first).
-- Fields: kind ("api", "transport", "timeout", "invalid", "decode"),
-- status, code, exception, detail, fields, rate_limit, method, path,
-- retryable, attempts, sent. `sent == false` means no byte of the request
-- reached the server: a failed write with it certainly did not happen.
-- (`reason` says why a transport failed: "connect", "limit" (an answer over
-- max_response_bytes or max_header_bytes), "malformed" (an answer that
-- breaks HTTP), "closed", "phase", "transfer", "header" (a request's own
-- headers refused before any I/O, kind "invalid").)
--
-- The one place where text from outside is cleaned: from_response and
-- from_transport take the client's scrubber (`info.scrub`, a function) and
-- run every string they take from an answer or a transport (detail,
-- exception, fields, more_info, location, a non-JSON body, a transport
-- message) through it before anything is cut, so not even a part of a
-- secret or token can be shown. outside() does the same for other callers
-- (paging's next links). This module never sees the credentials themselves.

local retry = require "stream.retry"

local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "stream.error"

local function where(e)
  if e.method and e.path then
    return " [" .. e.method .. " " .. e.path .. "]"
  end
  return ""
end

function Error.__tostring(e)
  if e.kind == "api" then
    local head = "stream: " .. tostring(e.status)
    if e.exception then head = head .. " " .. e.exception end
    if e.code ~= nil then head = head .. " (code " .. tostring(e.code) .. ")" end
    local detail = e.detail and (": " .. e.detail) or ""
    return head .. detail .. where(e)
  end
  return "stream: " .. e.kind .. ": " .. tostring(e.detail) .. where(e)
end

-- "failed: " .. err and err .. "!" read as text; a value that is neither
-- a string, a number nor an error still raises as Lua's own `..` does.
function Error.__concat(a, b)
  if getmetatable(a) == Error then a = Error.__tostring(a) end
  if getmetatable(b) == Error then b = Error.__tostring(b) end
  return a .. b
end

function errors.is_error(v)
  return getmetatable(v) == Error
end

-- idempotent: whether the request may be sent twice (its description's
-- flag); retryable depends on it (retry.lua).
function errors.new(kind, detail, extra, idempotent)
  local e = extra or {}
  e.kind = kind
  e.detail = detail
  if e.sent == nil then
    -- an answer came back, or the request was refused before sending
    e.sent = e.status ~= nil
  end
  if e.retryable == nil then e.retryable = retry.retryable(e, idempotent) end
  return setmetatable(e, Error)
end

---------------------------------------------------------------- scrubbing

-- A copy of a decoded value from outside (exception_fields) with every
-- string, keys included, scrubbed; nesting past a few levels is dropped
-- (Stream's fields are a map of lists of strings).
local SCRUB_DEPTH = 8
local function scrub_tree(scrub, v, depth)
  if type(v) == "string" then return scrub(v) end
  if type(v) ~= "table" then return v end
  if depth >= SCRUB_DEPTH then return nil end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    local sk = scrub_tree(scrub, k, depth + 1)
    if sk ~= nil then out[sk] = scrub_tree(scrub, x, depth + 1) end
  end
  return out
end

local function keep(v) return v end

-- Text from outside, scrubbed, then at most `max` characters (with "..."),
-- never cut inside a run of token characters: a part of a secret or token
-- would be shown that the scrubber could not recognise as one.
function errors.outside(text, scrub, max)
  text = (scrub or keep)(text)
  if max and #text > max then
    local cut = text:sub(1, max)
    if text:sub(max + 1, max + 1):find("^[%w%-_.]") then cut = cut:gsub("[%w%-_.]+$", "") end
    text = cut .. "..."
  end
  return text
end

function errors.invalid(detail, field, extra)
  local e = extra or {}
  if field then
    e.fields = { [field] = { detail } }
  end
  return errors.new("invalid", detail, e)
end

-- Rate-limit headers as numbers, or nil when the answer carried none.
function errors.rate_limit(headers)
  local limit = tonumber(headers["x-ratelimit-limit"])
  local remaining = tonumber(headers["x-ratelimit-remaining"])
  local reset = tonumber(headers["x-ratelimit-reset"])
  if limit == nil and remaining == nil and reset == nil then return nil end
  return { limit = limit, remaining = remaining, reset = reset }
end

local function text_of(v, scrub)
  if type(v) == "string" then return scrub(v) end
  return nil
end

-- Builds the error for a non-2xx answer. `body` is the decoded JSON body
-- (a table) or nil when the body was not JSON; `raw` is the body text.
-- info: method, path, idempotent, scrub (the client's scrubber).
function errors.from_response(status, body, raw, headers, info)
  local scrub = info.scrub or keep
  local e = {
    status = status,
    method = info.method,
    path = info.path,
    rate_limit = errors.rate_limit(headers),
  }
  local detail
  if type(body) == "table" then
    e.code = type(body.code) == "number" and body.code or nil
    e.exception = text_of(body.exception, scrub)
    detail = text_of(body.detail, scrub)
    if type(body.exception_fields) == "table" then
      e.fields = scrub_tree(scrub, body.exception_fields, 0)
    end
    e.more_info = text_of(body.more_info, scrub)
  end
  if status >= 300 and status < 400 then
    e.location = text_of(headers["location"], scrub)
    detail = "redirected to " .. tostring(e.location) .. " (redirects are not followed)"
  end
  if detail == nil then
    local text = errors.outside(raw or "", scrub, 200)
    detail = text ~= "" and ("unexpected answer: " .. text) or "empty answer"
  end
  return errors.new("api", detail, e, info.idempotent)
end

-- Builds the error for a failed transfer (the transport contract's
-- {kind, message, sent, reason}); info as for from_response.
local MAX_MESSAGE = 300 -- a transport message may quote a broken answer
function errors.from_transport(fail, info)
  return errors.new(fail.kind, errors.outside(tostring(fail.message), info.scrub, MAX_MESSAGE), {
    method = info.method, path = info.path, sent = fail.sent, reason = fail.reason,
  }, info.idempotent)
end

errors.Error = Error
return errors
