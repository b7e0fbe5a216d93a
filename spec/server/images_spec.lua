-- Images on the local server (stream-feeds-api.md section 13): uploads judged by their
-- bytes and decoded by libvips, and resized variants (clip, scale, fill, crop) whose
-- dimensions are read back from the served bytes (PNG IHDR, JPEG SOF). The test images
-- are made with libvips itself, through LuaJIT's FFI.

local server = require "helpers.server"
local http = require "helpers.http"

local MAKE_IMAGE = [[
local ffi = require "ffi"
ffi.cdef[=[
typedef struct _VipsImage VipsImage;
int vips_init(const char *argv0);
int vips_xyz(VipsImage **out, int width, int height, ...);
int vips_cast(VipsImage *in, VipsImage **out, int format, ...);
int vips_image_write_to_file(VipsImage *image, const char *name, ...);
const char *vips_error_buffer(void);
]=]
local v = ffi.load("libvips.so.42")
assert(v.vips_init("spec") == 0)
local a, b = ffi.new("VipsImage *[1]"), ffi.new("VipsImage *[1]")
assert(v.vips_xyz(a, tonumber(arg[1]), tonumber(arg[2]), nil) == 0, ffi.string(v.vips_error_buffer()))
assert(v.vips_cast(a[0], b, ffi.new("int", 0), nil) == 0, ffi.string(v.vips_error_buffer()))
assert(v.vips_image_write_to_file(b[0], arg[3], nil) == 0, ffi.string(v.vips_error_buffer()))
]]

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- make_image(w, h, suffix) -> the bytes of a w x h image in that format
local function make_image(w, h, suffix)
  local script, out = os.tmpname(), os.tmpname() .. suffix
  local f = assert(io.open(script, "wb"))
  f:write(MAKE_IMAGE)
  f:close()
  local _, code = http.run("luajit " .. script .. " " .. w .. " " .. h .. " " .. http.shell_quote(out) .. " 2>&1")
  os.remove(script)
  assert(code == 0, "luajit + libvips could not make the test image")
  local bytes = read_file(out)
  os.remove(out)
  return bytes
end

local function be16(s, i)
  return s:byte(i) * 256 + s:byte(i + 1)
end

-- dimensions(bytes) -> kind, width, height read from the image's own header
local function dimensions(bytes)
  if bytes:sub(1, 8) == "\137PNG\r\n\26\n" and bytes:sub(13, 16) == "IHDR" then
    return "png", be16(bytes, 17) * 65536 + be16(bytes, 19), be16(bytes, 21) * 65536 + be16(bytes, 23)
  end
  if bytes:sub(1, 2) == "\255\216" then
    local i = 3
    while i < #bytes do
      assert(bytes:byte(i) == 0xFF, "JPEG marker expected")
      local m = bytes:byte(i + 1)
      if m >= 0xC0 and m <= 0xCF and m ~= 0xC4 and m ~= 0xC8 and m ~= 0xCC then
        return "jpeg", be16(bytes, i + 7), be16(bytes, i + 5)
      end
      i = i + 2 + be16(bytes, i + 2)
    end
  end
  return nil
end

local function esc(v)
  return (v:gsub("[^%w._~-]", function(c) return string.format("%%%02X", c:byte()) end))
end

describe("local server images", function()
  local s, api, png, jpeg
  local ALICE = '{"user_id":"i-alice"}'
  local BOB = '{"user_id":"i-bob"}'

  setup(function()
    s = server.start({ workers = 2 })
    api = http.api(s)
    png = make_image(200, 100, ".png")
    jpeg = make_image(300, 150, ".jpg")
  end)

  teardown(function()
    if s then s:stop() end
  end)

  local function upload(bytes, name, opts)
    opts = opts or {}
    local body = "--bNd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" .. name
      .. "\"\r\nContent-Type: " .. (opts.type or "image/png") .. "\r\n\r\n" .. bytes .. "\r\n--bNd--\r\n"
    return api:call("POST", opts.path or "images/", { body = body, token = opts.token,
      headers = { ["Content-Type"] = "multipart/form-data; boundary=bNd" } })
  end

  local function process(url, query, token)
    return api:call("GET", "images/", { query = "url=" .. esc(url) .. (query ~= "" and ("&" .. query) or ""),
      token = token })
  end

  -- variant(url, query) -> kind, width, height of the processed image as served
  local function variant(url, query)
    local st, b, raw = process(url, query)
    assert.are.equal(200, st, raw)
    assert.is_string(b.file)
    assert.is_string(b.duration)
    local gst, bytes = http.request("GET", b.file)
    assert.are.equal(200, gst)
    return dimensions(bytes)
  end

  it("the test images are what they claim", function()
    assert.are.same({ "png", 200, 100 }, { dimensions(png) })
    assert.are.same({ "jpeg", 300, 150 }, { dimensions(jpeg) })
  end)

  it("uploads a PNG and a JPEG: 201, served with the type judged from the bytes", function()
    for _, c in ipairs({ { png, "a.png", "image/png" }, { jpeg, "b.jpg", "image/jpeg" } }) do
      local st, b, raw = upload(c[1], c[2], { type = "application/octet-stream" })
      assert.are.equal(201, st, raw)
      assert.matches("/_files/[%x-]+/" .. c[2]:gsub("%.", "%%.") .. "%?Expires=%d+&Signature=%x+$", b.file)
      local gst, bytes, h = http.request("GET", b.file)
      assert.are.equal(200, gst)
      assert.is_true(bytes == c[1])
      assert.are.equal(c[3], h["content-type"])
    end
  end)

  it("resizes a PNG: clip, scale, fill, crop, one side missing", function()
    local _, b = upload(png, "p.png")
    assert.are.same({ "png", 50, 25 }, { variant(b.file, "w=50") })
    assert.are.same({ "png", 50, 25 }, { variant(b.file, "w=50&h=50&resize=clip") })
    assert.are.same({ "png", 20, 10 }, { variant(b.file, "h=10") })
    assert.are.same({ "png", 40, 40 }, { variant(b.file, "w=40&h=40&resize=scale") })
    assert.are.same({ "png", 60, 60 }, { variant(b.file, "w=60&h=60&resize=fill") })
    assert.are.same({ "png", 50, 50 }, { variant(b.file, "w=50&h=50&resize=crop&crop=top,left") })
    assert.are.same({ "png", 37, 91 }, { variant(b.file, "w=37&h=91&resize=crop&crop=bottom") })
    assert.are.same({ "png", 400, 200 }, { variant(b.file, "w=400&crop=right") })
  end)

  it("resizes a JPEG into a JPEG", function()
    local _, b = upload(jpeg, "j.jpg")
    assert.are.same({ "jpeg", 100, 50 }, { variant(b.file, "w=100") })
    assert.are.same({ "jpeg", 64, 48 }, { variant(b.file, "w=64&h=48&resize=scale") })
    assert.are.same({ "jpeg", 30, 30 }, { variant(b.file, "w=30&h=30&resize=crop&crop=center") })
  end)

  it("refuses what is not an image: 400 File type <type> is not supported", function()
    local random = {}
    for i = 1, 2048 do random[i] = string.char((i * 7919 + 13) % 256) end
    local cases = {
      { table.concat(random), "application/octet-stream" },
      { "just some text\n", "text/plain" },
      { "%PDF-1.4\n...", "application/pdf" },
    }
    for _, c in ipairs(cases) do
      local st, b, raw = upload(c[1], "x.png")
      assert.are.equal(400, st, raw)
      assert.are.equal(4, b.code)
      assert.are.equal("File type " .. c[2] .. " is not supported", b.detail)
    end
  end)

  it("an image that claims PNG but is not is 400, and the server carries on", function()
    local garbage = {}
    for i = 1, 600 do garbage[i] = string.char((i * 31 + 7) % 256) end
    for _, bytes in ipairs({ "\137PNG\r\n\26\n" .. table.concat(garbage), png:sub(1, 60),
        "\255\216\255" .. table.concat(garbage) }) do
      local st, b, raw = upload(bytes, "fake.png")
      assert.are.equal(400, st, raw)
      assert.are.equal(4, b.code)
    end
    assert.are.equal(201, (upload(png, "after.png")))
  end)

  it("bad process values are 400 code 4 naming the field", function()
    local _, b = upload(png, "q.png")
    local cases = {
      { "w=-1", "w" }, { "h=-1&w=3", "h" }, { "w=0", "w" }, { "w=abc", "w" }, { "", "w" },
      { "resize=stretch&w=5", "resize" }, { "crop=middle&w=5", "crop" }, { "crop=top,,x&w=5", "crop" },
      { "w=10001", "w" },
    }
    for _, c in ipairs(cases) do
      local st, e, raw = process(b.file, c[1])
      assert.are.equal(400, st, c[1] .. ": " .. tostring(raw))
      assert.are.equal(4, e.code)
      assert.is_table(e.exception_fields[c[2]], c[1] .. ": " .. raw)
    end
    assert.are.equal(200, (process(b.file, "crop=top&w=5")), "crop without resize")
    local st, e = api:call("GET", "images/", { query = "w=5" })
    assert.are.equal(400, st)
    assert.is_table(e.exception_fields.url)
  end)

  it("processing a file that is not an image, or is gone, is 400 / 404", function()
    local _, b = upload("plain text", "t.txt", { path = "files/", type = "text/plain" })
    local st, e = process(b.file, "w=5")
    assert.are.equal(400, st)
    assert.are.equal("File type text/plain is not supported", e.detail)
    local _, b2 = upload(png, "gone.png")
    assert.are.equal(200, (api:call("DELETE", "images/", { query = "url=" .. esc(b2.file) })))
    assert.are.equal(404, (process(b2.file, "w=5")))
  end)

  it("the variant belongs to the source's owner; another user may not process it", function()
    local _, b = upload(png, "own.png", { token = api:token(ALICE) })
    assert.are.equal(403, (process(b.file, "w=10", api:token(BOB))))
    local st, v = process(b.file, "w=10")
    assert.are.equal(200, st)
    assert.are.equal(403, (api:call("DELETE", "images/", { query = "url=" .. esc(v.file), token = api:token(BOB) })))
    assert.are.equal(200, (api:call("DELETE", "images/", { query = "url=" .. esc(v.file), token = api:token(ALICE) })))
    st = process(b.file, "w=10", api:token(ALICE))
    assert.are.equal(200, st)
  end)

  it("leaves no Lua error in the log", function()
    assert.is_nil(s:error_log():find("unexpected error", 1, true))
  end)
end)


