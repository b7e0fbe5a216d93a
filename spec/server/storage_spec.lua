-- Storage of the local server: STREAM_LOCAL_MEMORY bounds the database and a full one
-- answers a Stream-style 507 and writes nothing; STREAM_LOCAL_DB keeps state across a
-- restart; without it every start is clean.

local server = require "helpers.server"
local http = require "helpers.http"

local function act(i, pad)
  return '{"actor":"a","verb":"v","object":"o:' .. i .. '","pad":"' .. string.rep("x", pad or 8000) .. '"}'
end

describe("local server storage", function()
  describe("STREAM_LOCAL_MEMORY", function()
    local s, api

    setup(function()
      s = server.start({ memory = "2m" })
      api = http.api(s)
    end)

    teardown(function()
      if s then s:stop() end
    end)

    local function count(feed)
      local n, query = 0, "limit=100"
      while true do
        local _, b = api:call("GET", feed, { query = query })
        n = n + #b.results
        if b.next == "" then return n end
        query = b.next:match("%?(.*)$")
      end
    end

    it("a full database answers 507 with a Stream error body and keeps every earlier write whole", function()
      api:call("POST", "feed/timeline/m1/follows/", { body = '{"target":"user:m"}' })
      local added, st, b = 0, nil, nil
      for i = 1, 1000 do -- 2 MiB / ~8 kB: full long before 1000
        st, b = api:call("POST", "feed/user/m/", { body = act(i) })
        if st ~= 201 then break end
        added = added + 1
      end
      assert.are.equal(507, st)
      assert.are.equal(507, b.status_code)
      assert.are.equal(-1, b.code)
      assert.are.equal("StorageFullException", b.exception)
      assert.matches("STREAM_LOCAL_MEMORY", b.detail)
      assert.is_true(added > 50 and added < 1000, tostring(added))
      assert.are.equal(added, count("feed/user/m/"))
      assert.are.equal(added, count("feed/timeline/m1/"))
    end)

    it("a batch that does not fit writes nothing; user writes get 507 too; reads keep working", function()
      local before = count("feed/user/m/")
      local list = {}
      for i = 1, 20 do list[i] = act(1000 + i) end
      local st = api:call("POST", "feed/user/m/", { body = '{"activities":[' .. table.concat(list, ",") .. "]}" })
      assert.are.equal(507, st)
      assert.are.equal(before, count("feed/user/m/"))
      st = api:call("POST", "user/", { body = '{"id":"big","data":{"pad":"' .. string.rep("y", 9000) .. '"}}' })
      assert.is_true(st == 507 or st == 201)
      assert.are.equal(200, (api:call("GET", "feed/timeline/m1/")))
    end)

    it("removing activities frees room for new ones", function()
      local _, b = api:call("GET", "feed/user/m/", { query = "limit=100" })
      for i = 1, 30 do
        assert.are.equal(200, (api:call("DELETE", "feed/user/m/" .. b.results[i].id .. "/")))
      end
      assert.are.equal(201, (api:call("POST", "feed/user/m/", { body = act(5000) })))
    end)

    it("logged no unexpected Lua errors", function()
      local log = s:error_log()
      assert.is_nil(log:find("unexpected error", 1, true), log)
      assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
    end)
  end)

  describe("STREAM_LOCAL_DB", function()
    it("keeps users, activities and follows across a restart; without it a start is clean", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. http.shell_quote(dir)))
      local path = dir .. "/stream.db"
      local s = server.start({ db = path })
      local api = http.api(s)
      assert.are.equal(201, (api:call("POST", "user/", { body = '{"id":"keep","data":{"k":1}}' })))
      assert.are.equal(201, (api:call("POST", "feed/user/keep/", { body = act(1, 10) })))
      assert.are.equal(201, (api:call("POST", "feed/timeline/keep/follows/", { body = '{"target":"user:keep"}' })))
      s:stop()

      s = server.start({ db = path })
      api = http.api(s)
      local st, u = api:call("GET", "user/keep/", { query = "with_follow_counts=true" })
      assert.are.equal(200, st)
      assert.are.same({ k = 1 }, u.data)
      assert.are.equal(1, u.followers_count)
      local _, b = api:call("GET", "feed/timeline/keep/")
      assert.are.equal(1, #b.results)
      assert.are.equal("user:keep", b.results[1].origin)
      s:stop()

      s = server.start()
      api = http.api(s)
      assert.are.equal(404, (api:call("GET", "user/keep/")))
      s:stop()
      os.execute("rm -rf " .. http.shell_quote(dir))
    end)

    it("adds the arrival-time column to a kept file from before notification feeds", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. http.shell_quote(dir)))
      local path = dir .. "/stream.db"
      -- the feed_items table as files kept before section 9 have it (made with LuaJIT's FFI)
      local script = [[
local ffi = require "ffi"
ffi.cdef("typedef struct sqlite3 sqlite3; int sqlite3_open(const char *, sqlite3 **);"
  .. "int sqlite3_exec(sqlite3 *, const char *, void *, void *, char **); int sqlite3_close(sqlite3 *);")
local lib = ffi.load("libsqlite3.so.0")
local db = ffi.new("sqlite3 *[1]")
assert(lib.sqlite3_open(arg[1], db) == 0)
assert(lib.sqlite3_exec(db[0], "CREATE TABLE feed_items (feed_id TEXT NOT NULL, activity_id TEXT NOT NULL, "
  .. "sk TEXT NOT NULL, origin TEXT, PRIMARY KEY (feed_id, activity_id)) WITHOUT ROWID;", nil, nil, nil) == 0)
lib.sqlite3_close(db[0])
]]
      local f = assert(io.open(dir .. "/old.lua", "wb"))
      f:write(script)
      f:close()
      assert(os.execute("luajit " .. http.shell_quote(dir .. "/old.lua") .. " " .. http.shell_quote(path)))
      local s = server.start({ db = path })
      local api = http.api(s)
      assert.are.equal(201, (api:call("POST", "feed/notification/kept/", { body = act(1, 10) })))
      local st, b, raw = api:call("GET", "feed/notification/kept/")
      assert.are.equal(200, st, raw)
      assert.are.equal(1, #b.results)
      assert.is_true(b.results[1].created_at > "2026", b.results[1].created_at)
      local log = s:error_log()
      s:stop()
      assert.is_nil(log:find("unexpected error", 1, true), log)
      os.execute("rm -rf " .. http.shell_quote(dir))
    end)

    it("fills the homes of a kept file from before them, so removals and target updates find them", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. http.shell_quote(dir)))
      local path = dir .. "/stream.db"
      local s = server.start({ db = path })
      local api = http.api(s)
      api:call("POST", "feed/timeline/hf/follows/", { body = '{"target":"user:home"}' })
      local _, a = api:call("POST", "feed/user/home/", { body = '{"actor":"a","verb":"v","object":"o",'
        .. '"foreign_id":"kept:1","time":"2026-10-01T00:00:00","to":["user:kt"]}' })
      s:stop()
      -- a file kept before the table of homes existed (made with LuaJIT's FFI)
      local f = assert(io.open(dir .. "/old.lua", "wb"))
      f:write([[
local ffi = require "ffi"
ffi.cdef("typedef struct sqlite3 sqlite3; int sqlite3_open(const char *, sqlite3 **);"
  .. "int sqlite3_exec(sqlite3 *, const char *, void *, void *, char **); int sqlite3_close(sqlite3 *);")
local lib = ffi.load("libsqlite3.so.0")
local db = ffi.new("sqlite3 *[1]")
assert(lib.sqlite3_open(arg[1], db) == 0)
assert(lib.sqlite3_exec(db[0], "DROP TABLE direct;", nil, nil, nil) == 0)
lib.sqlite3_close(db[0])
]])
      f:close()
      assert(os.execute("luajit " .. http.shell_quote(dir .. "/old.lua") .. " " .. http.shell_quote(path)))
      s = server.start({ db = path })
      api = http.api(s)
      local st, b, raw = api:call("POST", "feed_targets/user/home/activity_to_targets/",
        { body = '{"id":"' .. a.id .. '","added_targets":["user:kt2"]}' })
      assert.are.equal(201, st, raw)
      assert.are.same({ "user:kt", "user:kt2" }, b.activity.to)
      st, _, raw = api:call("DELETE", "feed/user/home/" .. a.id .. "/")
      assert.are.equal(200, st, raw)
      for _, feed in ipairs({ "user/home", "timeline/hf", "user/kt", "user/kt2" }) do
        local _, got = api:call("GET", "feed/" .. feed .. "/")
        assert.are.same({}, got.results, feed)
      end
      local _, got = api:call("GET", "activities/", { query = "ids=" .. a.id })
      assert.are.same({}, got.results)
      local log = s:error_log()
      s:stop()
      assert.is_nil(log:find("unexpected error", 1, true), log)
      os.execute("rm -rf " .. http.shell_quote(dir))
    end)
  end)
end)
