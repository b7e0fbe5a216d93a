-- `next` links from the wire: a capture peer plays the API and answers a
-- page whose `next` is hostile or broken; a second capture peer stands for
-- the host such a link names. The client must stop with `invalid` after the
-- one request it was asked to make, and the second peer must hear nothing.
local stream = require "stream"
local capture = require "helpers.capture"

local SECRET = "secret-for-paging-links-0123456789"

local function request_line(req)
  return req:match("^([^\r\n]*)")
end

-- The three iterators that follow `next`, each from a fresh client.
local walks = {
  ["feed:pages"] = function(c) return c:feed("user", "alice"):pages({ limit = 1 }) end,
  ["feed:each"] = function(c) return c:feed("user", "alice"):each({ limit = 1 }) end,
  ["client.reactions:pages"] = function(c)
    return c.reactions:pages({ activity_id = "0b0b0b0b-0000-4000-8000-000000000001", limit = 1 })
  end,
}

-- Runs `walk` against an API peer answering one page whose next is
-- link(api, other); returns what was yielded, the API peer's requests and
-- the other peer's requests.
local function walk_with(walk, link)
  local other = capture.start({ status = 200, body = '{"results":[],"next":""}', count = 1 })
  local api_port = capture.free_port()
  local api_url = "http://127.0.0.1:" .. api_port
  local next_link = link(api_url, other.url)
  local body = stream.json.encode({
    results = { { id = "r1", kind = "like", activity_id = "a1", verb = "v" } },
    next = next_link, duration = "0.1ms",
  })
  local api = capture.start({ status = 200, body = body, count = 2, port = api_port,
    headers = { ["Content-Type"] = "application/json" } })
  local c = stream.connect("key", SECRET, "1", { base_url = api.url, retries = 2,
    max_retry_wait = 0 })
  local yielded = {}
  local it = walk(c)
  for _ = 1, 5 do
    local v, err = it()
    yielded[#yielded + 1] = { v, err }
    if v == nil then break end
  end
  c:close()
  local sent, elsewhere = api.requests(), other.requests()
  api.stop(); other.stop()
  return yielded, sent, elsewhere, api.url
end

local hostile = {
  ["another host"] = function(_, other) return other .. "/api/v1.0/feed/user/alice/?id_lt=r1" end,
  ["a scheme change"] = function(api) return (api:gsub("^http:", "https:")) .. "/api/v1.0/feed/user/alice/" end,
  ["a protocol-relative link"] = function(_, other)
    return (other:gsub("^http:", "")) .. "/api/v1.0/feed/user/alice/"
  end,
  ["a CR/LF"] = function() return "/api/v1.0/feed/user/alice/?id_lt=r1\r\nHost: evil" end,
  ["a path outside the API prefix"] = function() return "/admin/feed/user/alice/" end,
  ["userinfo naming another host"] = function(api, other)
    return api .. "@" .. other:gsub("^http://", "") .. "/api/v1.0/feed/user/alice/"
  end,
}

for name, walk in pairs(walks) do
  describe(name .. " over HTTP", function()
    for what, link in pairs(hostile) do
      it("ends with invalid after one request on " .. what .. ", sending nothing elsewhere", function()
        local yielded, sent, elsewhere = walk_with(walk, link)
        assert.equal(1, #sent)
        assert.equal(0, #elsewhere)
        -- the first page (or its entry), then false + invalid, then the end
        assert.truthy(yielded[1][1])
        local last_err
        for _, y in ipairs(yielded) do
          if y[2] ~= nil then last_err = y[2] end
        end
        assert.is_table(last_err)
        assert.equal("invalid", last_err.kind)
        assert.is_nil(yielded[#yielded][1])
        assert.is_nil(tostring(last_err):find(SECRET, 1, true))
        assert.is_nil(tostring(last_err):find("[\r\n]"))
      end)
    end

    it("follows a link on its own base URL with its own api_key, not the link's", function()
      local yielded, sent, elsewhere = walk_with(walk, function(api)
        return api .. "/api/v1.0/feed/user/alice/?api_key=stolen&id_lt=r1&limit=1&api%5Fkey=stolen"
      end)
      assert.equal(2, #sent)
      assert.equal(0, #elsewhere)
      local line = request_line(sent[2])
      assert.matches("^GET /api/v1.0/feed/user/alice/%?", line)
      assert.is_nil(line:find("stolen", 1, true))
      assert.matches("api_key=key", line)
      assert.matches("id_lt=r1", line)
      assert.equal(1, select(2, line:gsub("api_key=", "")))
      assert.truthy(yielded[1][1])
    end)
  end)
end

describe("a refused next link that carries the client's own token", function()
  it("is shown without the token, not even the part of its signature that fits", function()
    -- a short user token: its signature starts within the 80 characters shown
    local token = stream.core.hs256(SECRET, '{"user_id":"x"}')
    local signature = token:match("([^.]+)$")
    for _, link in ipairs({ "/" .. token, "/api/v1.0/../" .. token, "//" .. token }) do
      local api = capture.start({ status = 200, count = 1,
        body = stream.json.encode({ results = {}, next = link }) })
      local c = stream.connect("key", token, "1", { base_url = api.url, retries = 0 })
      local it = c:feed("user", "alice"):pages()
      assert.is_table(it())
      local p, err = it()
      c:close(); api.stop()
      assert.matches("^stream: walk stopped: ", tostring(p))
      assert.equal("invalid", err.kind)
      local text = tostring(err) .. " " .. err.detail
      assert.is_nil(text:find(signature:sub(1, 12), 1, true), text)
      assert.matches("next link", text)
    end
  end)
end)
