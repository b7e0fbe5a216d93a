-- One rule per kind of value, whichever method takes it (lua/stream/rules.lua):
-- the requests a capture peer sees, and what is refused before sending.
local stream = require "stream"
local capture = require "helpers.capture"

local UUID = "0b9b8b5c-2f3e-11ef-9d4a-0242ac120002"

local function request_line(req)
  return req:match("^([^\r\n]*)")
end

-- Sends each call to a fresh capture peer and returns the raw requests.
local function sent(calls)
  local peer = capture.start({ status = 201, body = '{"duration":"0.1ms","results":[],"next":""}',
    count = #calls })
  local c = stream.connect("key", "secret-for-wire-specs-0123456789", "1",
    { base_url = peer.url, retries = 0 })
  for _, call in ipairs(calls) do call(c) end
  c:close()
  local reqs = peer.requests()
  peer.stop()
  return reqs
end

-- A client whose requests can never reach a server: a refused call must
-- not try.
local function offline()
  return stream.connect("key", "secret-for-wire-specs-0123456789", "1",
    { base_url = "http://127.0.0.1:9/", retries = 0 })
end

local function refused(res, err)
  assert.is_nil(res)
  assert.equal("invalid", err.kind)
  assert.is_false(err.sent)
  return err
end

describe("an activity id", function()
  it("one Stream UUID is accepted by every method taking an activity id", function()
    local reqs = sent({
      function(c) assert(c:feed("user", "a"):remove_activity(UUID)) end,
      function(c) assert(c:get_activities({ ids = { UUID, UUID } })) end,
      -- the canned answer is no updated activity: these check only what was sent
      function(c) c:activity_partial_update({ id = UUID, set = { x = 1 } }) end,
      function(c) c:activities_partial_update({ { id = UUID, set = { x = 1 } } }) end,
      function(c) c:feed("user", "a"):update_activity_to_targets({ id = UUID, new_targets = { "user:b" } }) end,
      function(c) assert(c.reactions:add("like", UUID, nil, { user_id = "bob" })) end,
      function(c) assert(c.reactions:filter({ activity_id = UUID })) end,
      function(c) assert(c:feed("user", "a"):get({ id_lt = UUID })) end,
      function(c) assert(c.reactions:filter({ activity_id = UUID, id_lt = UUID })) end,
    })
    assert.equal(9, #reqs)
    for _, req in ipairs(reqs) do assert.truthy(req:find(UUID, 1, true)) end
    assert.matches("^DELETE /api/v1.0/feed/user/a/" .. UUID:gsub("%-", "%%-") .. "/", request_line(reqs[1]))
  end)

  it("'..' or a slash is refused by every method, nothing sent", function()
    local c = offline()
    for _, bad in ipairs({ "..", "a/b" }) do
      refused(c:feed("user", "a"):remove_activity(bad))
      refused(c:get_activities({ ids = { bad } }))
      refused(c:activity_partial_update({ id = bad, set = { x = 1 } }))
      refused(c.reactions:add("like", bad, nil, { user_id = "bob" }))
      refused(c.reactions:filter({ activity_id = bad }))
      refused(c:feed("user", "a"):get({ id_lt = bad }))
    end
    c:close()
  end)
end)

describe("paging options", function()
  it("use the server's ranges: out of range is invalid, nothing sent", function()
    local c = offline()
    refused(c:feed("user", "a"):get({ limit = 101 }))
    refused(c:feed("user", "a"):get({ limit = 0 }))
    refused(c:feed("user", "a"):get({ offset = -1 }))
    refused(c:feed("user", "a"):followers({ limit = 501 }))
    refused(c:feed("user", "a"):following({ offset = -1 }))
    refused(c.reactions:filter({ activity_id = UUID, limit = 0 }))
    local _, err = c:feed("user", "a"):pages({ limit = 101 })()
    refused(nil, err)
    c:close()
  end)

  it("send the edges of each range, and a reaction limit above 25", function()
    local reqs = sent({
      function(c) assert(c:feed("user", "a"):get({ limit = 100, offset = 0 })) end,
      function(c) assert(c:feed("user", "a"):followers({ limit = 500 })) end,
      function(c) assert(c.reactions:filter({ activity_id = UUID, limit = 26 })) end,
    })
    assert.truthy(request_line(reqs[1]):find("limit=100", 1, true))
    assert.truthy(request_line(reqs[2]):find("limit=500", 1, true))
    assert.truthy(request_line(reqs[3]):find("limit=26", 1, true))
  end)
end)

describe("the user_id option", function()
  it("always runs the user id check", function()
    local c = offline()
    refused(c:feed("user", "a"):get({ user_id = "bad id!" }))
    refused(c:get_activities({ ids = { UUID } }, { user_id = "bad id!" }))
    refused(c.reactions:add("like", UUID, nil, { user_id = "bad id!" }))
    refused(c.reactions:filter({ activity_id = UUID, filter_user_id = "bad id!" }))
    refused(c.collections:add("food", { a = 1 }, { user_id = "bad id!" }))
    assert.has_error(function() c:feed("user", "a"):get({ user_id = 42 }) end)
    c:close()
  end)
end)

describe("a refused request", function()
  it("names its path with the bad id cut the same way and no raw newline", function()
    local c = offline()
    local bad = "x\n" .. string.rep("y", 300)
    local shown = "x\\010" .. string.rep("y", 38) .. "..."
    local e1 = refused(c:user(bad):get())
    local e2 = refused(c:feed("user", bad):get())
    local e3 = refused(c.reactions:get(bad))
    assert.equal("user/" .. shown .. "/", e1.path)
    assert.equal("feed/user/" .. shown .. "/", e2.path)
    assert.equal("reaction/" .. shown .. "/", e3.path)
    c:close()
  end)
end)
