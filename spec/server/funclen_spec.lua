-- server/funclen.lua: the function-length checker `make lint` runs over the local server.

local function write(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- run(args) -> output, exit code
local function run(args)
  local p = assert(io.popen("lua5.4 server/funclen.lua " .. args .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function body(n)
  local lines = {}
  for i = 1, n do lines[i] = "  x = x + " .. i end
  return table.concat(lines, "\n") .. "\n"
end

describe("server/funclen.lua", function()
  local paths = {}
  local function file(text)
    local path = write(text)
    paths[#paths + 1] = path
    return path
  end

  teardown(function()
    for _, p in ipairs(paths) do os.remove(p) end
  end)

  it("passes functions within the limit", function()
    local out, code = run("-n 10 " .. file("local x = 0\nlocal function f()\n" .. body(8) .. "end\nreturn f\n"))
    assert.are.equal("", out)
    assert.are.equal(0, code)
  end)

  it("names a longer function with its line and length, and exits 1", function()
    local path = file("local x = 0\nfunction M.long_one()\n" .. body(9) .. "end\n")
    local out, code = run("-n 10 " .. path)
    assert.are.equal(path .. ":2: M.long_one is 11 lines (limit 10)\n", out)
    assert.are.equal(1, code)
  end)

  it("follows nested blocks and skips strings and comments", function()
    local src = "local x = 0\nlocal f = function()\n"
      .. "  if x then for i = 1, 2 do x = i end end\n"
      .. "  while x do repeat x = nil until true end\n"
      .. "  local s = \"end end function\" .. 'do end' .. [[ end ]] .. [==[ if ]] end ]==]\n"
      .. "  -- end end\n  --[[ function\n  end ]]\n  local t = { ['end'] = 1 }\n  t.x = t['end']\n"
      .. "  ::continue::\n"
      .. "end\n"
    local out, code = run("-n 11 " .. file(src))
    assert.are.equal(0, code, out)
    out, code = run("-n 10 " .. file(src))
    assert.are.equal(1, code)
    assert.truthy(out:find(":2: f is 11 lines", 1, true), out)
  end)

  it("allows a function whose comment says why it is long", function()
    local path = file("local x = 0\n-- the rules, one per line\n-- long: a rule table that reads as one\n"
      .. "local function rules()\n" .. body(20) .. "end\n")
    local out, code = run("-n 10 " .. path)
    assert.are.equal("", out)
    assert.are.equal(0, code)
    out, code = run("-n 10 " .. file("local x = 0\n-- long:\nlocal function rules()\n" .. body(20) .. "end\n"))
    assert.are.equal(1, code, out)
  end)

  it("reports a file whose blocks it cannot follow", function()
    local out, code = run(file("local function f()\n  if x then\nend\n"))
    assert.are.equal(1, code)
    assert.truthy(out:find("cannot follow the blocks", 1, true), out)
  end)

  it("finds no function over 60 lines in the local server", function()
    local out, code = run("server/lua/stream_local/*.lua")
    assert.are.equal("", out)
    assert.are.equal(0, code)
  end)
end)
