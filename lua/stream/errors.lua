-- stream.errors: the error values every request method returns as `nil, err`.
--
-- An error is a table with a __tostring, so `assert(res, err)`, `print(err)`
-- and `ngx.log(ngx.ERR, err)` all read well. Fields: kind ("api",
-- "transport", "timeout", "invalid", "decode"), status, code, exception,
-- detail, fields, rate_limit, method, path, retryable, attempts, sent.
-- `sent == false` means no byte of the request reached the server: a
-- failed write with it certainly did not happen. (`reason` says why a
-- transport failed: "connect", "limit", "closed", "phase", "transfer".)
--
-- This module builds errors; it sends nothing and never sees credentials.
-- Text that comes from outside (a server's detail) is scrubbed of the
-- client's secrets by the caller before it lands here.

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

function errors.is_error(v)
  return getmetatable(v) == Error
end

function errors.new(kind, detail, extra)
  local e = extra or {}
  e.kind = kind
  e.detail = detail
  if e.sent == nil then
    -- an answer came back, or the request was refused before sending
    e.sent = e.status ~= nil
  end
  if e.retryable == nil then e.retryable = retry.retryable(e) end
  return setmetatable(e, Error)
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

-- Builds the error for a non-2xx answer. `body` is the decoded JSON body
-- (a table) or nil when the body was not JSON; `raw` is the body text.
function errors.from_response(status, body, raw, headers, info)
  local e = {
    status = status,
    method = info.method,
    path = info.path,
    rate_limit = errors.rate_limit(headers),
  }
  local detail
  if type(body) == "table" then
    e.code = type(body.code) == "number" and body.code or nil
    e.exception = type(body.exception) == "string" and body.exception or nil
    detail = type(body.detail) == "string" and body.detail or nil
    if type(body.exception_fields) == "table" then
      e.fields = body.exception_fields
    end
    e.more_info = type(body.more_info) == "string" and body.more_info or nil
  end
  if status >= 300 and status < 400 then
    e.location = headers["location"]
    detail = "redirected to " .. tostring(e.location) .. " (redirects are not followed)"
  end
  if detail == nil then
    local text = raw or ""
    if #text > 200 then
      -- never cut inside a run of token characters: a part of a secret or
      -- token would be shown that the client's scrubber cannot recognise
      local cut = text:sub(1, 200)
      if text:sub(201, 201):find("^[%w%-_.]") then cut = cut:gsub("[%w%-_.]+$", "") end
      text = cut .. "..."
    end
    detail = text ~= "" and ("unexpected answer: " .. text) or "empty answer"
  end
  return errors.new("api", detail, e)
end

errors.Error = Error
return errors
