-- stream_local.rules: validation as data, in the spirit of lapis' assert_valid. A handler
-- names its query parameters in a table of rules and gets their values and the errors
-- in the Stream shape ({ field, message } pairs for reply.invalid), written once.
--
-- What it does:
--   * query(args, rules, errors) -> values: for each rule of the list, in its order, its
--     parameter's value by name; a refused value adds { name, message } to errors and
--     reads as the rule's default. An absent or empty parameter reads as the default.
--   * A whole-number rule: { name, default, min, max, cap, message }: digits only, from
--     min to max; with cap, a number above max reads as max instead of being refused;
--     message replaces the standard "must be a whole number from MIN to MAX".
--   * A lenient number rule: { name, default, min, max, lenient = true }: any number
--     tonumber reads; one that is not a whole number of at least min reads as the
--     default and one above max as max, never an error (options that only tune a read).
--   * A text rule: { name, parse, message }: parse(value) -> what the handler uses, or nil
--     for a value to refuse with message.
--   * PAGE_OFFSET: the offset rule every paged read shares.
--
-- What it deliberately does not do: no body (JSON) rules; those stay with their handlers.

local request = require "stream_local.request"

local ipairs, tonumber, format, min, floor = ipairs, tonumber, string.format, math.min, math.floor

local M = {}

-- the whole-number rule for one query parameter
local function query_int(v, rule, errors)
  local n = v:find("^%d+$") and tonumber(v)
  if not n or n < rule.min or (n > rule.max and not rule.cap) then
    errors[#errors + 1] = { rule.name,
      rule.message or format("must be a whole number from %d to %d", rule.min, rule.max) }
    return rule.default
  end
  return min(n, rule.max)
end

local function query_lenient(v, rule)
  local n = tonumber(v)
  if not n or n ~= floor(n) or n < rule.min then return rule.default end
  return min(n, rule.max)
end

local function query_text(v, rule, errors)
  local value = rule.parse(v)
  if value == nil then
    errors[#errors + 1] = { rule.name, rule.message }
    return rule.default
  end
  return value
end

function M.query(args, rules, errors)
  local values = {}
  for _, rule in ipairs(rules) do
    local v = request.arg(args, rule.name)
    if v == nil or v == "" then
      values[rule.name] = rule.default
    elseif rule.parse then
      values[rule.name] = query_text(v, rule, errors)
    elseif rule.lenient then
      values[rule.name] = query_lenient(v, rule)
    else
      values[rule.name] = query_int(v, rule, errors)
    end
  end
  return values
end

M.PAGE_OFFSET = { name = "offset", default = 0, min = 0, max = 1000000000 }

return M
