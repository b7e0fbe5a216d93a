-- The curl transport and the pipeline against a hostile or broken server
-- (a lua-socket peer in a child process, helpers/hostile.lua): deadlines
-- against dripping bytes, the header cap, malformed answers, secrets echoed
-- back, errors that behave like strings, what `retryable` promises, and
-- Ctrl-C during a blocking call.
local stream = require "stream"
local socket = require "socket"
local hostile = require "helpers.hostile"
local capture = require "helpers.capture"

local SECRET = "hostile-spec-secret-0123456789abcdef"

local function connect(peer, opts)
  opts = opts or {}
  opts.base_url = peer.url
  return stream.connect("key", SECRET, "1", opts)
end

local function timed(f)
  local t0 = socket.gettime()
  local a, b = f()
  return a, b, socket.gettime() - t0
end

describe("timeout and total_timeout against a server that drips bytes", function()
  it("timeout bounds one attempt from its start to the answer's last byte", function()
    for _, mode in ipairs({ "drip", "drip_head" }) do
      local peer = hostile.start(mode)
      local c = connect(peer, { timeout = 1, retries = 0 })
      local res, err, took = timed(function() return c:user("x"):get() end)
      c:close(); peer.stop()
      assert.is_nil(res, mode)
      assert.equal("timeout", err.kind, mode)
      assert.is_true(took < 2.5, mode .. " took " .. took .. " s with timeout = 1")
    end
  end)

  it("total_timeout bounds the whole call, retries included", function()
    local peer = hostile.start("drip")
    local c = connect(peer, { timeout = 1, total_timeout = 2.5, retries = 10 })
    local res, err, took = timed(function() return c:user("x"):get() end)
    c:close(); peer.stop()
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_true(err.attempts >= 2, "attempts: " .. err.attempts)
    assert.is_true(took < 4, "took " .. took .. " s with total_timeout = 2.5")
  end)
end)

describe("the answer's header section", function()
  it("is capped at max_header_bytes (64 KiB by default): a 'limit' error, not retried", function()
    for _, mode in ipairs({ "big_line", "many_lines" }) do
      local peer = hostile.start(mode)
      local c = connect(peer, { retries = 3 })
      local res, err = c:user("x"):get()
      c:close()
      assert.is_nil(res, mode)
      assert.equal("transport", err.kind, mode)
      assert.equal("limit", err.reason, mode)
      assert.matches("max_header_bytes", err.detail, 1, true)
      assert.is_false(err.retryable, mode)
      assert.equal(1, err.attempts, mode)
      assert.equal(1, #peer.requests(), mode)
      peer.stop()
    end
  end)

  it("takes a larger max_header_bytes from connect's options", function()
    local peer = hostile.start("many_lines")
    local c = connect(peer, { max_header_bytes = 128 * 1024 })
    local res, err = c:user("x"):get()
    c:close(); peer.stop()
    assert.same({}, res, err and tostring(err))
  end)

  it("refuses a max_header_bytes that is not a positive integer", function()
    for _, bad in ipairs({ 0, -1, 1.5, "64k", 2 ^ 31 }) do
      assert.has_error(function()
        stream.connect("key", SECRET, "1", { base_url = "http://127.0.0.1:1/", max_header_bytes = bad })
      end, "stream.connect: option 'max_header_bytes' must be an integer number of bytes below 2^31")
    end
  end)
end)

describe("a malformed answer", function()
  local cases = {
    status20 = { "malformed", "malformed" },
    bad_length = { "malformed", "Content%-Length" },
    huge_length = { "limit", "max_response_bytes" },
  }
  for mode, want in pairs(cases) do
    it("(" .. mode .. ") is a transport error with reason '" .. want[1] .. "', never retried", function()
      local peer = hostile.start(mode)
      local c = connect(peer, { retries = 3 })
      local res, err = c:user("x"):get()
      c:close()
      assert.is_nil(res)
      assert.equal("transport", err.kind)
      assert.equal(want[1], err.reason)
      assert.matches(want[2], err.detail)
      assert.is_false(err.retryable)
      assert.equal(1, err.attempts)
      assert.equal(1, #peer.requests())
      peer.stop()
    end)
  end
end)

describe("text from a server that echoes the credentials", function()
  local function no_secret(err, token)
    local seen = {}
    local function walk(v, depth)
      if depth > 4 then return end
      if type(v) == "string" then seen[#seen + 1] = v end
      if type(v) == "table" then
        for k, x in pairs(v) do walk(k, depth + 1); walk(x, depth + 1) end
      end
    end
    walk(err, 0)
    seen[#seen + 1] = tostring(err)
    seen[#seen + 1] = "x" .. err
    local signature = token:match("([^.]+)$")
    for _, text in ipairs(seen) do
      assert.is_nil(text:find(SECRET, 1, true), text)
      assert.is_nil(text:find(SECRET:sub(1, 12), 1, true), text)
      assert.is_nil(text:find(signature:sub(1, 12), 1, true), text)
      assert.is_nil(text:find(signature:sub(-12), 1, true), text)
    end
  end

  it("is scrubbed everywhere in the error: exception, detail, fields, more_info", function()
    local peer = hostile.start("echo_auth", SECRET)
    local c = connect(peer, { retries = 0 })
    local token = stream.core.hs256(SECRET, '{"resource":"*","action":"*","feed_id":"*"}')
    local _, err = c:user("x"):get()
    c:close(); peer.stop()
    assert.equal(401, err.status)
    assert.equal(17, err.code)
    assert.matches("[redacted]", err.exception, 1, true)
    assert.matches("[redacted]", err.more_info, 1, true)
    assert.is_not_nil(err.fields["[redacted]"])
    no_secret(err, token)
  end)

  it("is scrubbed before a non-JSON body is cut, so no part of a token shows", function()
    local peer = hostile.start("echo_text", SECRET)
    local c = connect(peer, { retries = 0 })
    local token = stream.core.hs256(SECRET, '{"resource":"*","action":"*","feed_id":"*"}')
    local _, err = c:user("x"):get()
    c:close(); peer.stop()
    assert.equal(500, err.status)
    assert.matches("unexpected answer: xxxx", err.detail, 1, true)
    assert.matches("[redacted]", err.detail, 1, true)
    no_secret(err, token)
  end)
end)

describe("an error used as a string", function()
  local err

  setup(function()
    local port = capture.free_port()
    local c = stream.connect("k", SECRET, "1", { base_url = "http://127.0.0.1:" .. port .. "/", retries = 0 })
    err = select(2, c:user("x"):get())
    c:close()
  end)

  it("concatenates in both orders, with strings and numbers", function()
    assert.equal("failed: " .. tostring(err), "failed: " .. err)
    assert.equal(tostring(err) .. "!", err .. "!")
    assert.equal("1" .. tostring(err), 1 .. err)
    assert.equal(tostring(err) .. tostring(err), err .. err)
  end)

  it("still raises, as Lua does, with a value that is no text", function()
    assert.has_error(function() return {} .. err end)
    assert.has_error(function() return err .. true end)
  end)
end)

describe("err.retryable", function()
  it("is false for a timed-out create whose body was sent (sending it again could duplicate it)", function()
    local peer = hostile.start("silent")
    local c = connect(peer, { timeout = 0.3, retries = 0 })
    local _, err = c:user("x"):create({})
    assert.equal("timeout", err.kind)
    assert.is_true(err.sent)
    assert.is_false(err.retryable)
    -- a read is safe to send again
    _, err = c:user("x"):get()
    assert.equal("timeout", err.kind)
    assert.is_true(err.retryable)
    -- a write that carries its own idempotency key (a reaction with an id) is too
    _, err = c.reactions:add("like", "act-1", nil, { id = "r-1", user_id = "u" })
    assert.equal("timeout", err.kind)
    assert.is_true(err.retryable)
    c:close(); peer.stop()
  end)

  it("is true for a create that never left (nothing listens)", function()
    local port = capture.free_port()
    local c = stream.connect("k", SECRET, "1", { base_url = "http://127.0.0.1:" .. port .. "/", retries = 0 })
    local _, err = c:user("x"):create({})
    c:close()
    assert.equal("transport", err.kind)
    assert.is_false(err.sent)
    assert.is_true(err.retryable)
  end)
end)

describe("a PUT or POST without a body", function()
  it("carries Content-Length: 0 (reactions:restore)", function()
    local peer = capture.start({ body = "{}", count = 2 })
    local c = stream.connect("key", SECRET, "1", { base_url = peer.url })
    assert(c.reactions:restore("r-1"))
    assert(c:_request({ method = "POST", path = "x/", idempotent = true }))
    c:close()
    local seen = peer.requests()
    peer.stop()
    assert.matches("^PUT /api/v1.0/reaction/r%-1/restore/%?", seen[1])
    assert.equal("0", capture.header(seen[1], "Content%-Length"))
    assert.matches("^POST /api/v1.0/x/%?", seen[2])
    assert.equal("0", capture.header(seen[2], "Content%-Length"))
  end)
end)

describe("Ctrl-C during a blocking call", function()
  it("interrupts the call at once instead of when the attempt times out", function()
    local peer = hostile.start("silent")
    local script, out = os.tmpname(), os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write('package.path = "lua/?.lua;lua/?/init.lua;" .. package.path\n',
      'package.cpath = "build/5.4/?.so;" .. package.cpath\n',
      'local c = require("stream").connect("k", "a-secret-for-the-sigint-spec", "1", ',
      '{ base_url = "', peer.url, '", timeout = 20, retries = 0 })\n',
      'io.stderr:write("calling\\n")\n',
      'print(c:user("x"):get())\n')
    f:close()
    local p = assert(io.popen("lua5.4 " .. script .. " >" .. out .. " 2>&1 & echo $!"))
    local pid = p:read("*l")
    p:close()
    -- running, and not a zombie (the child is not ours to reap: its shell has gone)
    local function alive()
      local st = io.open("/proc/" .. pid .. "/stat")
      if not st then return false end
      local state = st:read("*a"):match("^%d+ %b() (%a)")
      st:close()
      return state ~= nil and state ~= "Z"
    end
    socket.sleep(0.3)
    assert.is_true(alive())
    local t0 = socket.gettime()
    os.execute("kill -INT " .. pid)
    while alive() and socket.gettime() - t0 < 5 do socket.sleep(0.02) end
    local took = socket.gettime() - t0
    if alive() then os.execute("kill -9 " .. pid) end
    local text = io.open(out):read("*a")
    os.remove(script); os.remove(out); peer.stop()
    assert.is_true(took < 1, "exited " .. took .. " s after SIGINT")
    assert.matches("calling", text, 1, true)
    assert.matches("interrupted", text, 1, true)
  end)
end)
