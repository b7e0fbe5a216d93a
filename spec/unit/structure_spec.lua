-- The shape of lua/stream as a whole, read from the source text: the
-- module graph has no cycle (lazy requires inside functions included), the
-- API areas reach the client only through its public fields (the pipeline
-- among them), and every module is installed by the rockspec.

local ROCKSPEC = "lua-stream-0.1.0-1.rockspec"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

-- Every .lua file under lua/stream, sorted.
local function module_files()
  local p = assert(io.popen("find lua/stream -name '*.lua' -type f | sort"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  assert(#files > 0, "no file found under lua/stream (run from the repository root)")
  return files
end

-- "lua/stream/transport/curl.lua" -> "stream.transport.curl"; init.lua -> its folder.
local function module_name(path)
  local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  return name
end

-- The source without comments (line comments and --[[ ]] blocks), so
-- words in them count for nothing; strings are kept.
local function code_of(text)
  text = text:gsub("%-%-%[(=*)%[.-%]%1%]", "")
  return (text:gsub("%-%-[^\n]*", ""))
end

-- The stream.* modules a source requires, in any of require's spellings.
local function requires(code)
  local out = {}
  for name in code:gmatch("require%s*%(?%s*[\"']([%w_.]+)[\"']") do
    if name == "stream" or name:find("^stream%.") then out[#out + 1] = name end
  end
  return out
end

local function graph()
  local g, files = {}, {}
  for _, path in ipairs(module_files()) do
    local name = module_name(path)
    files[name] = path
    g[name] = requires(code_of(read(path)))
  end
  return g, files
end

-- The first cycle found, as a list of module names ending where it starts; nil when none.
local function find_cycle(g)
  local state, stack = {}, {}
  local function visit(m)
    state[m] = "open"
    stack[#stack + 1] = m
    for _, dep in ipairs(g[m] or {}) do
      if g[dep] then
        if state[dep] == "open" then
          local cycle, on = {}, false
          for _, s in ipairs(stack) do
            if s == dep then on = true end
            if on then cycle[#cycle + 1] = s end
          end
          cycle[#cycle + 1] = dep
          return cycle
        elseif not state[dep] then
          local c = visit(dep)
          if c then return c end
        end
      end
    end
    stack[#stack] = nil
    state[m] = "done"
  end
  local names = {}
  for m in pairs(g) do names[#names + 1] = m end
  table.sort(names)
  for _, m in ipairs(names) do
    if not state[m] then
      local c = visit(m)
      if c then return c end
    end
  end
end

describe("the module graph of lua/stream", function()
  it("finds requires in every spelling, inside functions too", function()
    local code = code_of('local a = require "stream.a"\nlocal function f() return require("stream.b") end\n'
      .. "local c = require 'stream.c' -- require \"stream.d\"\nlocal x = require \"other\"")
    assert.same({ "stream.a", "stream.b", "stream.c" }, requires(code))
  end)

  it("finds a cycle, lazy or not", function()
    assert.same({ "a", "b", "a" }, find_cycle({ a = { "b" }, b = { "a" } }))
    assert.is_nil(find_cycle({ a = { "b" }, b = { "c" }, c = {} }))
  end)

  it("has no cycle", function()
    local g = graph()
    assert.is_table(g["stream.client"])
    local cycle = find_cycle(g)
    assert(cycle == nil, "require cycle: " .. table.concat(cycle or {}, " -> "))
  end)

  it("keeps handles.lua a leaf that requires no API area", function()
    local g = graph()
    for _, dep in ipairs(g["stream.handles"]) do
      assert(dep == "stream.check" or dep == "stream.errors", "stream.handles requires " .. dep)
    end
  end)
end)

-- Where a file reads an underscore field of a client (client._x,
-- self.client._x, client:_x()): the line numbers.
local function private_reads(code)
  local lines = {}
  local n = 1
  for line in (code .. "\n"):gmatch("([^\n]*)\n") do
    if line:find("client[.:]_[%a_]") then lines[#lines + 1] = n end
    n = n + 1
  end
  return lines
end

describe("the client's privates", function()
  it("are recognised in every spelling", function()
    assert.same({ 1, 2, 3 }, private_reads("x = client._core\ny = self.client._sched\nclient:_request(d)\n"
      .. "z = client.pipeline\nw = self._get_desc"))
  end)

  it("are read by client.lua only: the areas use client.pipeline and public fields", function()
    local bad = {}
    for _, path in ipairs(module_files()) do
      if path ~= "lua/stream/client.lua" then
        local lines = private_reads(code_of(read(path)))
        if #lines > 0 then bad[#bad + 1] = path .. ":" .. table.concat(lines, ",") end
      end
    end
    assert(#bad == 0, "underscore fields of the client read in " .. table.concat(bad, " "))
  end)

  it("are not read by the pipeline, which gets what it needs when it is built", function()
    local code = code_of(read("lua/stream/request.lua"))
    assert.is_nil(code:find("client[.:]"), "request.lua reads a field of a client")
  end)
end)

describe("the rockspec", function()
  it("installs every module of lua/stream under its name", function()
    local spec = read(ROCKSPEC)
    local listed = {}
    for name, path in spec:gmatch('%["([%w_.]+)"%]%s*=%s*"([^"]+)"') do listed[name] = path end
    local missing = {}
    for _, path in ipairs(module_files()) do
      local name = module_name(path)
      if listed[name] ~= path then missing[#missing + 1] = name .. " (" .. path .. ")" end
    end
    assert(#missing == 0, ROCKSPEC .. " does not list " .. table.concat(missing, ", "))
  end)
end)
