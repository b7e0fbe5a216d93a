-- Every API area inside a real nginx (one worker), through the ngx transport, against
-- the local server: feeds with pages and enrichment, reactions, collections, activity
-- updates, notification feeds and parallel reads. The scenarios run in nginx
-- (openresty/areas_cases.lua); this file starts both servers and checks the summaries.
local S = require "openresty.support"
local server = require "helpers.server"

local HTTP = [[
  server {
    listen 127.0.0.1:@PORT@;
    location = /area { content_by_lua_block { require("openresty.areas_cases").run() } }
  }
]]

describe("API areas inside nginx", function()
  local s, ng

  setup(function()
    s = server.start()
    ng = S.nginx(HTTP)
  end)

  teardown(function()
    if ng then ng:stop() end
    if s then s:stop() end
  end)

  local function case(name)
    local status, res, _, raw = S.json_request("GET", ng.url .. "/area?case=" .. name
      .. "&base=" .. s.base_url .. "&key=" .. s.api_key .. "&secret=" .. s.api_secret)
    assert.equal(200, status, raw)
    assert.is_nil(res.error, res.error)
    return res
  end

  it("feeds: follows, pages across boundaries, enrichment, a deleted actor", function()
    local r = case("feeds")
    assert.equal("ngx", r.transport)
    assert.equal(3, r.pages)
    assert.same({ "Alice 2", "Alice 2", "Alice 2", "Alice 2", "Alice 2" }, r.names)
    assert.is_true(r.missing)
    assert.is_true(r.followers)
  end)

  it("reactions: pages, children, counts with users, delete, own ids", function()
    local r = case("reactions")
    assert.equal(4, r.seen)
    assert.is_true(r.newest_first)
    assert.is_true(r.child_parent)
    assert.equal(4, r.likes)
    assert.equal("Rea", r.user_name)
    assert.equal(3, r.after_delete)
    assert.is_true(r.own_id)
  end)

  it("collections: SO: enrichment, upsert, select, missing after delete", function()
    local r = case("collections")
    assert.equal("Lava", r.name)
    assert.equal("Lava 2", r.selected)
    assert.is_true(r.missing)
  end)

  it("activity updates show in a follower's copy", function()
    local r = case("updates")
    assert.equal(2, r.answered)
    assert.equal(2, r.seen_by_follower)
    assert.equal("x", r.extra)
  end)

  it("notification feeds: groups, marks, enriched actors", function()
    local r = case("notifications")
    assert.equal(1, r.unseen_before)
    assert.equal(0, r.unseen_after)
    assert.equal(1, r.groups)
    assert.equal("Fan", r.actor)
  end)

  it("parallel reads in light threads", function()
    local r = case("parallel")
    assert.same({ "8", "7", "6", "5", "4", "3", "2", "1" }, r.objects)
  end)

  it("leaves no Lua errors in nginx's error log", function()
    assert.is_nil(ng:error_log():find("lua entry thread aborted", 1, true))
    assert.is_nil(s:error_log():find("unexpected error", 1, true))
  end)
end)
