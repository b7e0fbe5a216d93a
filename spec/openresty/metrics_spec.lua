-- examples/openresty's /metrics: the client's on_response hook counting every
-- call to Stream in an ngx.shared dict, served in Prometheus' text format, with
-- calls made by concurrent requests to nginx.
local cjson = require "cjson.safe"
local S = require "openresty.support"
local server = require "helpers.server"

local uid = require("helpers.client").uid

-- name{labels} value lines -> { [name .. labels] = number }
local function parse(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local key, value = line:match("^(%S+) (%S+)$")
      assert(key, "not a sample line: " .. line)
      out[key] = assert(tonumber(value), line)
    end
  end
  return out
end

describe("examples/openresty /metrics", function()
  local s, ex

  setup(function()
    s = server.start({ faults = true })
    ex = S.example({ base_url = s.url .. "/api/", env = { PROFILES_TIMEOUT = "2", PROFILES_RETRIES = "0" } })
  end)

  teardown(function()
    if ex then ex:stop() end
    if s then s:stop() end
  end)

  local function scrape()
    local status, body, headers = S.request("GET", ex.url .. "/metrics")
    assert.equal(200, status)
    assert.matches("^text/plain", headers["content-type"])
    return parse(body), body
  end

  it("counts concurrent calls by area and status, with latency buckets", function()
    local before = scrape()
    local ids, list = {}, {}
    for i = 1, 6 do
      ids[i] = uid("m" .. i)
      list[#list + 1] = { "POST", ex.url .. "/profiles/" .. ids[i], { body = cjson.encode({ n = i }) } }
    end
    for _, r in ipairs(S.concurrent(list, 10)) do assert.equal(201, r.status) end
    list = {}
    for i = 1, 6 do list[#list + 1] = { "GET", ex.url .. "/profiles/" .. ids[i] } end
    for i = 1, 4 do list[#list + 1] = { "GET", ex.url .. "/profiles/" .. uid("none" .. i) } end
    list[#list + 1] = { "GET", ex.url .. "/timeline/" .. ids[1] }
    local answers = S.concurrent(list, 10)
    for i = 1, 6 do assert.equal(200, answers[i].status) end
    for i = 7, 10 do assert.equal(404, answers[i].status) end
    assert.equal(200, answers[11].status)

    local after, text = scrape()
    local function delta(key) return (after[key] or 0) - (before[key] or 0) end
    assert.equal(6, delta('stream_requests_total{area="users",status="201"}'))
    assert.equal(6, delta('stream_requests_total{area="users",status="200"}'))
    assert.equal(4, delta('stream_requests_total{area="users",status="404"}'))
    assert.equal(1, delta('stream_requests_total{area="feeds",status="200"}'))
    -- a histogram per series: cumulative buckets ending in the count
    local count = after['stream_request_duration_seconds_count{area="users",status="200"}']
    assert.equal(after['stream_requests_total{area="users",status="200"}'], count)
    assert.equal(count, after['stream_request_duration_seconds_bucket{area="users",status="200",le="+Inf"}'])
    local last = 0
    for _, le in ipairs({ "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10" }) do
      local n = after['stream_request_duration_seconds_bucket{area="users",status="200",le="' .. le .. '"}']
      assert.is_true(n >= last and n <= count, le)
      last = n
    end
    assert.is_true(after['stream_request_duration_seconds_sum{area="users",status="200"}'] > 0)
    assert.matches("# TYPE stream_request_duration_seconds histogram", text, 1, true)
    assert.is_nil(text:find("local-api-secret", 1, true))
  end)

  it("counts a call that got no answer by its error kind", function()
    local before = scrape()
    local st = S.request("POST", s.url .. "/_local/faults", { body = cjson.encode({ fault = "delay", ms = 3000 }) })
    assert.equal(201, st)
    local status = S.request("GET", ex.url .. "/profiles/" .. uid("slow"))
    S.request("DELETE", s.url .. "/_local/faults")
    assert.equal(504, status)
    local after = scrape()
    local key = 'stream_requests_total{area="users",status="timeout"}'
    assert.equal(1, (after[key] or 0) - (before[key] or 0))
  end)
end)
