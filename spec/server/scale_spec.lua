-- Scale of the local server's emulation: a feed of 100,000 activities and a feed with
-- 10,000 followers work, and a page of the big feed costs about what a page of a small
-- one does (bench/server-feed-scale measures it in detail). Bounded: 1,100 batch adds
-- and 10,000 follows over kept-alive connections, each curl call limited to 300 s.

local server = require "helpers.server"
local http = require "helpers.http"

describe("local server at scale", function()
  local s, api, auth

  setup(function()
    s = server.start({ memory = "2g" })
    api = http.api(s)
    auth = api:headers()
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function post_many(paths, body)
    local urls = {}
    for i, p in ipairs(paths) do urls[i] = api:url(p) end
    local res = http.request_many("POST", urls, { headers = auth, body = body, timeout = 300 })
    assert.are.equal(#paths, #res)
    for _, r in ipairs(res) do assert.are.equal(201, r.status) end
  end

  local function batch()
    local list = {}
    for i = 1, 100 do list[i] = '{"actor":"SU:u","verb":"post","object":"o:' .. i .. '"}' end
    return '{"activities":[' .. table.concat(list, ",") .. "]}"
  end

  local function get(path, query)
    local st, b, raw = api:call("GET", path, { query = query })
    assert.are.equal(200, st, raw)
    return b
  end

  -- the median of curl's time_total (ms) over n reads of url on one connection
  local function median_ms(url, n)
    local a = { "curl -s --noproxy '*' --http1.1 --max-time 60" }
    for k, v in pairs(auth) do a[#a + 1] = "-H " .. http.shell_quote(k .. ": " .. v) end
    a[#a + 1] = "-w " .. http.shell_quote("%{http_code} %{time_total}\\n")
    for _ = 1, n do a[#a + 1] = "-o /dev/null " .. http.shell_quote(url) end
    local out = http.run(table.concat(a, " "))
    local ms = {}
    for code, t in out:gmatch("(%d+) ([%d.]+)\n") do
      assert.are.equal("200", code)
      ms[#ms + 1] = tonumber(t) * 1000
    end
    assert.are.equal(n, #ms)
    table.sort(ms)
    return ms[math.floor(n / 2) + 1]
  end

  it("a feed of 100,000 activities reads pages newest first at about the cost of a feed of 100", function()
    post_many({ "feed/user/small/" }, batch())
    local paths = {}
    for i = 1, 100 do paths[i] = "feed/user/big/" end
    for _ = 1, 10 do post_many(paths, batch()) end
    assert.are.equal(50, #get("feed/user/big/", "limit=100&offset=99950").results)
    assert.are.equal(0, #get("feed/user/big/", "limit=100&offset=100000").results)
    local top = get("feed/user/big/", "limit=25")
    assert.are.equal(25, #top.results)
    local mid = get("feed/user/big/", "limit=1&offset=50000").results[1].id
    local page = get("feed/user/big/", "limit=25&id_lt=" .. mid)
    assert.are.equal(25, #page.results)

    local small, big = {}, {}
    for round = 1, 3 do
      small[round] = median_ms(api:url("feed/user/small/", { query = "limit=25" }), 60)
      big[round] = median_ms(api:url("feed/user/big/", { query = "limit=25&id_lt=" .. mid }), 60)
    end
    table.sort(small)
    table.sort(big)
    -- measured ratio about 1.5 (server/README.md); 5 leaves room for a busy machine
    assert.is_true(big[2] < 5 * small[2] + 0.5, string.format("big %.3f ms, small %.3f ms", big[2], small[2]))
  end)

  it("a feed with 10,000 followers fans an add out to all of them", function()
    for chunk = 0, 9 do
      local ps = {}
      for i = 1, 1000 do ps[i] = "feed/timeline/t" .. (chunk * 1000 + i) .. "/follows/" end
      post_many(ps, '{"target":"user:celeb","activity_copy_limit":0}')
    end
    local st, a = api:call("POST", "feed/user/celeb/", { body = '{"actor":"a","verb":"v","object":"fanout"}' })
    assert.are.equal(201, st)
    for _, i in ipairs({ 1, 5000, 10000 }) do
      local got = get("feed/timeline/t" .. i .. "/").results
      assert.are.equal(1, #got)
      assert.are.equal(a.id, got[1].id)
      assert.are.equal("user:celeb", got[1].origin)
    end
    local _, stats = api:call("GET", "stats/follow/", { query = "followers=user:celeb" })
    assert.are.equal(10000, stats.results.followers.count)
    local rows = get("feed/user/celeb/followers/", "limit=25&offset=9975").results
    assert.are.equal(25, #rows)
    assert.are.equal("timeline:t1", rows[25].feed_id)
    assert.are.equal(200, (api:call("DELETE", "feed/user/celeb/" .. a.id .. "/")))
    assert.are.same({}, get("feed/timeline/t10000/").results)
  end)

  it("logged no unexpected Lua errors", function()
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
    assert.is_nil(log:find("lua entry thread aborted", 1, true), log)
  end)
end)
