-- One client per nginx worker (made in init_worker_by_lua) used by concurrent requests:
-- client:parallel and client:go with ngx.sleep inside the tasks, driven by many requests at
-- once from separate curl processes; close while requests are in flight. The handlers are
-- openresty/shared_cases.lua. Every wait is bounded (curl --max-time, socket timeouts), so a
-- wedged worker fails these specs instead of hanging them.
local S = require "openresty.support"
local burst = require "openresty.burst"
local server = require "helpers.server"

local HTTP = [[
  init_worker_by_lua_block {
    require("openresty.shared_cases").init_worker("@BASE@", "@KEY@", "@SECRET@")
  }
  server {
    listen 127.0.0.1:@PORT@;
    location /sc/ { content_by_lua_block { require("openresty.shared_cases").run() } }
    location = /log-phase {
      content_by_lua_block { ngx.say("ok") }
      log_by_lua_block { require("openresty.shared_cases").log_phase() }
    }
  }
]]

local USERS = 8

describe("one client per worker, shared by concurrent requests", function()
  local s, ng, pid0

  local function call(name, query)
    local status, res, _, raw = S.json_request("GET", ng.url .. "/sc/" .. name .. (query or ""),
      { timeout = 15 })
    assert.equal(200, status, raw)
    assert.is_table(res, raw)
    assert.is_nil(res.raised, res.raised)
    return res
  end

  setup(function()
    s = server.start({ faults = true })
    local http = HTTP:gsub("@BASE@", s.base_url):gsub("@KEY@", s.api_key):gsub("@SECRET@", s.api_secret)
    ng = S.nginx(http)
    pid0 = call("pid").pid
    assert(call("setup", "?n=" .. USERS).ok)
  end)

  teardown(function()
    if ng then ng:stop() end
    if s then s:stop() end
  end)

  it("keeps parallel tasks concurrent when they ngx.sleep: 5 x (0.2 s sleep + get + 0.1 s)", function()
    local r = call("parallel", "?n=5&sleep=0.2")
    assert.is_true(r.ok, table.concat(r.bad, "; "))
    assert.same({ 1, 2, 3, 4, 5 }, r.got)
    -- one after another it takes 5 x 0.3 s; concurrently about 0.3 s
    assert.is_true(r.seconds < 0.75, "took " .. r.seconds .. " s")
  end)

  it("keeps go tasks concurrent when they ngx.sleep, stepped in their own request", function()
    local r = call("go", "?n=4&sleep=0.2")
    assert.is_true(r.ok)
    assert.same({ 1, 2, 3, 4 }, r.got)
    assert.equal(0, r.left)
    assert.is_true(r.seconds < 0.75, "took " .. r.seconds .. " s")
  end)

  it("serves 16 requests at once, parallel + go + plain calls with ngx.sleep; the worker lives on", function()
    local urls = {}
    for i = 1, 16 do
      local kind = i % 4
      urls[i] = ng.url .. (kind == 0 and "/sc/plain?i=" .. (i % USERS + 1)
        or kind == 1 and "/sc/go?n=4&sleep=0.05"
        or "/sc/parallel?n=" .. USERS .. "&sleep=0.05" .. (kind == 2 and "&max=3" or ""))
    end
    local answers = burst.curls(urls, 20)
    for i, a in ipairs(answers) do
      assert.equal(200, a.status, "request " .. i .. " (" .. urls[i] .. "): " .. a.body)
      local res = S.read_json(a.body)
      assert.is_nil(res.raised, res.raised)
      assert.is_true(res.ok, a.body)
      assert.equal(pid0, res.pid)
    end
    -- responsive afterwards, same worker, nothing crashed
    assert.equal(pid0, call("pid").pid)
    assert.same({ pid0 }, burst.worker_pids(ng.prefix))
    local log = ng:error_log()
    assert.is_nil(log:find("signal", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
  end)

  it("raises at once when one request touches a task another request started", function()
    local answers = burst.curls({ ng.url .. "/sc/go_start?sleep=0.6", ng.url .. "/sc/go_other" }, 10)
    assert.equal(200, answers[1].status, answers[1].body)
    assert.equal(200, answers[2].status, answers[2].body)
    local a, b = S.read_json(answers[1].body), S.read_json(answers[2].body)
    assert.is_nil(a.raised, a.raised)
    assert.equal(42, a.result)
    assert.is_true(b.done_raised, answers[2].body)
    assert.is_true(b.result_raised, answers[2].body)
    assert.matches("another request", b.done_error)
    assert.matches("another request", b.result_error)
    -- this request had no task of its own: wait returned at once
    assert.equal(0, b.pending)
    assert.is_true(b.seconds < 0.3, answers[2].body)
  end)

  it("closes from a parallel task: parallel returns every result, calls in flight end as closed", function()
    local r = call("close_parallel", "?ms=300")
    assert.equal(5, r.n)
    local e = r.entries
    assert.is_true(e[1].ok, e[1].text)
    assert.equal(1, e[1].value)
    assert.equal("closed", e[2].value)
    for k = 3, 5 do
      assert.is_false(e[k].ok)
      assert.is_false(e[k].raised, e[k].text)
      assert.equal("closed", e[k].reason, e[k].text)
      -- the write was on the wire: the caller must assume it reached Stream
      assert.is_true(e[k].sent, e[k].text)
    end
    -- the writes did reach the server (it handles a request after its delay)
    for k, id in ipairs(r.ids) do
      assert.equal(k, call("exists", "?id=" .. id).k)
    end
  end)

  it("closes with go tasks in flight: step drains them, each call ends as closed", function()
    local r = call("close_go", "?ms=300")
    assert.is_nil(r.step_raised, r.step_raised)
    assert.equal(0, r.left)
    for i = 1, 3 do
      assert.is_nil(r.entries[i].unfinished)
      assert.is_false(r.entries[i].ok)
      assert.equal("closed", r.entries[i].reason, r.entries[i].text)
    end
  end)

  it("goes on with tasks that yield on their own or run coroutines of their own", function()
    local r = call("own_yield")
    assert.is_nil(r.raised, r.raised)
    assert.same({ "yielded", 2, "again", "slept" }, r.got)
    assert.is_true(r.seconds < 0.5, "took " .. r.seconds .. " s")
  end)

  it("runs parallel on the worker's client in an ngx.timer.at callback", function()
    local r = call("timer", "?n=4&sleep=0.2")
    assert.is_nil(r.error, r.error)
    assert.is_true(r.ok)
    assert.same({ 1, 2, 3, 4 }, r.got)
    assert.is_true(r.seconds < 0.75, "took " .. r.seconds .. " s")
  end)

  it("runs parallel's functions one after another where nginx has no light threads", function()
    assert.equal(200, (S.request("GET", ng.url .. "/log-phase")))
    local r = call("log_result")
    assert.equal(2, #r.entries)
    for i = 1, 2 do
      assert.is_false(r.entries[i].raised, r.entries[i].text)
      assert.equal("phase", r.entries[i].reason, r.entries[i].text)
      assert.matches("log phase", r.entries[i].text)
    end
    assert.is_true(r.go.raised)
    assert.matches("log phase has no light threads", r.go.error)
  end)

  it("leaves no Lua error and no crash in the error log", function()
    assert.same({ pid0 }, burst.worker_pids(ng.prefix))
    local log = ng:error_log()
    assert.is_nil(log:find("signal", 1, true), log)
    assert.is_nil(log:find("[error]", 1, true), log)
    assert.is_nil(log:find("[alert]", 1, true), log)
  end)
end)
