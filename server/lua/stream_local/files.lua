-- stream_local.files: uploading, serving and deleting files and images
-- (stream-feeds-api.md section 13).
--
-- What it does:
--   POST files/, POST images/: a multipart/form-data body with one part named `file`
--     that has a filename (stream_local.multipart reads it as it streams from the body,
--     from memory or from the file nginx spooled it to) -> 201 {"file": url}. The bytes
--     go to disk (stream_local.filestore), the row names the owner (the token's user;
--     none for server tokens), the name, content type and size. images/ judges the bytes
--     (stream_local.images: jpeg, png, gif, bmp, webp, decoded whole by libvips); else
--     400 `File type <type> is not supported`. A body without a boundary, cut short or
--     without a `file` part is 400 code 4; above 100 MB nginx answers 413 (too_large).
--   DELETE files/?url=, DELETE images/?url=: 200 {}; 404 for a file that is not there
--     (any more), 403 for another user's file (server tokens may delete anything).
--   GET images/?url=&resize=&crop=&w=&h=: stream_local.images.process.
--   GET /_files/<id>/<name>?Expires=&Signature= (serve, its own nginx location: no api_key
--     or token): the bytes with their content type, read in chunks; a wrong or expired
--     signature is 403, an unknown file 404. Uploads and served files name the worker
--     that answered (X-Stream-Local-Worker: its pid).
--   Tokens: resource `files` (images too) or `*`; user tokens allowed.
--
-- What it deliberately does not do: no range requests, no HEAD bodies, no other form
-- fields, no listing of files.

local reply = require "stream_local.reply"
local request = require "stream_local.request"
local guards = require "stream_local.guards"
local multipart = require "stream_local.multipart"
local filestore = require "stream_local.filestore"
local images = require "stream_local.images"

-- luacheck: globals ngx
local ngx = ngx
local io_open, os_remove, os_rename, xpcall, traceback = io.open, os.remove, os.rename, xpcall, debug.traceback
local error, type, assert = error, type, assert

local M = {}

M.CHUNK = 1024 * 1024
M.MAX_NAME = 255

-- body_reader() -> read() giving the request body in chunks, then nil
local function body_reader()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then
    return function()
      local d = data
      data = nil
      return d
    end
  end
  local path = ngx.req.get_body_file()
  local f = path and io_open(path, "rb")
  if path and not f then error("cannot open the spooled request body " .. path, 0) end
  return function()
    if not f then return nil end
    local chunk = f:read(M.CHUNK)
    if not chunk then f:close(); f = nil end
    return chunk
  end
end

-- file_name(disposition params) -> the name the file is stored and served under | nil
local function file_name(p)
  local name = p.filename
  if type(name) ~= "string" then return nil end
  name = name:match("([^/\\]*)$"):gsub("%c", "")
  if name == "" or name == "." or name == ".." or #name > M.MAX_NAME then return nil end
  return name
end

local function sane_type(t)
  if type(t) == "string" and t:find("^[%w!#$&^_.+-]+/[%w!#$&^_.+-]+$") and #t <= 200 then return t:lower() end
  return "application/octet-stream"
end

-- receive(tmp) -> the upload's part { name, content_type, size } | nil, why: the `file`
-- part's bytes written to tmp as they stream
local function receive(tmp)
  local boundary, why = multipart.boundary(ngx.var.content_type)
  if not boundary then return nil, why end
  local part, out, bad
  local ok
  ok, why = multipart.parse(body_reader(), boundary, function(h)
    local cd = h["content-disposition"] or ""
    local p = multipart.params(cd:match("^%s*[^;%s]*%s*(.*)$"))
    if part or p.name ~= "file" then return nil end
    part = { name = file_name(p), content_type = sane_type(h["content-type"]), size = 0 }
    if not part.name then bad = "the part named file needs a filename (1 to 255 bytes, not a path)"; return nil end
    out = assert(io_open(tmp, "wb"))
    return function(bytes)
      part.size = part.size + #bytes
      assert(out:write(bytes))
    end
  end)
  if out then out:close() end
  if not ok then return nil, why end
  if bad then return nil, bad end
  if not part then return nil, "the multipart body has no part named file" end
  return part
end

local function upload(ctx, image)
  local id = filestore.new_id()
  local tmp = filestore.path(id) .. ".part"
  local ok, part, why = xpcall(receive, traceback, tmp)
  if not ok then os_remove(tmp); error(part, 0) end
  if not part then
    os_remove(tmp)
    return reply.invalid({ { "file", why } })
  end
  if image then
    local kind = images.sniff_file(tmp)
    if not images.IMAGE_TYPES[kind] then
      os_remove(tmp)
      return reply.error(400, "File type " .. kind .. " is not supported", { { "file", "is not an image" } })
    end
    local decoded, fault = images.decodes(tmp)
    if not decoded then
      os_remove(tmp)
      return reply.error(400, "File type " .. kind .. " cannot be read: " .. fault, { { "file", fault } })
    end
    part.content_type = kind
  end
  assert(os_rename(tmp, filestore.path(id)))
  local row = { id = id, owner = ctx.principal.user_id, name = part.name, content_type = part.content_type,
    size = part.size, image = image }
  filestore.add(row)
  ngx.header["X-Stream-Local-Worker"] = ngx.worker.pid()
  return reply.send(201, '{"file":' .. filestore.url_json(row) .. "}")
end

function M.upload_file(ctx)
  return upload(ctx, false)
end

function M.upload_image(ctx)
  return upload(ctx, true)
end

function M.delete(ctx)
  local row, status, detail = filestore.lookup(request.arg(ctx.args, "url"), ctx.principal, "delete")
  if not row then return reply.error(status, detail, status == 400 and { { "url", detail } } or nil) end
  if not filestore.remove(row.id) then return reply.error(404, "the file " .. row.id .. " does not exist") end
  return reply.send(200, "{}")
end

-- serving ---------------------------------------------------------------------------

local function send_file(row)
  local f = io_open(filestore.path(row.id), "rb")
  if not f then return reply.error(404, "the file " .. row.id .. " does not exist") end
  ngx.status = 200
  ngx.header["Content-Type"] = row.content_type
  ngx.header["Content-Length"] = row.size
  ngx.header["Cache-Control"] = "private, max-age=3600"
  ngx.header["X-Stream-Local-Worker"] = ngx.worker.pid()
  if ngx.req.get_method() == "HEAD" then f:close(); return end
  while true do
    local chunk = f:read(256 * 1024)
    if not chunk then break end
    ngx.print(chunk)
    local ok = ngx.flush(true)
    if not ok then break end
  end
  f:close()
end

local function serve()
  reply.start()
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "HEAD" then
    ngx.header["Allow"] = "GET, HEAD"
    return reply.error(405, "method " .. method .. " is not allowed on a file URL (allowed: GET, HEAD)")
  end
  local path = (ngx.var.request_uri or ""):match("^[^?]*")
  local id, name = path:match("^/_files/(" .. filestore.ID .. ")/([^/]+)$")
  local row = id and filestore.get(id:lower())
  if not row or ngx.unescape_uri(name) ~= row.name then
    return reply.error(404, "no such file: " .. path)
  end
  local args = ngx.req.get_uri_args(20)
  ngx.update_time()
  local ok, why = filestore.check(row.id, row.name, request.arg(args, "Expires"), request.arg(args, "Signature"),
    ngx.now())
  if not ok then return reply.error(403, why) end
  return send_file(row)
end

-- serve(): content handler of the /_files/ location
function M.serve()
  local ok, err = xpcall(serve, traceback)
  if not ok then
    ngx.log(ngx.ERR, "stream-local: unexpected error: ", err)
    if not ngx.headers_sent then reply.error(500, "internal server error (see the server's error log)") end
  end
end

-- too_large(): the error_page target of the upload location (its body limit is 100 MB)
function M.too_large()
  reply.start()
  return reply.error(413, "the request body is too large (uploads are limited to 100 MB)")
end

-- routes (assembled by stream_local.app) ------------------------------------------

M.ROUTES = {
  { pattern = [[^/api/v1\.0/files/$]], resource = "files", feed_id = guards.any_feed,
    methods = { POST = M.upload_file, DELETE = M.delete } },
  { pattern = [[^/api/v1\.0/images/$]], resource = "files", feed_id = guards.any_feed,
    methods = { POST = M.upload_image, DELETE = M.delete, GET = images.process } },
}

return M
