-- stream_local.rules: validation as data, in the spirit of lapis' assert_valid. A handler
-- names its query parameters in a table of rules and gets their values and the errors
-- in the Stream shape ({ field, message } pairs for reply.invalid), written once.
--
-- What it does:
--   * query(args, rules, errors) -> values: for each rule of the list, its parameter's
--     value by name; a refused value adds { name, message } to errors and reads as the
--     rule's default.
--   * A rule: { name, default, min, max, cap, message }: a whole number (digits only)
--     from min to max; with cap, a number above max reads as max instead of being
--     refused; message replaces the standard "must be a whole number from MIN to MAX".
--   * PAGE_OFFSET: the offset rule every paged read shares.
--
-- What it deliberately does not do: no body (JSON) rules; those stay with their handlers.

local request = require "stream_local.request"

local ipairs, tonumber, format, min = ipairs, tonumber, string.format, math.min

local M = {}

-- the whole-number rule for one query parameter
local function query_int(args, rule, errors)
  local v = request.arg(args, rule.name)
  if v == nil or v == "" then return rule.default end
  local n = v:find("^%d+$") and tonumber(v)
  if not n or n < rule.min or (n > rule.max and not rule.cap) then
    errors[#errors + 1] = { rule.name,
      rule.message or format("must be a whole number from %d to %d", rule.min, rule.max) }
    return rule.default
  end
  return min(n, rule.max)
end

function M.query(args, rules, errors)
  local values = {}
  for _, rule in ipairs(rules) do values[rule.name] = query_int(args, rule, errors) end
  return values
end

M.PAGE_OFFSET = { name = "offset", default = 0, min = 0, max = 1000000000 }

return M
