-- The ngx transport (lua/stream/transport/ngx.lua) inside a real nginx with one
-- worker: HTTP/1.1 framing, limits, timeouts, keep-alive, light threads, phases,
-- TLS and proxies. The cases run in nginx (openresty/ngx_cases.lua); this file
-- starts that nginx, asks for each case and checks the JSON summary it answers.
local socket = require "socket"
local S = require "openresty.support"
local tls = require "helpers.tls"

local HTTP = [[
  lua_ssl_trusted_certificate @CA@;
  lua_ssl_verify_depth 3;
  lua_shared_dict cases 1m;
  init_worker_by_lua_block { require("openresty.ngx_cases").init_worker() }
  server {
    listen 127.0.0.1:@PORT@;
    location /up/ { content_by_lua_block { require("openresty.ngx_cases").upstream() } }
    location /up/close-delimited {
      chunked_transfer_encoding off;
      content_by_lua_block { require("openresty.ngx_cases").upstream() }
    }
    location /up/no-keepalive {
      keepalive_timeout 0;
      content_by_lua_block { require("openresty.ngx_cases").upstream() }
    }
    location = /t { content_by_lua_block { require("openresty.ngx_cases").run() } }
    location = /t/header_filter {
      content_by_lua_block { ngx.say("ok") }
      header_filter_by_lua_block { require("openresty.ngx_cases").header_filter() }
    }
    location = /t/log {
      content_by_lua_block { ngx.say("ok") }
      log_by_lua_block { require("openresty.ngx_cases").log() }
    }
  }
]]

describe("ngx transport", function()
  local ng, peer, proxy_pid, proxy_port, proxy_log

  setup(function()
    peer = tls.start()
    ng = S.nginx((HTTP:gsub("@CA@", peer.ca_file)))
    proxy_port = S.free_port()
    proxy_log = os.tmpname()
    local p = assert(io.popen("lua5.4 " .. S.root .. "/spec/openresty/connect_proxy.lua " .. proxy_port .. " "
      .. proxy_log .. " >/dev/null 2>&1 & echo $!"))
    proxy_pid = p:read("*l")
    p:close()
    for _ = 1, 200 do
      local c = socket.connect("127.0.0.1", proxy_port)
      if c then c:close() break end
      socket.sleep(0.01)
    end
  end)

  teardown(function()
    if proxy_pid and proxy_pid:match("^%d+$") then os.execute("kill " .. proxy_pid .. " 2>/dev/null") end
    if proxy_log then os.remove(proxy_log) end
    if ng then ng:stop() end
    if peer then peer.stop() end
  end)

  local function case(name, query)
    local status, res, _, raw = S.json_request("GET", ng.url .. "/t?case=" .. name .. (query or ""))
    assert.equal(200, status, raw)
    assert.is_nil(res.raised, res.raised)
    return res
  end

  it("reads chunked answers", function()
    local r = case("chunked")
    assert.equal(200, r.status)
    assert.equal("chunk1;chunk2;chunk3;chunk4;chunk5;", r.body)
    assert.equal("chunked", r.headers["transfer-encoding"])
  end)

  it("reads answers that end when the server closes, and does not pool that connection", function()
    local r = case("close_delimited")
    assert.equal(200, r.first.status)
    assert.equal(20003, r.first.size)
    assert.equal("end", r.first.tail)
    assert.equal("close", r.first.headers.connection)
    -- that connection was closed, not pooled: the next request goes elsewhere
    assert.are_not.equal(tonumber(r.first.headers["x-connection"]), r.next_connection)
    assert.equal(2, r.stats.requests)
  end)

  it("caps answers at max_response_bytes (Content-Length and chunked) with reason 'limit'", function()
    local r = case("limits")
    assert.equal(200, r.fits.status)
    assert.equal(100000, r.fits.size)
    assert.equal(99999, r.fits_chunked.size)
    for _, k in ipairs({ "over", "over_chunked" }) do
      assert.equal("transport", r[k].kind, k)
      assert.equal("limit", r[k].reason, k)
      assert.is_true(r[k].sent, k)
      assert.equal("response larger than max_response_bytes (100000)", r[k].message)
    end
    assert.equal(200, r.after.status)
  end)

  it("times out with kind 'timeout' (the option, or the per-call argument)", function()
    local r = case("timeout")
    assert.equal("timeout", r.option.kind)
    assert.equal("transfer", r.option.reason)
    assert.is_true(r.option.sent) -- the request was written: it may have arrived
    assert.is_true(r.option.seconds >= 0.29 and r.option.seconds < 1, tostring(r.option.seconds))
    assert.equal("timeout", r.argument.kind)
    assert.is_true(r.argument.seconds >= 0.09 and r.argument.seconds < 0.5, tostring(r.argument.seconds))
  end)

  it("reports a refused connection with reason 'connect' and sent == false", function()
    local r = case("refused", "&port=" .. S.free_port())
    assert.equal("transport", r.kind)
    assert.equal("connect", r.reason)
    assert.is_false(r.sent)
    assert.matches("could not connect to 127%.0%.0%.1:%d+: connection refused", r.message)
  end)

  it("says how to fix a host name nginx cannot resolve", function()
    local r = case("no_resolver")
    assert.equal("transport", r.kind)
    assert.equal("connect", r.reason)
    assert.is_false(r.sent)
    assert.matches("resolver", r.message)
  end)

  it("returns a redirect as it is, without following it", function()
    local r = case("redirect")
    assert.equal(302, r.status)
    assert.equal("http://example.invalid/elsewhere", r.headers.location)
  end)

  it("sends HTTP/1.1 with the client's headers, lower-cases answer headers, last one wins", function()
    local r = case("headers")
    local get = r.get.echo
    assert.equal("GET /up/echo?a=1&b=2 HTTP/1.1", get.request_line)
    assert.matches("^127%.0%.0%.1:%d+$", get.headers.Host)
    assert.equal("a.b.c", get.headers.Authorization)
    assert.equal("jwt", get.headers["stream-auth-type"])
    assert.equal("cases/1", get.headers["User-Agent"])
    assert.is_nil(get.headers.Expect)
    assert.is_nil(get.headers["Accept-Encoding"])
    assert.is_nil(get.headers["Content-Type"])
    assert.is_nil(get.headers["Content-Length"])
    assert.equal("last", r.get.headers["x-dup"])
    assert.equal("Value", r.get.headers["x-mixed-case"])
    assert.is_nil(r.get.headers["X-Mixed-Case"])

    local post = r.post.echo
    assert.equal("POST /up/echo HTTP/1.1", post.request_line)
    assert.equal('{"x":1}', post.body)
    assert.equal("application/json", post.headers["Content-Type"])
    assert.equal("7", post.headers["Content-Length"])
    assert.equal("0", r.empty_post.echo.headers["Content-Length"])
    assert.equal("[]", r.put.echo.body)
    assert.equal("DELETE /up/echo HTTP/1.1", r.delete.echo.request_line)
  end)

  it("keeps connections alive: 20 sequential requests, one connection", function()
    local r = case("keepalive")
    for i = 2, 20 do assert.equal(r.connections[1], r.connections[i]) end
    -- the worker's pool may already hold one from an earlier case: then nothing is opened
    assert.is_true(r.stats.connects <= 1)
    assert.equal(20, r.stats.requests)
    -- an answer with "Connection: close" is not pooled
    assert.are_not.equal(r.after_close[1], r.after_close[2])
    assert.is_true(r.final.connects >= r.stats.connects + 1)
  end)

  it("sends again on a new connection when a pooled one closes before answering, except a POST", function()
    local r = case("stale")
    assert.equal(200, r.status, r.message)
    assert.are_not.equal(r.first, r.second)
    assert.equal(2, r.stats.connects)
    assert.equal("transport", r.post.kind)
    assert.equal("transfer", r.post.reason)
    assert.is_true(r.post.sent)
    assert.matches("closed", r.post.message)
  end)

  it("runs submitted requests in light threads; perform waits without blocking", function()
    local r = case("submit")
    assert.equal(8, r.during)
    assert.is_true(r.seconds < 0.6, "8 requests of 300 ms took " .. r.seconds .. " s")
    for i = 1, 8 do
      assert.equal(200, r.results[i].status)
      assert.equal("slow", r.results[i].body)
      assert.is_true(r.results[i].done)
    end
    assert.equal(0, r.stats.in_flight)
    assert.equal(8, r.stats.requests)
    assert.equal(0, r.idle_perform)
    assert.equal("none", r.idle_timeout)
  end)

  it("holds at most max_connections connections at once", function()
    local r = case("max_connections")
    for i = 1, 6 do assert.equal(200, r.statuses[i]) end
    assert.is_true(r.seconds >= 0.55, "6 requests of 200 ms over 2 connections took " .. r.seconds .. " s")
    assert.is_true(r.stats.connects <= 2)
  end)

  it("works in timers (ngx.timer.at)", function()
    local r = case("timer")
    assert.equal("timer", r.phase)
    assert.equal(200, r.status)
  end)

  it("sleeps with ngx.sleep", function()
    local r = case("sleep")
    assert.is_true(r.seconds >= 0.19 and r.seconds < 0.5)
  end)

  it("fails at once, naming the phase and ngx.timer.at, where cosockets are disabled", function()
    local status, _, headers = S.request("GET", ng.url .. "/t/header_filter")
    assert.equal(200, status)
    -- request: nil "invalid" "connect"; submit: a finished handle with the same error; nothing sent
    assert.equal("nil invalid phase false true invalid 0", headers["x-result"])
    assert.matches("header_filter phase", headers["x-message"])
    assert.matches("ngx.timer.at", headers["x-message"], 1, true)
  end)

  it("gives a client call from init_worker_by_lua or log_by_lua the same clear error", function()
    assert.equal(200, (S.request("GET", ng.url .. "/t/log")))
    local r
    for _ = 1, 50 do -- the log phase runs after the answer was sent
      r = case("phases")
      if r.log then break end
      socket.sleep(0.02)
    end
    for _, phase in ipairs({ "init_worker", "log" }) do
      local kind, text = r[phase]:match("^(%w+)|(.*)$")
      -- the client reports what the transport says; it sent nothing
      assert.is_truthy(kind == "transport" or kind == "invalid", r[phase])
      assert.matches("cannot send a request from nginx's " .. phase .. " phase", text, 1, true)
      assert.matches("ngx.timer.at", text, 1, true)
    end
  end)

  it("sends absolute-form requests through an http:// proxy, with its credentials", function()
    local r = case("proxy")
    assert.equal(200, r.status)
    assert.matches("^GET http://127%.0%.0%.1:%d+/up/echo HTTP/1%.1$", r.echo.request_line)
    -- user%40x:secret, percent-decoded then base64
    assert.equal("Basic dXNlckB4OnNlY3JldA==", r.echo.headers["Proxy-Authorization"])
  end)

  it("refuses malformed and non-http URLs without sending", function()
    local r = case("bad_url")
    assert.equal("transport", r.scheme.kind)
    assert.equal("connect", r.scheme.reason)
    assert.is_false(r.scheme.sent)
    assert.matches("scheme", r.scheme.message)
    assert.equal("transport", r.host.kind)
  end)

  it("raises on a closed transport", function()
    local r = case("closed")
    assert.is_false(r.ok)
    assert.matches("closed", r.error)
    assert.is_true(r.stats.closed)
  end)

  describe("TLS", function()
    it("verifies against lua_ssl_trusted_certificate and the host name; pools per verify setting", function()
      local r = case("tls", "&port=" .. peer.port)
      assert.equal(200, r.good.status)
      assert.equal("tls", S.read_json(r.good.body).id)
      assert.equal(200, r.again.status)
      assert.equal("transport", r.mismatch.kind)
      assert.matches("TLS handshake", r.mismatch.message)
      assert.matches("certificate", r.mismatch.message)
      -- good + again share one connection; the mismatch opened a second one
      assert.equal(2, r.stats.connects)
      assert.equal(200, r.unverified.status)
      assert.equal(1, r.unverified_stats.connects)
    end)

    it("resumes the origin's TLS session on a new connection", function()
      local closing = tls.start({ keepalive_requests = 1, ca = peer })
      local ok, r = pcall(case, "tls_resume", "&port=" .. closing.port)
      socket.sleep(0.2) -- nginx logs a request after its answer went out
      local seen = closing.handshakes()
      closing.stop()
      assert(ok, r)
      for i = 1, 3 do assert.equal(200, r.calls[i].status, r.calls[i].message) end
      assert.equal(3, r.stats.connects)
      assert.same({ false, true, true }, seen)
    end)

    it("tunnels through an http:// proxy with CONNECT", function()
      local r = case("tls_proxy", "&port=" .. peer.port .. "&proxy=" .. proxy_port)
      assert.equal(200, r.first.status, r.first.message)
      assert.equal(200, r.second.status)
      assert.equal(1, r.stats.connects)
      local log = S.read_file(proxy_log)
      assert.matches("CONNECT localhost:" .. peer.port .. " HTTP/1.1", log, 1, true)
      assert.matches("Proxy-Authorization: Basic dTpw", log, 1, true)
    end)

    it("ignores a ca_file option with one warning in the error log", function()
      case("ca_file")
      local log = ng:error_log()
      local _, n = log:gsub("option ca_file %(/nonexistent/ca%.pem%) is ignored under nginx", "")
      assert.equal(1, n)
    end)
  end)

  it("is what connect picks inside nginx, unless transport = 'curl' is given", function()
    local r = case("choice")
    assert.same({ default = "ngx", ngx = "ngx", curl = "curl" }, r)
  end)

  it("leaves no Lua errors in nginx's error log", function()
    local log = ng:error_log()
    assert.is_nil(log:match("[^\n]*runtime error[^\n]*"))
    assert.is_nil(log:match("[^\n]*thread aborted[^\n]*"))
  end)
end)

describe("transport choice outside nginx", function()
  local stream = require "stream"

  local function connect(opts)
    return stream.connect("key", "a-secret-for-choice-specs-0123", "1", opts)
  end

  it("is curl by default and when asked for", function()
    assert.equal("curl", connect()._transport.name)
    assert.equal("curl", connect({ transport = "curl" })._transport.name)
  end)

  it("raises, naming the remedy, when 'ngx' is asked for", function()
    assert.has_error(function() connect({ transport = "ngx" }) end,
      "stream.connect: transport 'ngx' needs nginx's Lua module (OpenResty); use 'curl' outside nginx")
  end)

  it("raises for an unknown transport name", function()
    assert.has_error(function() connect({ transport = "carrier-pigeon" }) end,
      "stream.connect: unknown transport 'carrier-pigeon'")
  end)
end)
