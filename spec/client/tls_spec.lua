-- TLS against a local HTTPS nginx with a certificate made at test time.
local stream = require "stream"
local tls = require "helpers.tls"

describe("TLS", function()
  local peer

  setup(function() peer = tls.start() end)
  teardown(function() if peer then peer.stop() end end)

  local function connect(host, opts)
    opts = opts or {}
    opts.base_url = "https://" .. host .. ":" .. peer.port .. "/api/"
    opts.retries = 0
    return stream.connect("k", "a-secret-for-tls-specs-0123", "1", opts)
  end

  it("refuses an unknown certificate authority by default, clearly", function()
    local c = connect("127.0.0.1")
    local res, err = c:user("tls"):get()
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.matches("certificate", err.detail:lower())
    c:close()
  end)

  it("connects when ca_file names the authority", function()
    local c = connect("localhost", { ca_file = peer.ca_file })
    local res = assert(c:user("tls"):get())
    assert.equal("tls", res.id)
    c:close()
  end)

  it("checks the host name against the certificate", function()
    -- The certificate names "localhost" only; 127.0.0.1 is the same server.
    local c = connect("127.0.0.1", { ca_file = peer.ca_file })
    local res, err = c:user("tls"):get()
    assert.is_nil(res)
    assert.equal("transport", err.kind)
    assert.matches("certificate", err.detail:lower())
    c:close()
  end)

  it("skips verification only when verify = false is given", function()
    local c = connect("127.0.0.1", { verify = false })
    assert(c:user("tls"):get())
    c:close()
    c = connect("localhost", { verify = false })
    assert(c:user("tls"):get())
    c:close()
  end)

  it("raises when verify is not a boolean", function()
    assert.has_error(function() connect("127.0.0.1", { verify = "no" }) end)
  end)
end)

describe("TLS sessions", function()
  local peer

  setup(function() peer = tls.start({ keepalive_requests = 1 }) end)
  teardown(function() if peer then peer.stop() end end)

  it("are resumed by every connection of the client, not only the one that made them", function()
    local c = stream.connect("k", "a-secret-for-tls-specs-0123", "1", {
      base_url = "https://localhost:" .. peer.port .. "/api/", ca_file = peer.ca_file, retries = 0,
    })
    -- one call: one full handshake, and the session it leaves
    assert(c:user("tls"):get())
    -- the server closes every connection after one request, so each of these four
    -- opens a connection of its own, most on transfers that never made a session
    local fns = {}
    for i = 1, 4 do fns[i] = function() return c:user("tls"):get() end end
    for _, r in ipairs(c:parallel(fns)) do assert(r[1], tostring(r[2])) end
    c:close()
    require("socket").sleep(0.2) -- nginx logs a request after its answer went out
    local seen = peer.handshakes()
    assert.equal(5, #seen)
    assert.is_false(seen[1])
    for i = 2, 5 do assert.is_true(seen[i], "connection " .. i .. " made a full handshake") end
  end)
end)
