-- spec/helpers/readme.lua: the fenced code blocks of a Markdown file, for the specs that
-- run the README's samples (spec/client/readme_spec.lua, spec/openresty/readme_spec.lua).
local M = {}

-- The README's lines, and the fenced blocks of one language: { first =, last =, text = }
-- with first/last the line numbers of the code (fences excluded).
function M.blocks(path, lang)
  local lines = {}
  for line in assert(io.open(path)):lines() do lines[#lines + 1] = line end
  local out, open = {}, nil
  for i, line in ipairs(lines) do
    if open then
      if line:match("^```%s*$") then
        open.last = i - 1
        open.text = table.concat(lines, "\n", open.first, open.last)
        out[#out + 1] = open
        open = nil
      end
    elseif line:match("^```" .. lang .. "%s*$") then
      open = { first = i + 1 }
    end
  end
  assert(not open, path .. ": a ```" .. lang .. " block opened at line " .. (open and open.first or 0)
    .. " is never closed")
  return out, #lines
end

-- An nginx module sample: named by its first line and using the ngx API.
function M.is_nginx_module(block)
  return block.text:match("^%-%- [%w_]+%.lua") ~= nil and block.text:find("ngx%.") ~= nil
end

return M
