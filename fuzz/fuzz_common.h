/*
 * fuzz_common.h - what every libFuzzer harness in fuzz/ shares: one Lua 5.4
 * state with the standard libraries and stream.core (linked in from the
 * csrc/ objects, registered with luaL_requiref), libFuzzer's two entry
 * points, and a prelude of Lua functions the checkers share.
 *
 * A harness includes this file and defines two functions:
 *
 *   static const char *fuzz_checker_source(void);
 *       Lua source of a chunk that runs after the prelude (so it sees the
 *       prelude's locals, among them `core`) and returns the check function.
 *   static int fuzz_push_input(lua_State *L, const uint8_t *data, size_t size);
 *       pushes the check function's arguments made from one input and
 *       returns how many it pushed. A harness whose check function takes
 *       the input as one string defines FUZZ_TEXT_INPUT before including
 *       this file instead.
 *
 * A Lua error escaping the check function is a failed property: it is
 * printed with a traceback and the process aborts, which libFuzzer records
 * as a crash with the input that caused it.
 *
 * The state is kept across inputs (creating one per input would cost more
 * than most inputs); the collector takes a step after every input and a full
 * cycle every 4096, so finalizers of the core's userdata run all the time.
 * package.path reaches the repository's Lua layer (lua/) and the local
 * server's modules (server/lua/, whose JSON parser is an independent
 * oracle), under $STREAM_ROOT or else the directory the harness was built
 * from; package.cpath is empty.
 *
 * It does not sandbox anything: inputs only reach the functions a checker
 * calls, never io/os.
 */
#ifndef STREAM_FUZZ_COMMON_H
#define STREAM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#ifndef STREAM_ROOT
#define STREAM_ROOT "."
#endif

int luaopen_stream_core(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* defined by the harness (fuzz_push_input here, with FUZZ_TEXT_INPUT) */
static const char *fuzz_checker_source(void);
#ifdef FUZZ_TEXT_INPUT
static int fuzz_push_input(lua_State *L, const uint8_t *data, size_t size)
{
    lua_pushlstring(L, (const char *)data, size);
    return 1;
}
#else
static int fuzz_push_input(lua_State *L, const uint8_t *data, size_t size);
#endif

/*
 * The prelude: locals every checker may use.
 *   core, encode, decode, null, array_mt, q(v), fail(fmt, ...)
 *   deq(a, b, path)        deep equality, also of math.type, the sign of
 *                          zero and the array mark
 *   same_text(t1, t2, what) two encodings of one value (object key order is
 *                          lua_next's, so it may differ between two tables
 *                          holding the same keys)
 *   has_inf(v)             a number in v is +-inf
 *   ref_encode(v)          the text json_encode must write, or nil, why
 *   server_parse(s), like_tree(v, node, path)
 *                          the local server's parser, and v against its tree
 */
static const char FUZZ_PRELUDE[] =
    "local core = ...\n"
    "local encode, decode, null = core.json_encode, core.json_decode, core.null\n"
    "local array_mt = core.array_mt\n"
    "local mtype, concat, sort, format = math.type, table.concat, table.sort, string.format\n"
    "local floor, huge = math.floor, math.huge\n"
    "local function fail(fmt, ...) error(format(fmt, ...), 2) end\n"
    "local function q(s) return format('%q', tostring(s)) end\n"
    "-- deq(a, b, path): deep equality that also compares math.type, the sign of\n"
    "-- zero and the array mark\n"
    "local function deq(a, b, path)\n"
    "  local ta, tb = type(a), type(b)\n"
    "  if ta ~= tb then fail('%s: type %s vs %s', path, ta, tb) end\n"
    "  if ta == 'number' then\n"
    "    if mtype(a) ~= mtype(b) then fail('%s: %s %s vs %s %s', path, mtype(a), a, mtype(b), b) end\n"
    "    if a ~= b and (a == a or b == b) then fail('%s: %s vs %s', path, q(a), q(b)) end\n"
    "    if a == 0 and mtype(a) == 'float' and 1/a ~= 1/b then fail('%s: sign of zero', path) end\n"
    "  elseif ta == 'table' then\n"
    "    if (getmetatable(a) == array_mt) ~= (getmetatable(b) == array_mt) then\n"
    "      fail('%s: array mark differs', path) end\n"
    "    for k, v in next, a do\n"
    "      local w = rawget(b, k)\n"
    "      if w == nil then fail('%s: key %s missing', path, q(k)) end\n"
    "      deq(v, w, path .. '[' .. q(k) .. ']')\n"
    "    end\n"
    "    for k in next, b do\n"
    "      if rawget(a, k) == nil then fail('%s: extra key %s', path, q(k)) end\n"
    "    end\n"
    "  elseif a ~= b then fail('%s: %s vs %s', path, q(a), q(b)) end\n"
    "end\n"
    "-- canon(v): a text with object keys sorted, to compare two encodings whose\n"
    "-- only freedom is the order of object keys\n"
    "local function canon(v, out)\n"
    "  if type(v) ~= 'table' then\n"
    "    out[#out + 1] = assert(encode(v)); return out\n"
    "  end\n"
    "  if getmetatable(v) == array_mt or rawlen(v) > 0 then\n"
    "    out[#out + 1] = '['\n"
    "    for i = 1, rawlen(v) do\n"
    "      if i > 1 then out[#out + 1] = ',' end\n"
    "      canon(v[i], out)\n"
    "    end\n"
    "    out[#out + 1] = ']'\n"
    "  else\n"
    "    local keys = {}\n"
    "    for k in next, v do keys[#keys + 1] = k end\n"
    "    sort(keys)\n"
    "    out[#out + 1] = '{'\n"
    "    for i, k in ipairs(keys) do\n"
    "      if i > 1 then out[#out + 1] = ',' end\n"
    "      out[#out + 1] = assert(encode(k)); out[#out + 1] = ':'\n"
    "      canon(v[k], out)\n"
    "    end\n"
    "    out[#out + 1] = '}'\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "-- same_text(t1, t2): t1 and t2 encode the same value (equal texts, or equal\n"
    "-- lengths and equal canonical texts)\n"
    "local function same_text(t1, t2, what)\n"
    "  if t1 == t2 then return end\n"
    "  if #t1 ~= #t2 then fail('%s: texts differ in length:\\n%s\\n%s', what, q(t1), q(t2)) end\n"
    "  local c1 = concat(canon(assert(decode(t1)), {}))\n"
    "  local c2 = concat(canon(assert(decode(t2)), {}))\n"
    "  if c1 ~= c2 then fail('%s: texts differ beyond key order:\\n%s\\n%s', what, q(t1), q(t2)) end\n"
    "end\n"
    "-- has_inf(v): a number in v is +-inf (what 1e999 decodes to)\n"
    "local function has_inf(v)\n"
    "  if type(v) == 'number' then return v == huge or v == -huge end\n"
    "  if type(v) == 'table' then\n"
    "    for _, x in next, v do if has_inf(x) then return true end end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "-- ref_encode(v) -> the exact text json_encode must write for v, or nil and\n"
    "-- why when v cannot be encoded. Written from the codec's documented rules,\n"
    "-- independently of json.c: strict UTF-8 (utf8.len), '\"', '\\' and control\n"
    "-- characters escaped, integers in decimal, a float in the shortest %.Ng\n"
    "-- that tonumber reads back (integral ones below 1e15 as digits and '.0'),\n"
    "-- arrays for keys 1..#t or the array mark, objects for string keys in\n"
    "-- next() order (lua_next's), at most 1000 tables deep, no cycles.\n"
    "local ESC = { ['\"'] = '\\\\\"', ['\\\\'] = '\\\\\\\\', ['\\b'] = '\\\\b', ['\\f'] = '\\\\f',\n"
    "  ['\\n'] = '\\\\n', ['\\r'] = '\\\\r', ['\\t'] = '\\\\t' }\n"
    "local function ref_char(c) return ESC[c] or format('\\\\u%04x', c:byte()) end\n"
    "local function ref_string(s)\n"
    "  if not utf8.len(s) then return nil, 'invalid UTF-8' end\n"
    "  return '\"' .. s:gsub('[%z\\1-\\31\"\\\\]', ref_char) .. '\"'\n"
    "end\n"
    "local function ref_number(x)\n"
    "  if mtype(x) == 'integer' then return format('%d', x) end\n"
    "  if x ~= x or x == huge or x == -huge then return nil, 'NaN or inf' end\n"
    "  if x == floor(x) and x > -1e15 and x < 1e15 then\n"
    "    if x == 0 and 1 / x < 0 then return '-0.0' end\n"
    "    return format('%d', math.tointeger(x)) .. '.0'\n"
    "  end\n"
    "  local s\n"
    "  for p = 1, 17 do\n"
    "    s = format('%.' .. p .. 'g', x)\n"
    "    if tonumber(s) == x then break end\n"
    "  end\n"
    "  if not s:find('[.e]') then s = s .. '.0' end\n"
    "  return s\n"
    "end\n"
    "local ref_value\n"
    "local function ref_table(v, depth, onpath)\n"
    "  if onpath[v] then return nil, 'cycle' end\n"
    "  if depth >= 1000 then return nil, 'too deep' end\n"
    "  onpath[v] = true\n"
    "  local out, n = {}, rawlen(v)\n"
    "  if n > 0 or getmetatable(v) == array_mt then\n"
    "    local count = 0\n"
    "    for k in next, v do\n"
    "      if mtype(k) ~= 'integer' or k < 1 or k > n then return nil, 'not an array key' end\n"
    "      count = count + 1\n"
    "    end\n"
    "    if count ~= n then return nil, 'sparse' end\n"
    "    for i = 1, n do\n"
    "      local x, why = ref_value(rawget(v, i), depth + 1, onpath)\n"
    "      if not x then return nil, why end\n"
    "      out[i] = x\n"
    "    end\n"
    "    onpath[v] = nil\n"
    "    return '[' .. concat(out, ',') .. ']'\n"
    "  end\n"
    "  for k, x in next, v do\n"
    "    if type(k) ~= 'string' then return nil, 'not an object key' end\n"
    "    local ks, why = ref_string(k)\n"
    "    if not ks then return nil, why end\n"
    "    local xs\n"
    "    xs, why = ref_value(x, depth + 1, onpath)\n"
    "    if not xs then return nil, why end\n"
    "    out[#out + 1] = ks .. ':' .. xs\n"
    "  end\n"
    "  onpath[v] = nil\n"
    "  return '{' .. concat(out, ',') .. '}'\n"
    "end\n"
    "ref_value = function(v, depth, onpath)\n"
    "  local t = type(v)\n"
    "  if t == 'nil' or v == null then return 'null' end\n"
    "  if t == 'boolean' then return v and 'true' or 'false' end\n"
    "  if t == 'number' then return ref_number(v) end\n"
    "  if t == 'string' then return ref_string(v) end\n"
    "  if t == 'table' then return ref_table(v, depth, onpath) end\n"
    "  return nil, t\n"
    "end\n"
    "local function ref_encode(v) return ref_value(v, 0, {}) end\n"
    "-- the local server's JSON parser (server/lua/stream_local/json.lua): a second,\n"
    "-- independent strict parser, with its nesting limit raised to the codec's\n"
    "local sjson\n"
    "local function server_parse(s)\n"
    "  if not sjson then\n"
    "    sjson = require 'stream_local.json'\n"
    "    sjson.MAX_DEPTH = 1000\n"
    "  end\n"
    "  return sjson.parse(s)\n"
    "end\n"
    "-- like_tree(v, node): v (from decode) holds what the server's tree holds\n"
    "local function like_tree(v, node, path)\n"
    "  local kind = sjson.kind(node)\n"
    "  if kind == 'number' then\n"
    "    deq(v, tonumber(node.text), path)\n"
    "  elseif kind == 'null' then\n"
    "    if v ~= null then fail('%s: null expected, got %s', path, q(v)) end\n"
    "  elseif kind == 'array' then\n"
    "    if type(v) ~= 'table' or getmetatable(v) ~= array_mt then fail('%s: array expected', path) end\n"
    "    local n = 0\n"
    "    for _ in next, v do n = n + 1 end\n"
    "    if n ~= node.n or rawlen(v) ~= n then fail('%s: %d elements, want %d', path, n, node.n) end\n"
    "    for i = 1, n do like_tree(rawget(v, i), node[i], path .. '[' .. i .. ']') end\n"
    "  elseif kind == 'object' then\n"
    "    if type(v) ~= 'table' or getmetatable(v) ~= nil then fail('%s: object expected', path) end\n"
    "    local n = 0\n"
    "    for _, k in ipairs(node.keys) do\n"
    "      n = n + 1\n"
    "      like_tree(rawget(v, k), node.values[k], path .. '[' .. q(k) .. ']')\n"
    "    end\n"
    "    for _ in next, v do n = n - 1 end\n"
    "    if n ~= 0 then fail('%s: number of keys differs', path) end\n"
    "  else\n"
    "    deq(v, node, path)\n"
    "  end\n"
    "end\n";

static lua_State *fuzz_L;
static int fuzz_checker_ref = LUA_NOREF;
static unsigned long fuzz_runs;

static void fuzz_die(const char *what, const char *msg)
{
    fprintf(stderr, "\n==fuzz== %s: %s\n", what, msg ? msg : "(no message)");
    fflush(stderr);
    abort();
}

static int fuzz_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Creates the state, loads stream.core, then the prelude and the checker as
 * one chunk, called with the core; it must return the check function. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *root = getenv("STREAM_ROOT");
    lua_State *L = luaL_newstate();
    (void)argc;
    (void)argv;
    if (L == NULL)
        fuzz_die("init", "luaL_newstate failed");
    if (root == NULL || *root == '\0')
        root = STREAM_ROOT;
    luaL_openlibs(L);

    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/server/lua/?.lua", root, root, root);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);

    luaL_requiref(L, "stream.core", luaopen_stream_core, 0); /* core */

    lua_pushcfunction(L, fuzz_traceback);
    lua_pushstring(L, FUZZ_PRELUDE);
    lua_pushstring(L, fuzz_checker_source());
    lua_concat(L, 2);
    {
        size_t n;
        const char *src = lua_tolstring(L, -1, &n);
        if (luaL_loadbufferx(L, src, n, "=checker", "t") != LUA_OK)
            fuzz_die("checker does not compile", lua_tostring(L, -1));
    }
    lua_remove(L, -2);    /* the source text */
    lua_pushvalue(L, -3); /* core */
    if (lua_pcall(L, 1, 1, -3) != LUA_OK)
        fuzz_die("checker chunk failed", lua_tostring(L, -1));
    if (lua_type(L, -1) != LUA_TFUNCTION)
        fuzz_die("checker chunk", "must return a function");
    fuzz_checker_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    fuzz_L = L;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_L;
    int nargs;
    lua_settop(L, 0);
    lua_pushcfunction(L, fuzz_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz_checker_ref);
    nargs = fuzz_push_input(L, data, size);
    if (lua_pcall(L, nargs, 0, 1) != LUA_OK)
        fuzz_die("property violated", lua_tostring(L, -1));
    lua_settop(L, 0);
    if ((++fuzz_runs & 4095) == 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
    else
        lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}

#endif
