-- Odd input on every feed endpoint: wrong JSON types, bad times, bad feed ids, repeated
-- and malformed query parameters, odd path segments. Each answer is a success or a
-- Stream 400, never a 500, and the error log holds no Lua error afterwards.

local server = require "helpers.server"
local http = require "helpers.http"
describe("local server feed endpoints with odd input", function()
  local s, api
  setup(function()
    s = server.start()
    api = http.api(s)
  end)

  teardown(function()
    if s then s:stop() end
  end)
  it("answer 2xx or 400, never 500", function()
    local bodies = { "[]", "1", '"x"', "null", "{}", '{"activities":{}}', '{"activities":[1,2]}',
      '{"activities":[[]]}',
      '{"actor":1,"verb":[],"object":{}}', '{"actor":"a","verb":"v","object":"o","to":[1,null,{}]}',
      '{"actor":"a","verb":"v","object":"o","time":12}', '{"actor":"a","verb":"v","object":"o","foreign_id":5}',
      '{"actor":"a","verb":"v","object":"o","target":5}', '{"target":5}',
      '{"target":"user:x","activity_copy_limit":"5"}',
      '{"target":"user:x","activity_copy_limit":1.5}', '{"target":"user:x","activity_copy_limit":1e3}',
      '{"actor":"a","verb":"v","object":"o","time":"2026-13-01T00:00:00"}',
      '{"actor":"a","verb":"v","object":"o","to":["user:"]}',
      '{"actor":"a","verb":"v","object":"o","to":["user:a b"]}', '{"actor":"a","verb":"v","object":-0.0}' }
    local paths = { "feed/user/x/", "feed/timeline/x/follows/", "feed/user/x/following/" }
    for _, p in ipairs(paths) do
      for _, b in ipairs(bodies) do
        local st, _, raw = api:call("POST", p, { body = b })
        assert.is_true(st == 201 or st == 400, p .. " " .. b .. " -> " .. st .. " " .. tostring(raw))
      end
    end
    for _, q in ipairs({ "limit=-1", "limit=abc", "offset=x", "id_lt=&id_gt=", "limit=1&limit=2", "id_lt=ZZZZ",
      "id_lte=24f9d500-bb87-11e5-8080-80012ce3cc51&id_gte=24f9d500-bb87-11e5-8080-80012ce3cc51" }) do
      for _, p in ipairs({ "feed/user/x/", "enrich/feed/user/x/", "feed/user/x/followers/", "feed/user/x/follows/",
        "activities/", "stats/follow/" }) do
        local st, _, raw = api:call("GET", p, { query = q })
        assert.is_true(st == 200 or st == 400, p .. "?" .. q .. " -> " .. st .. " " .. tostring(raw))
      end
    end
    for _, q in ipairs({ "ids=,,,", "ids=a,b", "foreign_ids=a&timestamps=x",
      "foreign_ids=a,b&timestamps=2026-01-01T00:00:00",
      "followers=x", "followers=user:", "following=flat:x", "followers=user:a&followers_slugs=,,", "filter=,,x" }) do
      for _, p in ipairs({ "activities/", "enrich/activities/", "stats/follow/", "feed/user/x/follows/" }) do
        local st, _, raw = api:call("GET", p, { query = q })
        assert.is_true(st == 200 or st == 400, p .. "?" .. q .. " -> " .. st .. " " .. tostring(raw))
      end
    end
    for _, p in ipairs({ "feed/user/x/%00/", "feed/user/x/follows/%FF/", "feed/user/x/follows/user:%20/",
      "feed/us%3Aer/x/y/" }) do
      local st, _, raw = api:call("DELETE", p)
      assert.is_true(st == 200 or st == 400, p .. " -> " .. st .. " " .. tostring(raw))
    end
    local log = s:error_log()
    assert.is_nil(log:find("unexpected error", 1, true), log)
  end)
end)
