-- Spec helper: the small views of decoded answers that specs compare, written once.
--
--   shape.keys(t)              -> "a,b,c": the table's keys, sorted, joined by ","
--   shape.key_list(t [, skip]) -> {"a", "b", "c"}: the keys sorted, without `skip`
--   shape.without_duration(t)  -> a shallow copy of t without its `duration`
--   shape.ids_of(list)         -> the `id` of every entry, in order
local M = {}

function M.key_list(t, skip)
  local list = {}
  for k in pairs(t) do
    if k ~= skip then list[#list + 1] = k end
  end
  table.sort(list)
  return list
end

function M.keys(t)
  return table.concat(M.key_list(t), ",")
end

function M.without_duration(t)
  local c = {}
  for k, v in pairs(t) do
    if k ~= "duration" then c[k] = v end
  end
  return c
end

function M.ids_of(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.id end
  return out
end

return M
