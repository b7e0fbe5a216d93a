-- stream_local.images: what an uploaded image is, and its resized variants, with libvips
-- through the LuaJIT FFI (stream-feeds-api.md section 13).
--
-- What it does:
--   * init_worker(): loads libvips.so.42 and runs vips_init once per worker, with its
--     operation cache off and one thread per pipeline, so workers stay lean. Without
--     libvips the server still runs; image checks and processing answer 400.
--   * sniff(head) -> the content type judged by the first bytes: image/jpeg, image/png,
--     image/gif, image/bmp, image/webp, or (not images) application/pdf,
--     application/zip, application/gzip, text/plain, application/octet-stream.
--     IMAGE_TYPES lists the ones accepted as images.
--   * decodes(path) -> true | nil, why: libvips decodes the whole image (a PNG signature
--     followed by garbage fails here, not later); more than MAX_PIXELS (100 million)
--     pixels is refused before decoding.
--   * process(ctx): GET images/?url=&resize=&crop=&w=&h= -> 200 {"file": url of a new
--     stored image owned by the source's owner}. resize clip (default: fit inside w x h
--     keeping the aspect ratio), scale (stretch to w x h), fill (fit inside, then pad to
--     w x h, centred), crop (cover w x h, then cut at the `crop` sides: top, bottom,
--     left, right, center (default), or a comma list of them); one of w/h missing keeps
--     the aspect ratio, neither is 400. Bad values are 400 code 4 naming the field.
--     The variant is written in the source's format (PNG where libvips has no saver for
--     it, e.g. BMP).
--
-- What it deliberately does not do: no other operations (rotate, format conversion on
-- request), no EXIF orientation, no animation (first frame only), no cache of variants.

local ffi = require "ffi"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local rules = require "stream_local.rules"
local filestore = require "stream_local.filestore"

-- luacheck: globals ngx
local ngx = ngx
local sub, floor, min, max, io_open = string.sub, math.floor, math.min, math.max, io.open
local pcall, ipairs = pcall, ipairs

local M = {}

pcall(ffi.cdef, [[
typedef struct _VipsImage VipsImage;
int vips_init(const char *argv0);
void vips_concurrency_set(int concurrency);
void vips_cache_set_max(int max);
void vips_cache_set_max_mem(size_t max_mem);
const char *vips_error_buffer(void);
void vips_error_clear(void);
VipsImage *vips_image_new_from_file(const char *name, ...);
int vips_image_get_width(const VipsImage *image);
int vips_image_get_height(const VipsImage *image);
int vips_avg(VipsImage *in, double *out, ...);
int vips_resize(VipsImage *in, VipsImage **out, double scale, ...);
int vips_embed(VipsImage *in, VipsImage **out, int x, int y, int width, int height, ...);
int vips_image_write_to_buffer(VipsImage *in, const char *suffix, void **buf, size_t *size, ...);
const char *vips_foreign_find_save_buffer(const char *suffix);
void g_object_unref(void *object);
void g_free(void *mem);
]])

local vips -- the loaded library, after init_worker

function M.init_worker()
  local ok, lib = pcall(ffi.load, "libvips.so.42")
  if not ok then
    ngx.log(ngx.WARN, "stream-local: libvips.so.42 not loaded, images cannot be checked or processed: ", lib)
    return
  end
  if lib.vips_init("stream-local") ~= 0 then
    ngx.log(ngx.WARN, "stream-local: vips_init failed")
    return
  end
  lib.vips_concurrency_set(1)
  lib.vips_cache_set_max(0)
  lib.vips_cache_set_max_mem(0)
  vips = lib
end

-- sniffing --------------------------------------------------------------------------

M.IMAGE_TYPES = { ["image/jpeg"] = ".jpg", ["image/png"] = ".png", ["image/gif"] = ".gif",
  ["image/bmp"] = ".bmp", ["image/webp"] = ".webp" }

local MAGIC = {
  { "\255\216\255", "image/jpeg" },
  { "\137PNG\r\n\26\n", "image/png" },
  { "GIF87a", "image/gif" },
  { "GIF89a", "image/gif" },
  { "BM", "image/bmp" },
  { "%PDF-", "application/pdf" },
  { "PK\3\4", "application/zip" },
  { "\31\139", "application/gzip" },
}

function M.sniff(head)
  if sub(head, 1, 4) == "RIFF" and sub(head, 9, 12) == "WEBP" then return "image/webp" end
  for _, m in ipairs(MAGIC) do
    if sub(head, 1, #m[1]) == m[1] then return m[2] end
  end
  if head ~= "" and not head:find("[%z\1-\8\11\12\14-\31\127]") then return "text/plain" end
  return "application/octet-stream"
end

function M.sniff_file(path)
  local f = io_open(path, "rb")
  if not f then return "application/octet-stream" end
  local head = f:read(512) or ""
  f:close()
  return M.sniff(head)
end

-- libvips ---------------------------------------------------------------------------

local function vips_failure(what)
  local text = ffi.string(vips.vips_error_buffer())
  vips.vips_error_clear()
  text = text:gsub("%s+$", ""):gsub("%s+", " ")
  if text == "" then text = "libvips failed" end
  return nil, what .. ": " .. sub(text, 1, 300)
end

local FAIL_ON_TRUNCATED = ffi.new("int", 1)
-- the most pixels an image may have, so a small file that claims huge dimensions cannot
-- hold a worker for long
M.MAX_PIXELS = 100000000

local function load(path)
  if not vips then return nil, "libvips is not available on this server" end
  local img = vips.vips_image_new_from_file(path, "fail_on", FAIL_ON_TRUNCATED, nil)
  if img == nil then return vips_failure("the image cannot be decoded") end
  img = ffi.gc(img, vips.g_object_unref)
  if vips.vips_image_get_width(img) * vips.vips_image_get_height(img) > M.MAX_PIXELS then
    return nil, "the image has more than " .. M.MAX_PIXELS .. " pixels"
  end
  return img
end

function M.decodes(path)
  local img, why = load(path)
  if not img then return nil, why end
  local avg = ffi.new("double[1]")
  if vips.vips_avg(img, avg, nil) ~= 0 then return vips_failure("the image cannot be decoded") end
  return true
end

local function out_image(rc, out, what)
  if rc ~= 0 then return vips_failure(what) end
  return ffi.gc(out[0], vips.g_object_unref)
end

local function resize(img, xs, ys)
  local out = ffi.new("VipsImage *[1]")
  return out_image(vips.vips_resize(img, out, xs, "vscale", ys, nil), out, "resize failed")
end

-- embed(img, x, y, w, h): img placed at x, y on a w x h canvas (a negative offset or a
-- smaller canvas cuts it); the edge is extended with black
local function embed(img, x, y, w, h)
  local out = ffi.new("VipsImage *[1]")
  return out_image(vips.vips_embed(img, out, x, y, w, h, nil), out, "embed failed")
end

-- offset(size, want, low, high): where a `want` window starts in `size` for the sides
local function offset(size, want, low, high)
  if low and not high then return 0 end
  if high and not low then return size - want end
  return floor((size - want) / 2)
end

-- transform(img, o) -> the variant image | nil, why
local function transform(img, o)
  local W, H = vips.vips_image_get_width(img), vips.vips_image_get_height(img)
  local w = o.w or max(1, floor(W * o.h / H + 0.5))
  local h = o.h or max(1, floor(H * o.w / W + 0.5))
  if o.resize == "scale" then
    local r, why = resize(img, w / W, h / H)
    if not r then return nil, why end
    return embed(r, 0, 0, w, h)
  end
  local s = (o.resize == "crop" and max or min)(w / W, h / H)
  local r, why = resize(img, s, s)
  if not r then return nil, why end
  local cw, ch = vips.vips_image_get_width(r), vips.vips_image_get_height(r)
  if o.resize == "clip" then return r end
  if o.resize == "fill" then return embed(r, floor((w - cw) / 2), floor((h - ch) / 2), w, h) end
  local sides = o.crop
  local x = offset(cw, w, sides.left, sides.right)
  local y = offset(ch, h, sides.top, sides.bottom)
  return embed(r, -max(0, x), -max(0, y), w, h)
end

-- encode(img, content_type) -> bytes, content type
local function encode(img, content_type)
  local suffix = M.IMAGE_TYPES[content_type]
  if vips.vips_foreign_find_save_buffer(suffix) == nil then
    vips.vips_error_clear()
    suffix, content_type = ".png", "image/png"
  end
  local buf, size = ffi.new("void *[1]"), ffi.new("size_t[1]")
  if vips.vips_image_write_to_buffer(img, suffix, buf, size, nil) ~= 0 then
    return vips_failure("the variant cannot be written")
  end
  local bytes = ffi.string(buf[0], size[0])
  vips.g_free(buf[0])
  return bytes, content_type
end

-- variant(path, content_type, o) -> bytes, content type | nil, why
function M.variant(path, content_type, o)
  local img, why = load(path)
  if not img then return nil, why end
  local out
  out, why = transform(img, o)
  if not out then return nil, why end
  return encode(out, content_type)
end

-- the process endpoint --------------------------------------------------------------

local RESIZE = { clip = true, crop = true, scale = true, fill = true }
local SIDES = { top = true, bottom = true, left = true, right = true, center = true }

local function parse_crop(v)
  local sides, any = {}, false
  for item in (v .. ","):gmatch("([^,]*),") do
    item = item:match("^%s*(.-)%s*$"):lower()
    if not SIDES[item] then return nil end
    sides[item], any = true, true
  end
  return any and sides or nil
end

local QUERY = {
  { name = "resize", default = "clip", parse = function(v) return RESIZE[v] and v or nil end,
    message = "must be clip, crop, scale or fill" },
  { name = "crop", default = { center = true }, parse = parse_crop,
    message = "must be top, bottom, left, right or center, or a comma list of them" },
  { name = "w", min = 1, max = 10000, message = "must be a whole number from 1 to 10000" },
  { name = "h", min = 1, max = 10000, message = "must be a whole number from 1 to 10000" },
}
M.QUERY = QUERY

-- options(args) -> the transform's options | nil, errors
function M.options(args)
  local errors = {}
  local o = rules.query(args, QUERY, errors)
  if not o.w and not o.h and not errors[1] then
    errors[#errors + 1] = { "w", "w or h is required" }
    errors[#errors + 1] = { "h", "w or h is required" }
  end
  if errors[1] then return nil, errors end
  return o
end

-- variant_name(name, content_type): the source's name, its extension changed when the
-- variant's format differs (a BMP becomes a PNG)
local function variant_name(name, from, to)
  if from == to then return name end
  return (name:gsub("%.[^./]*$", "")) .. M.IMAGE_TYPES[to]
end

function M.process(ctx)
  local o, errors = M.options(ctx.args)
  if not o then return reply.invalid(errors) end
  local src, status, detail = filestore.lookup(request.arg(ctx.args, "url"), ctx.principal, "process")
  if not src then return reply.error(status, detail, status == 400 and { { "url", detail } } or nil) end
  if not src.image then return reply.error(400, "File type " .. src.content_type .. " is not supported") end
  local bytes, content_type = M.variant(filestore.path(src.id), src.content_type, o)
  if not bytes then return reply.error(400, content_type) end
  local row = { id = filestore.new_id(), owner = src.owner, name = variant_name(src.name, src.content_type,
    content_type), content_type = content_type, size = #bytes, image = true }
  filestore.write_bytes(row.id, bytes)
  filestore.add(row)
  return reply.send(200, '{"file":' .. filestore.url_json(row) .. "}")
end

return M
