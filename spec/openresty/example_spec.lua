-- examples/openresty: the profile API on nginx (one worker) in front of the local
-- Stream server, driven over real HTTP. Upstream faults are programmed through the
-- local server's /_local/faults, so the example itself carries no test code.
local cjson = require "cjson.safe"
local socket = require "socket"
local S = require "openresty.support"
local server = require "helpers.server"
local http = require "helpers.http"
local tls = require "helpers.tls"

local uid = require("helpers.client").uid

describe("examples/openresty", function()
  local s, ex

  setup(function()
    s = server.start({ faults = true })
    ex = S.example({
      base_url = s.url .. "/api/",
      env = { PROFILES_TIMEOUT = "1", PROFILES_RETRIES = "0" },
    })
  end)

  teardown(function()
    if ex then ex:stop() end
    if s then s:stop() end
  end)

  local function call(method, path, body, headers)
    return S.json_request(method, ex.url .. path, {
      body = body and (type(body) == "string" and body or cjson.encode(body)),
      headers = headers,
    })
  end

  -- Queues a fault for the next upstream requests (see server/README.md).
  local function program(fault)
    local status = S.request("POST", s.url .. "/_local/faults", { body = cjson.encode(fault) })
    assert.equal(201, status)
  end

  local function clear_faults()
    S.request("DELETE", s.url .. "/_local/faults")
  end

  local function stats()
    local status, st = call("GET", "/_stats")
    assert.equal(200, status)
    return st
  end

  after_each(clear_faults)

  describe("users methods through the handler", function()
    it("creates, refuses a duplicate, reads, replaces, references and deletes a profile", function()
      local id = uid("prof")
      local status, p = call("POST", "/profiles/" .. id, { name = "Jane", level = 3 })
      assert.equal(201, status)
      assert.equal(id, p.id)
      assert.same({ name = "Jane", level = 3 }, p.data)
      assert.is_nil(p.duration)

      local st, e = call("POST", "/profiles/" .. id, { name = "Other" })
      assert.equal(409, st)
      assert.equal("api", e.error.kind)
      assert.equal(22, e.error.code)

      st, p = call("POST", "/profiles/" .. id .. "?get_or_create=1", { name = "ignored" })
      assert.equal(201, st)
      assert.same({ name = "Jane", level = 3 }, p.data)

      st, p = call("GET", "/profiles/" .. id)
      assert.equal(200, st)
      assert.equal("Jane", p.data.name)
      assert.is_nil(p.followers_count)
      st, p = call("GET", "/profiles/" .. id .. "?follow_counts=1")
      assert.equal(200, st)
      assert.equal(0, p.followers_count)
      assert.equal(0, p.following_count)

      local created = p.updated_at
      st, p = call("PUT", "/profiles/" .. id, { name = "Jane D." })
      assert.equal(200, st)
      assert.same({ name = "Jane D." }, p.data)
      assert.are_not.equal(created, p.updated_at)

      st, p = call("GET", "/profiles/" .. id .. "/ref")
      assert.equal(200, st)
      assert.equal("SU:" .. id, p.ref)

      st = call("DELETE", "/profiles/" .. id)
      assert.equal(204, st)
      st, e = call("GET", "/profiles/" .. id)
      assert.equal(404, st)
      assert.equal(16, e.error.code)
      st = call("DELETE", "/profiles/" .. id)
      assert.equal(404, st)
      st = call("PUT", "/profiles/" .. id, { x = 1 })
      assert.equal(404, st)
    end)

    it("adds, reads and deletes profiles in batches", function()
      local a, b = uid("batch-a"), uid("batch-b")
      local status, res = call("POST", "/profiles", {
        profiles = { { id = a, data = { n = 1 } }, { id = b } }, override = false,
      })
      assert.equal(201, status)
      assert.equal(2, #res.profiles)

      status, res = call("GET", "/profiles?ids=" .. a .. "," .. b .. ",never-made")
      assert.equal(200, status)
      assert.equal(2, #res.profiles)
      local seen = {}
      for _, p in ipairs(res.profiles) do seen[p.id] = p.data end
      assert.same({ n = 1 }, seen[a])
      assert.same({}, seen[b])

      status, res = call("DELETE", "/profiles?ids=" .. a .. "," .. b)
      assert.equal(200, status)
      table.sort(res.deleted)
      local expected = { a, b }
      table.sort(expected)
      assert.same(expected, res.deleted)
      status, res = call("GET", "/profiles?ids=" .. a)
      assert.equal(200, status)
      assert.equal(0, #res.profiles)
    end)

    it("fetches many profiles concurrently with client:parallel inside one request", function()
      local ids = {}
      for i = 1, 4 do
        ids[i] = uid("par")
        assert.equal(201, (call("POST", "/profiles/" .. ids[i], { i = i })))
      end
      program({ fault = "delay", ms = 300, count = 5 })
      local t0 = socket.gettime()
      local status, res = call("GET", "/profiles-parallel?ids=" .. table.concat(ids, ",") .. ",par-missing")
      local seconds = socket.gettime() - t0
      assert.equal(200, status)
      assert.equal(4, #res.profiles)
      assert.same({ "par-missing" }, res.missing)
      for i, p in ipairs(res.profiles) do assert.equal(ids[i], p.id) end
      assert.is_true(seconds < 0.6, "5 upstream calls of 300 ms took " .. seconds .. " s")
    end)
  end)

  describe("enriched timeline", function()
    it("shows the posters' current profiles, then a missing reference after a delete", function()
      local stream = require "stream"
      local c = stream.connect(s.api_key, s.api_secret, "1", { base_url = s.base_url })
      local poster, reader = c:user(uid("poster")), c:user(uid("reader"))
      assert(poster:create({ name = "Poster" }))
      assert(reader:create({ name = "Reader" }))
      assert(reader:feed("timeline"):follow(poster:feed("user")))
      for i = 1, 3 do
        assert(poster:feed("user"):add_activity({ actor = poster, verb = "post", object = "post:" .. i }))
      end
      assert(poster:update({ name = "Renamed" }))
      local status, res = call("GET", "/timeline/" .. reader.id .. "?limit=2")
      assert.equal(200, status)
      assert.equal(2, #res.activities)
      assert.is_true(res.more)
      assert.equal("post:3", res.activities[1].object)
      assert.equal("Renamed", res.activities[1].actor.data.name)
      assert.equal(0, res.missing_actors)
      assert(poster:delete())
      status, res = call("GET", "/timeline/" .. reader.id)
      assert.equal(200, status)
      assert.equal(3, #res.activities)
      assert.equal(3, res.missing_actors)
      assert.equal("ReferenceNotFound", res.activities[1].actor.error)
      assert.equal(400, (call("GET", "/timeline/" .. reader.id .. "?limit=0")))
      assert.equal(400, (call("GET", "/timeline/bad%20id")))
      c:close()
    end)
  end)

  describe("errors as HTTP answers", function()
    it("answers 400 for invalid ids and bodies, naming the problem", function()
      local status, e = call("GET", "/profiles/bad%20id")
      assert.equal(400, status)
      assert.equal("invalid", e.error.kind)
      assert.matches("A%-Z a%-z 0%-9", e.error.message)
      assert.is_table(e.error.fields.id)

      status, e = call("POST", "/profiles/" .. uid("x"), "[1,2]")
      assert.equal(400, status)
      assert.matches("object", e.error.message)
      status = call("POST", "/profiles/" .. uid("x"), "{nope")
      assert.equal(400, status)
      status, e = call("POST", "/profiles/" .. uid("x"), { pad = string.rep("x", 11000) })
      assert.equal(400, status)
      assert.equal("invalid", e.error.kind)
      status = call("GET", "/profiles")
      assert.equal(400, status)
      status = call("GET", "/nowhere")
      assert.equal(404, status)
    end)

    it("answers 504 when Stream times out", function()
      program({ fault = "delay", ms = 1500 })
      local status, e = call("GET", "/profiles/" .. uid("slow"))
      assert.equal(504, status)
      assert.equal("timeout", e.error.kind)
    end)

    it("answers 502 when the connection to Stream fails", function()
      program({ fault = "drop" })
      local status, e = call("POST", "/profiles/" .. uid("drop"), { a = 1 })
      assert.equal(502, status)
      assert.equal("transport", e.error.kind)
    end)

    it("answers 502 for Stream's own 5xx answers, and 429 with Retry-After", function()
      program({ fault = "status", status = 503 })
      local status, e = call("GET", "/profiles/" .. uid("busy"))
      assert.equal(502, status)
      assert.equal(503, e.error.upstream_status)

      program({ fault = "status", status = 429, reset_after = 30 })
      local headers
      status, e, headers = call("GET", "/profiles/" .. uid("limited"))
      assert.equal(429, status)
      assert.equal(9, e.error.code)
      local wait = tonumber(headers["retry-after"])
      assert.is_true(wait >= 28 and wait <= 31, tostring(wait))
    end)
  end)

  describe("user tokens", function()
    it("creates, reads, updates and deletes the token's own profile via /me", function()
      local id = uid("me")
      local status, t = call("POST", "/tokens/" .. id)
      assert.equal(201, status)
      assert.equal(id, t.user_id)
      local auth = { Authorization = "Bearer " .. t.token }

      local p
      status, p = call("POST", "/me", { nick = "j" }, auth)
      assert.equal(201, status)
      assert.equal(id, p.id)
      assert.same({ nick = "j" }, p.data)
      -- set_user never overwrites an existing user's data
      status, p = call("POST", "/me", { nick = "other" }, auth)
      assert.equal(201, status)
      assert.same({ nick = "j" }, p.data)

      status, p = call("GET", "/me", nil, auth)
      assert.equal(200, status)
      assert.equal(id, p.id)
      status, p = call("PUT", "/me", { nick = "jj" }, auth)
      assert.equal(200, status)
      assert.same({ nick = "jj" }, p.data)

      -- the server-side profile route sees the same user
      status, p = call("GET", "/profiles/" .. id)
      assert.equal(200, status)
      assert.same({ nick = "jj" }, p.data)

      status = call("DELETE", "/me", nil, auth)
      assert.equal(204, status)
      status = call("GET", "/me", nil, auth)
      assert.equal(404, status)
    end)

    it("answers 401 without a user token and 403 for one Stream refuses", function()
      local status, e, headers = call("GET", "/me")
      assert.equal(401, status)
      assert.equal("Bearer", headers["www-authenticate"])
      assert.matches("Bearer", e.error.message)
      status = call("GET", "/me", nil, { Authorization = "Bearer not-a-token" })
      assert.equal(401, status)

      local forged = http.jwt('{"user_id":"mallory"}', "not-the-secret-0123456789")
      status, e = call("PUT", "/me", { evil = true }, { Authorization = "Bearer " .. forged })
      assert.equal(403, status)
      assert.equal(17, e.error.code)
    end)
  end)

  describe("inside nginx", function()
    it("uses the ngx transport", function()
      assert.equal("ngx", stats().transport)
    end)

    it("does not block the worker: 20 concurrent calls, each 300 ms upstream, finish together", function()
      local id = uid("conc")
      assert.equal(201, (call("POST", "/profiles/" .. id, { a = 1 })))
      program({ fault = "delay", ms = 300, count = 20 })
      local list = {}
      for i = 1, 20 do list[i] = { "GET", ex.url .. "/profiles/" .. id } end
      local results, seconds = S.concurrent(list)
      for i = 1, 20 do
        assert.equal(200, results[i].status, results[i].body)
        assert.equal(id, cjson.decode(results[i].body).id)
      end
      io.stderr:write(string.format("\n  [20 concurrent handler calls, 300 ms upstream each, one worker: %.0f ms]\n",
        seconds * 1000))
      assert.is_true(seconds >= 0.29, tostring(seconds))
      assert.is_true(seconds < 0.6, "20 concurrent calls took " .. seconds .. " s")
    end)

    it("reuses kept-alive upstream connections: 100 sequential calls, a handful of connects", function()
      local id = uid("ka")
      assert.equal(201, (call("POST", "/profiles/" .. id, { a = 1 })))
      local before = stats()
      for _ = 1, 100 do
        assert.equal(200, (S.request("GET", ex.url .. "/profiles/" .. id)))
      end
      local after = stats()
      assert.equal(before.pid, after.pid)
      assert.equal(100, after.requests - before.requests)
      assert.is_true(after.connects - before.connects <= 2,
        (after.connects - before.connects) .. " connections opened for 100 calls")
      assert.is_true(after.connects < 25)
    end)

    it("refuses a call from header_filter with an error naming the phase and ngx.timer.at", function()
      local status, _, headers = S.request("GET", ex.url .. "/demo/header-filter")
      assert.equal(200, status)
      local msg = headers["x-profiles-call-error"]
      assert.matches("header_filter phase", msg, 1, true)
      assert.matches("ngx.timer.at", msg, 1, true)
      assert.matches("[GET user/phase-demo/]", msg, 1, true)
    end)

    -- after the connection counts above: these tasks open up to 32 connections at once
    it("serves 8 requests at once, each running parallel on the worker's one client", function()
      local ids = {}
      for i = 1, 4 do
        ids[i] = uid("spar")
        assert.equal(201, (call("POST", "/profiles/" .. ids[i], { i = i })))
      end
      local pid0 = stats().pid
      program({ fault = "delay", ms = 200, count = 32 })
      local list = {}
      for k = 1, 8 do
        -- each request asks for the profiles in its own order
        local order = {}
        for i = 1, 4 do order[i] = ids[(i + k - 2) % 4 + 1] end
        list[k] = { "GET", ex.url .. "/profiles-parallel?ids=" .. table.concat(order, ","), order = order }
      end
      local answers, seconds = S.concurrent(list, 10)
      for k, a in ipairs(answers) do
        assert.equal(200, a.status, a.body)
        local res = cjson.decode(a.body)
        for i, p in ipairs(res.profiles) do assert.equal(list[k].order[i], p.id) end
        assert.equal(4, #res.profiles)
      end
      -- 32 upstream calls of 200 ms, all at once: well under one after another
      assert.is_true(seconds < 2, "took " .. seconds .. " s")
      assert.equal(pid0, stats().pid)
    end)

    it("leaves no Lua errors in the error log", function()
      local log = S.read_file(ex.prefix .. "/logs/error.log") or ""
      assert.is_nil(log:match("[^\n]*runtime error[^\n]*"))
    end)
  end)
end)

describe("examples/openresty over TLS", function()
  local peer, good, wrong_host, unknown_ca

  setup(function()
    peer = tls.start()
    good = S.example({ base_url = "https://localhost:" .. peer.port .. "/api/", ca_file = peer.ca_file })
    wrong_host = S.example({ base_url = "https://127.0.0.1:" .. peer.port .. "/api/", ca_file = peer.ca_file })
    unknown_ca = S.example({ base_url = "https://localhost:" .. peer.port .. "/api/" })
  end)

  teardown(function()
    if good then good:stop() end
    if wrong_host then wrong_host:stop() end
    if unknown_ca then unknown_ca:stop() end
    if peer then peer.stop() end
  end)

  it("verifies the upstream against lua_ssl_trusted_certificate", function()
    local status, p = S.json_request("GET", good.url .. "/profiles/tls")
    assert.equal(200, status)
    assert.equal("tls", p.id)
  end)

  it("answers 502 for a certificate that does not name the host", function()
    local status, e = S.json_request("GET", wrong_host.url .. "/profiles/tls")
    assert.equal(502, status)
    assert.matches("certificate", e.error.message)
  end)

  it("answers 502 for a certificate from an authority nginx does not trust", function()
    local status, e = S.json_request("GET", unknown_ca.url .. "/profiles/tls")
    assert.equal(502, status)
    assert.matches("TLS handshake", e.error.message)
  end)
end)
