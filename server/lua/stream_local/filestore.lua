-- stream_local.filestore: uploaded files and images (stream-feeds-api.md section 13): their
-- bytes on disk, their metadata in the `files` table of the SQLite database
-- (stream_local.db), and their signed URLs.
--
-- What it does:
--   * dir(): where the bytes live: `<STREAM_LOCAL_DB>.files/` next to a kept database
--     (so it keeps its files), else `data/files/` inside the server's prefix.
--     prepare() (the master, at start) makes it, and empties it for a throw-away
--     database, which is wiped at every start too.
--   * path(id), new_id(): a file's bytes are the file named by its random UUID.
--   * add(row), get(id), remove(id): the metadata row { id, owner (user id or nil),
--     name, content_type, size, image (boolean) }; remove also deletes the bytes.
--   * url(host, id, name, now) -> http://<host>/_files/<id>/<name>?Expires=<now+14d>
--     &Signature=<hex HMAC-SHA256 with the API secret of "<id>/<name>\n<expires>">;
--     check(id, name, expires, signature, now) -> true | nil, why.
--   * id_of(url): the UUID in a URL this server made (absolute or just its path);
--     lookup(url, principal, doing): that file's row, when the principal may change it.
--   * host(), url_json(row): the signed URL of a row for an answer; write_bytes(id, bytes).
--
-- What it deliberately does not do: no checks of what the bytes are (stream_local.files
-- and stream_local.images judge them), no quotas beyond STREAM_LOCAL_MEMORY for the rows.

local ffi = require "ffi"
local db = require "stream_local.db"
local config = require "stream_local.config"
local jwt = require "stream_local.jwt"
local json = require "stream_local.json"
local reactionstore = require "stream_local.reactionstore"
local userstore = require "stream_local.userstore"

-- luacheck: globals ngx
local ngx = ngx
local format, byte, tonumber, tostring = string.format, string.byte, tonumber, tostring
local os_remove, pcall = os.remove, pcall
local type, error, assert, floor = type, error, assert, math.floor

local M = {}

pcall(ffi.cdef, [[
int mkdir(const char *path, unsigned int mode);
]])

M.EXPIRES_S = 14 * 24 * 3600
M.ID = "%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x"

function M.dir()
  if config.db_path then return config.db_path .. ".files/" end
  return ngx.config.prefix() .. "data/files/"
end

-- prepare(): in the master before the workers fork
function M.prepare()
  local dir = M.dir()
  if not config.db_path then
    os.execute("rm -rf -- '" .. dir:gsub("'", "'\\''") .. "'")
  end
  ffi.C.mkdir(dir, tonumber("700", 8))
end

function M.path(id)
  return M.dir() .. id
end

M.new_id = reactionstore.new_id

function M.add(row)
  db.write(function()
    db.exec("INSERT INTO files (id, owner, name, content_type, size, image, created_us)"
      .. " VALUES (?, ?, ?, ?, ?, ?, ?)", row.id, row.owner, row.name, row.content_type, row.size,
      row.image and 1 or 0, userstore.now_us())
  end)
end

function M.get(id)
  local r = db.one("SELECT id, owner, name, content_type, size, image FROM files WHERE id = ?", id)
  if not r then return nil end
  return { id = r[1], owner = r[2], name = r[3], content_type = r[4], size = r[5], image = r[6] == 1 }
end

-- remove(id) -> true when the row was there (its bytes are deleted after the commit)
function M.remove(id)
  local n = db.write(function() return db.exec("DELETE FROM files WHERE id = ?", id) end)
  if n == 0 then return false end
  os_remove(M.path(id))
  return true
end

local function hex(s)
  return (s:gsub(".", function(c) return format("%02x", byte(c)) end))
end

local function signature(id, name, expires)
  return hex(jwt.hmac_sha256(config.api_secret, id .. "/" .. name .. "\n" .. expires))
end

function M.url(host, id, name, now)
  local expires = format("%d", now + M.EXPIRES_S)
  return "http://" .. host .. "/_files/" .. id .. "/" .. ngx.escape_uri(name) .. "?Expires=" .. expires
    .. "&Signature=" .. signature(id, name, expires)
end

function M.check(id, name, expires, sig, now)
  if type(expires) ~= "string" or not expires:find("^%d+$") or type(sig) ~= "string" then
    return nil, "the URL's Expires and Signature are missing or malformed"
  end
  if not jwt.equal_ct(sig:lower(), signature(id, name, expires)) then
    return nil, "the URL's signature does not match"
  end
  if tonumber(expires) <= now then return nil, "the URL has expired" end
  return true
end

-- host(): the host of the URLs handed out: the request's Host header when it is a plain
-- host[:port], else the address the server listens on
function M.host()
  local h = ngx.var.http_host
  if type(h) == "string" and (h:find("^[%w.-]+:?%d*$") or h:find("^%[[%x:.]+%]:?%d*$")) then
    return h
  end
  return "127.0.0.1:" .. ngx.var.server_port
end

-- url_json(row) -> the JSON string of a stored file's signed URL, for an answer
function M.url_json(row)
  ngx.update_time()
  return json.quote(M.url(M.host(), row.id, row.name, floor(ngx.now())))
end

-- write_bytes(id, bytes): a whole file's bytes (the variants of stream_local.images)
function M.write_bytes(id, bytes)
  local tmp = M.path(id) .. ".part"
  local f = assert(io.open(tmp, "wb"))
  local ok, err = f:write(bytes)
  f:close()
  if not ok then os_remove(tmp); error("cannot write " .. tmp .. ": " .. tostring(err), 0) end
  assert(os.rename(tmp, M.path(id)))
end

-- lookup(url, principal, doing) -> row | nil, status, detail: the stored file a `url`
-- query value names, when the principal may change it (server tokens own nothing and may
-- touch anything; a user only its own files)
function M.lookup(url, principal, doing)
  if url == nil or url == "" then return nil, 400, "url is required" end
  local id = M.id_of(url)
  if not id then return nil, 400, "url must be a file URL this server gave" end
  local row = db.read(M.get, id)
  if not row then return nil, 404, "the file " .. id .. " does not exist" end
  if not principal.server and row.owner ~= principal.user_id then
    return nil, 403, "the file " .. id .. " belongs to another user, who alone may " .. doing .. " it"
  end
  return row
end

function M.id_of(url)
  if type(url) ~= "string" then return nil end
  local id = url:match("^[%w+.-]*:?/?/?[^/?#]*/_files/(" .. M.ID .. ")/")
  return id and id:lower()
end

return M
