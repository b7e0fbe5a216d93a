-- stream.files: `client.files` and `client.images`, uploads to Stream's
-- CDN (`POST files/`, `POST images/`), their deletion (`DELETE
-- files/?url=`) and image variants (`GET images/?url=&resize=&crop=&w=&h=`).
--
-- An upload is multipart/form-data with one part named `file`: the file
-- name, its content type (given, else guessed from the name's extension,
-- else application/octet-stream) and the bytes. The source is a string of
-- bytes, or {path = "..."}: a file streamed from disk by the transport
-- (`body_parts`, see transport/curl.lua), never read whole into memory.
-- The boundary is random and checked not to occur in the bytes (a file is
-- scanned by the core through a fixed buffer). Checks, nothing sent when they fail
-- (`invalid`): the bytes are at most MAX_BYTES (a file's size is what
-- counts), a file opens, the name is 1..255 bytes without control
-- characters, '"', '\\' or '/', a content type is type/subtype without
-- control characters; a URL to delete or process is http(s); process's
-- `resize`, `crop`, `w` and `h` follow RESIZE, CROP and positive integers.
-- Wrong types raise. Retry safety: an upload is sent again only when
-- nothing reached the server; a delete or a process may be repeated.

local errors = require "stream.errors"
local check = require "stream.check"

local files = {}

-- Uploads are limited to 100 MB (MiB: the larger reading) by the service.
files.MAX_BYTES = 100 * 1024 * 1024
local MAX_NAME = 255
local OCTETS = "application/octet-stream"

-- Content types by a name's extension (lower-cased).
files.TYPES = {
  txt = "text/plain", text = "text/plain", csv = "text/csv", html = "text/html", htm = "text/html",
  css = "text/css", md = "text/markdown", xml = "application/xml", json = "application/json",
  js = "text/javascript", pdf = "application/pdf", zip = "application/zip",
  gz = "application/gzip", tar = "application/x-tar", doc = "application/msword",
  docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls = "application/vnd.ms-excel",
  xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif", bmp = "image/bmp",
  webp = "image/webp", svg = "image/svg+xml", ico = "image/x-icon", tif = "image/tiff", tiff = "image/tiff",
  heic = "image/heic", mp3 = "audio/mpeg", wav = "audio/wav", ogg = "audio/ogg", m4a = "audio/mp4",
  mp4 = "video/mp4", webm = "video/webm", mov = "video/quicktime", avi = "video/x-msvideo",
}

local RESIZE = { clip = true, crop = true, scale = true, fill = true }
local CROP = { top = true, bottom = true, left = true, right = true, center = true }
local UPLOAD_KEYS = { content_type = true }
local PROCESS_KEYS = { resize = true, crop = true, w = true, h = true }

local Files = { __name = "stream.files" }
Files.__index = Files
local Images = { __name = "stream.images" }
Images.__index = Images

function Files.__tostring() return "stream.files" end
function Images.__tostring() return "stream.images" end

-- client.files (kind "files") or client.images (kind "images").
function files.new(client, kind)
  return setmetatable({ client = client, kind = kind, path = kind .. "/" }, kind == "images" and Images or Files)
end

local function self_check(self, fname)
  local mt = getmetatable(self)
  if mt ~= Files and mt ~= Images then check.raise(fname .. ": called with '.' instead of ':'", 3) end
end

---------------------------------------------------------------- uploads

-- The content type of a name: by its extension, else OCTETS.
function files.guess_type(name)
  local ext = name:match("%.([%w]+)$")
  return ext and files.TYPES[ext:lower()] or OCTETS
end

-- A random boundary (the server takes at most 70 characters): 128 bits in
-- 16-bit draws, which every Lua's math.random and %x handle alike.
local function new_boundary()
  local t = {}
  for i = 1, 8 do t[i] = string.format("%04x", math.random(0, 0xffff)) end
  return "stream-lua-" .. table.concat(t)
end

-- A boundary that does not occur in the bytes: `has(b)` tells (true,
-- false, or nil, problem: then nil, problem).
local function boundary_for(has)
  while true do
    local b = new_boundary()
    local found, problem = has(b)
    if found == false then return b end
    if found == nil then return nil, problem end
  end
end

-- The file of a {path =} source: size, boundary | nil, err. The core
-- scans it for the boundary through a fixed buffer (pipeline:file_contains).
local function file_source(pipe, path, info)
  local f, msg = io.open(path, "rb")
  if not f then return nil, errors.invalid("cannot open the file to upload: " .. tostring(msg), "file", info) end
  local size = f:seek("end")
  f:close()
  if not size or size > files.MAX_BYTES then
    return nil, errors.invalid(size and ("the file is " .. size .. " bytes; uploads are limited to "
      .. files.MAX_BYTES) or ("cannot read the file to upload: " .. path), "file", info)
  end
  local b, problem = boundary_for(function(x) return pipe:file_contains(path, x) end)
  if not b then return nil, errors.invalid("cannot read the file to upload: " .. problem, "file", info) end
  return size, b
end

-- The name and content type, checked: name, ct | nil, err.
local function name_and_type(name, ct, fname, info)
  if type(name) ~= "string" then check.raise(fname .. ": name must be a string, got " .. type(name), 4) end
  if name == "" or #name > MAX_NAME or name:find('[%c"\\/]') then
    return nil, errors.invalid("name " .. check.shown(name) .. " must be 1 to " .. MAX_NAME
      .. ' bytes without control characters, \'"\', \'\\\' or \'/\'', "name", info)
  end
  if ct == nil then return name, files.guess_type(name) end
  if type(ct) ~= "string" then check.raise(fname .. ": content_type must be a string, got " .. type(ct), 4) end
  if not ct:find("^[%w!#$&^_.+-]+/[%w!#$&^_.+-]+") or ct:find("%c") then
    return nil, errors.invalid("content_type " .. check.shown(ct) .. " must be type/subtype", "content_type", info)
  end
  return name, ct
end

-- The description of an upload | nil, err.
local function upload_desc(self, source, name, opts, fname)
  local info = { method = "POST", path = self.path }
  local ct, err
  name, ct = name_and_type(name, opts.content_type, fname, info)
  if not name then return nil, ct end
  local desc = { method = "POST", path = self.path, idempotent = false }
  local b, size
  if type(source) == "string" then
    if #source > files.MAX_BYTES then
      return nil, errors.invalid("the upload is " .. #source .. " bytes; uploads are limited to "
        .. files.MAX_BYTES, "file", info)
    end
    b = boundary_for(function(x) return source:find(x, 1, true) ~= nil end)
  elseif type(source) == "table" and type(source.path) == "string" then
    size, err = file_source(self.client.pipeline, source.path, info)
    if not size then return nil, err end
    b = err
  else
    check.raise(fname .. ": source must be a string of bytes or {path = \"...\"}, got " .. type(source), 3)
  end
  local prefix = "--" .. b .. '\r\nContent-Disposition: form-data; name="file"; filename="' .. name
    .. '"\r\nContent-Type: ' .. ct .. "\r\n\r\n"
  local suffix = "\r\n--" .. b .. "--\r\n"
  desc.content_type = "multipart/form-data; boundary=" .. b
  if size then
    desc.body_parts = { prefix, { path = source.path, size = size }, suffix }
  else
    desc.body = prefix .. source .. suffix
  end
  return desc
end

-- files:upload(source, name [, {content_type =}]) -> {file = url, duration =}
local function upload(self, source, name, opts)
  local fname = getmetatable(self) == Images and "images:upload" or "files:upload"
  self_check(self, fname)
  opts = check.opts(opts, UPLOAD_KEYS, fname, 2)
  local desc, err = upload_desc(self, source, name, opts, fname)
  if not desc then return nil, err end
  return self.client.pipeline:send(desc)
end
Files.upload, Images.upload = upload, upload

---------------------------------------------------------------- by URL

-- A CDN URL argument: the string | nil, err (raises for a non-string).
-- `lv`: where a raise points, as check.raise counts it (3 by default).
local function url_arg(url, fname, info, lv)
  if type(url) ~= "string" then check.raise(fname .. ": url must be a string, got " .. type(url), lv or 3) end
  if not url:find("^[hH][tT][tT][pP][sS]?://[^/?#%s]+") or url:find("[%c%s]") then
    return nil, errors.invalid("url " .. check.shown(url) .. " must be an http(s) URL", "url", info)
  end
  return url
end

-- files:delete(url) -> {duration =}
local function delete(self, url)
  local fname = getmetatable(self) == Images and "images:delete" or "files:delete"
  self_check(self, fname)
  local err
  url, err = url_arg(url, fname, { method = "DELETE", path = self.path })
  if not url then return nil, err end
  return self.client.pipeline:send({ method = "DELETE", path = self.path, query = { url = url }, idempotent = true })
end
Files.delete, Images.delete = delete, delete

-- The query of a process call (url added) | nil, err.
local function process_query(o, info, fname)
  local q = {}
  if o.resize ~= nil then
    if type(o.resize) ~= "string" then check.raise(fname .. ": resize must be a string", 3) end
    if not RESIZE[o.resize] then
      return nil, errors.invalid("resize " .. check.shown(o.resize) .. " must be clip, crop, scale or fill",
        "resize", info)
    end
    q.resize = o.resize
  end
  if o.crop ~= nil then
    if type(o.crop) ~= "string" then check.raise(fname .. ": crop must be a string", 3) end
    for side in (o.crop .. ","):gmatch("([^,]*),") do
      if not CROP[side] then
        return nil, errors.invalid("crop " .. check.shown(o.crop)
          .. " must be top, bottom, left, right or center, or a comma list of them", "crop", info)
      end
    end
    q.crop = o.crop
  end
  for _, k in ipairs({ "w", "h" }) do
    local v = o[k]
    if v ~= nil then
      if type(v) ~= "number" then check.raise(fname .. ": " .. k .. " must be a number, got " .. type(v), 3) end
      if v ~= math.floor(v) or v < 1 or v > 2^31 then
        return nil, errors.invalid(k .. " must be a positive whole number", k, info)
      end
      q[k] = v
    end
  end
  return q
end

-- images:process(url, {resize =, crop =, w =, h =}) -> {file = url of the variant}
function Images:process(url, opts)
  local fname = "images:process"
  check.self(self, Images, fname)
  opts = check.opts(opts, PROCESS_KEYS, fname, 2)
  local info = { method = "GET", path = self.path }
  local err
  url, err = url_arg(url, fname, info)
  if not url then return nil, err end
  local q
  q, err = process_query(opts, info, fname)
  if not q then return nil, err end
  q.url = url
  return self.client.pipeline:send({ method = "GET", path = self.path, query = q, idempotent = true })
end

files.url_arg = url_arg
return files
