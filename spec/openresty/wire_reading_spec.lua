-- The ngx transport's wire reading (transport/http1.lua) without nginx: a
-- socket double hands an answer over in one piece, where the header block
-- is read in one pass over the buffer, and one byte at a time, where it is
-- read line by line; both readings must agree on every answer (status,
-- headers, body, keep-alive, failure and its reason), and on what is left
-- of the header budget. The double's clock and timeouts check the
-- deadline rules: one timeout per attempt, lowered only when less is left.
local http1 = require "stream.transport.http1"

-- A socket whose receiveany hands out `answer` in pieces of `step` bytes
-- (all of it at once when step is nil), then "closed".
local function socket(answer, step)
  local s = { pos = 1, sent = {}, timeouts = {} }
  function s.send(_, data)
    s.sent[#s.sent + 1] = data
    return #data
  end
  function s.receiveany(_, max)
    if s.pos > #answer then return nil, "closed" end
    local n = math.min(max, step or #answer)
    local piece = answer:sub(s.pos, s.pos + n - 1)
    s.pos = s.pos + n
    return piece
  end
  function s.settimeout(_, ms)
    s.timeouts[#s.timeouts + 1] = ms
  end
  return s
end

local function limits(max_head, clock)
  return { now = clock or function() return 0 end, max = 1e6, max_head = max_head or 65536 }
end

-- What one exchange gave, as a comparable table.
local function run(answer, step, max_head, method)
  local sock = socket(answer, step)
  local res, extra, how = http1.exchange(sock, method or "GET", "GET / HTTP/1.1\r\n\r\n",
    limits(max_head), 10, 10000)
  if res then
    return { status = res.status, body = res.body, headers = res.headers, keepalive = extra }
  end
  return { kind = extra.kind, reason = extra.reason, message = extra.message, how = how }
end

local function both(answer, max_head, method)
  local whole = run(answer, nil, max_head, method)
  local bytes = run(answer, 1, max_head, method)
  assert.same(bytes, whole)
  return whole
end

-- Answers of every shape the line reader knows.
local body = '{"id":"x"}'
local answers = {
  plain = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: "
    .. #body .. "\r\nConnection: keep-alive\r\n\r\n" .. body,
  no_fields = "HTTP/1.1 200 OK\r\n\r\n" .. body,
  spaces = "HTTP/1.1 200 OK\r\nX-A:   spaced value \t \r\nX-B:\r\nX-C :v\r\nX-D:\t\r\n"
    .. "Content-Length: " .. #body .. "\r\n\r\n" .. body,
  odd_lines = "HTTP/1.1 200 OK\r\nno colon here\r\nBad Name: x\r\n: empty name\r\nX-Cr: a\rb\r\n"
    .. "X-Two-Cr: v\r\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body,
  bare_lf_inside = "HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: " .. #body
    .. "\r\n\r\n" .. body,
  early_end = "HTTP/1.1 200 OK\r\nContent-Length: 3\n\nabc\r\n\r\n",
  lf_only = "HTTP/1.1 200 OK\nContent-Length: " .. #body .. "\nX-Last: v\n\n" .. body,
  last_wins = "HTTP/1.1 200 OK\r\nX-Dup: 1\r\nx-dup: 2\r\nX-DUP: 3\r\nContent-Length: 0\r\n\r\n",
  continue = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-P: 1\r\n\r\n"
    .. "HTTP/1.1 201 Created\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body,
  chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"id\r\n6\r\n\":\"x\"}\r\n"
    .. "0\r\nX-Trailer: t\r\n\r\n",
  close = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" .. body,
  http10 = "HTTP/1.0 200 OK\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body,
  bad_status = "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
  bad_length = "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
  short_body = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" .. body,
  head_cut = "HTTP/1.1 200 OK\r\nX-A: 1\r\n",
  nothing = "",
}
describe("http1 wire reading: a header block read whole and line by line agree", function()
  for name, answer in pairs(answers) do
    it(name, function() both(answer) end)
  end

  it("reads the fields as the line reader does", function()
    local r = both(answers.spaces)
    assert.same({ ["x-a"] = "spaced value", ["x-b"] = "", ["x-c"] = "v", ["x-d"] = "",
      ["content-length"] = tostring(#body) }, r.headers)
    r = both(answers.odd_lines)
    assert.equal("a\rb", r.headers["x-cr"])
    assert.equal("v", r.headers["x-two-cr"])
    assert.is_nil(r.headers["bad name"])
    assert.equal("3", both(answers.last_wins).headers["x-dup"])
    assert.equal(201, both(answers.continue).status)
    assert.equal("abc", both(answers.early_end).body)
  end)

  it("caps the header block at max_header_bytes at the same byte, with bare LFs counted as two", function()
    for _, answer in ipairs({ answers.plain, answers.spaces, answers.bare_lf_inside, answers.continue,
      answers.lf_only }) do
      local last_ok
      for cap = #answer + 8, 1, -1 do -- (+ 8: room for bare LFs counted as two)
        local r = both(answer, cap)
        if r.status then
          last_ok = cap
        else
          assert.equal("limit", r.reason)
          assert.matches("max_header_bytes", r.message, 1, true)
        end
      end
      assert.is_truthy(last_ok)
    end
  end)

  it("caps the number of header lines", function()
    local t = { "HTTP/1.1 200 OK\r\n" }
    for i = 1, 201 do t[#t + 1] = "X-" .. i .. ": v\r\n" end
    t[#t + 1] = "Content-Length: 0\r\n\r\n"
    local r = both(table.concat(t))
    assert.equal("limit", r.reason)
    assert.matches("header lines", r.message)
  end)
end)

describe("http1 wire reading: the deadline", function()
  it("sets no timeout while what is left rounds to the one set for the attempt", function()
    local sock = socket("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 3)
    local res = http1.exchange(sock, "GET", "GET / HTTP/1.1\r\n\r\n", limits(), 10, 10000)
    assert.equal("{}", res.body)
    assert.same({}, sock.timeouts)
  end)

  it("lowers the socket's timeout to what is left before a read, and fails once it has passed", function()
    local t = 0
    local clock = function() t = t + 0.25; return t end -- every look at the clock: 250 ms later
    local sock = socket("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" .. ("x"):rep(100), 5)
    local res, f = http1.exchange(sock, "GET", "GET / HTTP/1.1\r\n\r\n", limits(nil, clock), 2, 2000)
    assert.is_nil(res)
    assert.equal("timeout", f.kind)
    assert.same({ 1750, 1500, 1250, 1000, 750, 500, 250 }, sock.timeouts)
  end)

  it("times out before sending when the deadline has passed", function()
    local sock = socket("HTTP/1.1 200 OK\r\n\r\n")
    local res, f = http1.exchange(sock, "GET", "GET / HTTP/1.1\r\n\r\n", limits(nil, function() return 5 end), 1, 1000)
    assert.is_nil(res)
    assert.equal("timeout", f.kind)
    assert.is_false(f.sent)
    assert.same({}, sock.sent)
  end)
end)
