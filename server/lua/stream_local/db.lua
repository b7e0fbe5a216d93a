-- stream_local.db: SQLite through the LuaJIT FFI, one connection per nginx worker.
--
-- What it does:
--   * prepare_file() runs once in the master (init_by_lua) before workers fork: it wipes a
--     throw-away database, creates the schema (stream_local.schema), adds the columns an
--     older kept file lacks (schema.UPGRADES) and the indexes over them (schema.INDEXES)
--     and switches the file to WAL, then closes
--     its connection (a connection never crosses a fork).
--   * open() runs in each worker (init_worker_by_lua): its own connection, busy_timeout,
--     max_page_count from STREAM_LOCAL_MEMORY, statements cached by SQL text.
--   * rows(sql, ...), one(sql, ...), exec(sql, ...): bind the arguments (Lua strings as
--     text, numbers as int64, nil as NULL), step, and return rows as arrays (NULL is
--     nil) or, for exec, the number of changed rows.
--   * read(fn, ...): one deferred (read-only) transaction around fn, so its SELECTs see
--     one snapshot even while other workers write; inside write() or read() it just
--     calls fn. fn must not write.
--   * write(fn, ...): one BEGIN IMMEDIATE transaction around fn, COMMIT on return,
--     ROLLBACK when fn raises. Transactions never yield (no ngx.sleep, no cosockets inside
--     fn), so a worker waiting in busy_timeout waits for a few milliseconds at most.
--   * A full database (SQLITE_FULL: STREAM_LOCAL_MEMORY reached) raises
--     { storage_full = true }; the transaction is rolled back, so nothing half-written
--     stays, and stream_local.app answers 507 with a Stream error body.
--
-- What it deliberately does not do: no ORM, no query building, no blobs or floats, no
-- nested transactions, no connection sharing between workers.

local ffi = require "ffi"
local config = require "stream_local.config"
local schema = require "stream_local.schema"

-- luacheck: globals ngx
local ngx = ngx
local error, type, tonumber, tostring, select, pcall = error, type, tonumber, tostring, select, pcall
local ffi_string = ffi.string

local M = {}

pcall(ffi.cdef, [[
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *vfs);
int sqlite3_close_v2(sqlite3 *db);
int sqlite3_exec(sqlite3 *db, const char *sql, void *cb, void *arg, char **errmsg);
const char *sqlite3_errmsg(sqlite3 *db);
int sqlite3_busy_timeout(sqlite3 *db, int ms);
int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **stmt, const char **tail);
int sqlite3_bind_text(sqlite3_stmt *stmt, int i, const char *s, int n, void (*destructor)(void *));
int sqlite3_bind_int64(sqlite3_stmt *stmt, int i, int64_t v);
int sqlite3_bind_null(sqlite3_stmt *stmt, int i);
int sqlite3_step(sqlite3_stmt *stmt);
int sqlite3_reset(sqlite3_stmt *stmt);
int sqlite3_clear_bindings(sqlite3_stmt *stmt);
int sqlite3_column_count(sqlite3_stmt *stmt);
int sqlite3_column_type(sqlite3_stmt *stmt, int i);
const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int i);
int sqlite3_column_bytes(sqlite3_stmt *stmt, int i);
int64_t sqlite3_column_int64(sqlite3_stmt *stmt, int i);
int sqlite3_changes(sqlite3 *db);
]])

local lib = ffi.load(config.sqlite_library)

local OK, ROW, DONE, FULL = 0, 100, 101, 13
local OPEN_FLAGS = 0x2 + 0x4 + 0x8000 -- READWRITE | CREATE | NOMUTEX
local INTEGER, NULL = 1, 5
local TRANSIENT = ffi.cast("void (*)(void *)", -1)

local conn -- this worker's sqlite3 *
local cache = {} -- sql -> sqlite3_stmt *
local in_transaction = false
local in_read = false

local function fail(db, rc, what)
  if rc == FULL then error({ storage_full = true }, 0) end
  error("sqlite: " .. what .. ": " .. ffi_string(lib.sqlite3_errmsg(db)) .. " (" .. tostring(rc) .. ")", 0)
end

local function connect(path)
  local out = ffi.new("sqlite3 *[1]")
  local rc = lib.sqlite3_open_v2(path, out, OPEN_FLAGS, nil)
  local db = out[0]
  if rc ~= OK then
    local msg = db ~= nil and ffi_string(lib.sqlite3_errmsg(db)) or "out of memory"
    if db ~= nil then lib.sqlite3_close_v2(db) end
    error("sqlite: cannot open " .. path .. ": " .. msg, 0)
  end
  lib.sqlite3_busy_timeout(db, config.busy_timeout_ms)
  return db
end

local function exec_script(db, sql)
  local rc = lib.sqlite3_exec(db, sql, nil, nil, nil)
  if rc ~= OK then fail(db, rc, "exec") end
end

function M.path()
  return config.db_path or (ngx.config.prefix() .. "data/stream.db")
end

function M.prepare_file()
  local path = M.path()
  if not config.db_path then
    for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(path .. suffix) end
  end
  local db = connect(path)
  local ok, err = pcall(function()
    exec_script(db, "PRAGMA journal_mode=WAL;")
    exec_script(db, "BEGIN IMMEDIATE;" .. schema.SQL .. "COMMIT;")
    for _, u in ipairs(schema.UPGRADES) do
      if lib.sqlite3_exec(db, u.probe, nil, nil, nil) ~= OK then exec_script(db, u.apply) end
    end
    exec_script(db, schema.INDEXES)
    exec_script(db, schema.grouped_slugs_sql(config.feed_groups))
  end)
  lib.sqlite3_close_v2(db)
  if not ok then error(err, 0) end
end

function M.open()
  if conn then return end
  conn = connect(M.path())
  exec_script(conn, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;")
  if config.max_db_bytes then
    exec_script(conn, "PRAGMA max_page_count=" .. math.floor(config.max_db_bytes / 4096) .. ";")
  end
end

local function statement(sql)
  local stmt = cache[sql]
  if stmt then return stmt end
  local out = ffi.new("sqlite3_stmt *[1]")
  local rc = lib.sqlite3_prepare_v2(conn, sql, #sql, out, nil)
  if rc ~= OK then fail(conn, rc, "prepare") end
  stmt = out[0]
  cache[sql] = stmt
  return stmt
end

local function bind(stmt, n, ...)
  for i = 1, n do
    local v = select(i, ...)
    local rc
    if v == nil then
      rc = lib.sqlite3_bind_null(stmt, i)
    elseif type(v) == "number" then
      rc = lib.sqlite3_bind_int64(stmt, i, v)
    else
      v = tostring(v)
      rc = lib.sqlite3_bind_text(stmt, i, v, #v, TRANSIENT)
    end
    if rc ~= OK then fail(conn, rc, "bind") end
  end
end

local function column(stmt, i)
  local t = lib.sqlite3_column_type(stmt, i)
  if t == NULL then return nil end
  if t == INTEGER then return tonumber(lib.sqlite3_column_int64(stmt, i)) end
  local p = lib.sqlite3_column_text(stmt, i)
  return ffi_string(p, lib.sqlite3_column_bytes(stmt, i))
end

-- run(sql, limit, ...) -> rows (at most `limit` when given)
local function run(sql, limit, ...)
  if not conn then M.open() end
  local stmt = statement(sql)
  bind(stmt, select("#", ...), ...)
  local rows, ncol = {}, lib.sqlite3_column_count(stmt)
  while true do
    local rc = lib.sqlite3_step(stmt)
    if rc == ROW then
      local row = { n = ncol }
      for i = 1, ncol do row[i] = column(stmt, i - 1) end
      rows[#rows + 1] = row
      if limit and #rows >= limit then break end
    elseif rc == DONE then
      break
    else
      lib.sqlite3_reset(stmt)
      lib.sqlite3_clear_bindings(stmt)
      fail(conn, rc, "step")
    end
  end
  lib.sqlite3_reset(stmt)
  lib.sqlite3_clear_bindings(stmt)
  return rows
end

function M.rows(sql, ...)
  return run(sql, nil, ...)
end

function M.one(sql, ...)
  return run(sql, 1, ...)[1]
end

function M.exec(sql, ...)
  run(sql, nil, ...)
  return lib.sqlite3_changes(conn)
end

-- read(fn, ...) -> fn's results; fn's reads share one snapshot
function M.read(fn, ...)
  if in_transaction or in_read then return fn(...) end
  if not conn then M.open() end
  local rc = lib.sqlite3_exec(conn, "BEGIN", nil, nil, nil)
  if rc ~= OK then fail(conn, rc, "begin") end
  in_read = true
  local ok, a, b = pcall(fn, ...)
  in_read = false
  lib.sqlite3_exec(conn, ok and "COMMIT" or "ROLLBACK", nil, nil, nil)
  if not ok then error(a, 0) end
  return a, b
end

-- write(fn, ...) -> fn's results; fn runs inside one BEGIN IMMEDIATE transaction
function M.write(fn, ...)
  if in_read then error("stream_local.db: write() inside read()", 2) end
  if in_transaction then return fn(...) end
  if not conn then M.open() end
  local rc = lib.sqlite3_exec(conn, "BEGIN IMMEDIATE", nil, nil, nil)
  if rc ~= OK then fail(conn, rc, "begin") end
  in_transaction = true
  local ok, a, b = pcall(fn, ...)
  if ok then
    rc = lib.sqlite3_exec(conn, "COMMIT", nil, nil, nil)
    if rc ~= OK then
      local msg = ffi_string(lib.sqlite3_errmsg(conn))
      lib.sqlite3_exec(conn, "ROLLBACK", nil, nil, nil)
      in_transaction = false
      if rc == FULL then error({ storage_full = true }, 0) end
      error("sqlite: commit: " .. msg, 0)
    end
    in_transaction = false
    return a, b
  end
  lib.sqlite3_exec(conn, "ROLLBACK", nil, nil, nil)
  in_transaction = false
  error(a, 0)
end

return M
