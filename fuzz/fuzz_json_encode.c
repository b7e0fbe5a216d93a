/*
 * fuzz_json_encode.c - json_encode on Lua values built from a recipe.
 *
 * The input bytes are a program that builds one Lua value (see build()):
 * nil, booleans, integers (raw 8 bytes, small, or extremes such as
 * math.mininteger), doubles (raw 8 bytes, so NaN, +-inf, subnormals and -0.0
 * all appear, or picked from a list of edge values), strings of arbitrary
 * bytes (raw, or picked from a list of UTF-8 edge cases), stream.null,
 * arrays (marked with stream.array or not), objects, tables with integer,
 * float, boolean or mixed keys, sparse arrays, cycles back to an ancestor,
 * the same table reused in two places, chains nested up to 1100 deep,
 * functions, userdata, coroutines and non-NULL light userdata. The first
 * byte may also choose a root name for the error messages.
 *
 * Properties:
 *   - encode(v [, root]) never crashes;
 *   - it succeeds exactly when the independent Lua encoder of
 *     fuzz_common.h (ref_encode) does, and then writes exactly its text;
 *   - if it fails, the message starts with the root name ("value" by
 *     default) followed by the path and ": ";
 *   - if it succeeds with text t: decode(t) succeeds, the value is like v
 *     (same numbers with the same math.type, strings, booleans, null for
 *     nil and stream.null, arrays as arrays), and encode(decode(t)) equals t
 *     up to the order of object keys.
 *
 * It does not test what a failing encode leaves behind beyond the next
 * inputs running on the same state (the cached buffer must be usable).
 */
#include <float.h>
#include <math.h>

#include "fuzz_common.h"

#define MAX_DEPTH 1100
#define MAX_NODES 4000
#define MAX_REUSES 6

typedef struct {
    const uint8_t *p, *end;
    int anc[MAX_DEPTH + 8]; /* stack indices of the tables being built */
    int nanc;
    int pool;  /* stack index of a table of finished tables */
    int npool;
    int reuses; /* bounded: each reuse can double the encoded size */
    int nodes;
} recipe;

static unsigned byte(recipe *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static uint64_t bytes8(recipe *r)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++)
        v = (v << 8) | byte(r);
    return v;
}

static const lua_Integer INTS[] = {
    0, 1, -1, 2, 127, 128, 255, 256, 65535, 65536, 2147483647, -2147483647 - 1,
    4294967295LL, 4294967296LL, 9007199254740991LL, 9007199254740992LL,
    9007199254740993LL, -9007199254740993LL, 999999999999999999LL,
    1000000000000000000LL, 9223372036854775806LL, LUA_MAXINTEGER, LUA_MININTEGER,
    LUA_MININTEGER + 1, -10, 10, 100000, -100000};

static double special_double(unsigned k)
{
    switch (k % 24) {
    case 0: return 0.0;
    case 1: return -0.0;
    case 2: return HUGE_VAL;
    case 3: return -HUGE_VAL;
    case 4: return NAN;
    case 5: return DBL_MIN;
    case 6: return DBL_TRUE_MIN;
    case 7: return -DBL_TRUE_MIN;
    case 8: return DBL_MAX;
    case 9: return -DBL_MAX;
    case 10: return 0.1;
    case 11: return 1.0 / 3.0;
    case 12: return 1e300;
    case 13: return 1e-300;
    case 14: return 9223372036854775808.0; /* 2^63 */
    case 15: return -9223372036854775808.0;
    case 16: return 9007199254740993.0;
    case 17: return 1.0;
    case 18: return -1.5;
    case 19: return 123456789012345678.0;
    case 20: return 5e-324;
    case 21: return 2.2250738585072009e-308; /* largest subnormal */
    case 22: return 1e21;
    default: return 0.30000000000000004;
    }
}

static const char *const STRINGS[] = {
    "", "a", "\"", "\\", "/", "\b\f\n\r\t", "\x01\x1f\x7f", "\xc3\xa9",
    "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
    "\xf4\x90\x80\x80",     /* above U+10FFFF */
    "\xed\xa0\x80",         /* UTF-16 surrogate */
    "\xed\x9f\xbf",         /* U+D7FF */
    "\xee\x80\x80",         /* U+E000 */
    "\xc0\xaf",             /* overlong '/' */
    "\xe0\x80\xaf",         /* overlong */
    "\xf0\x80\x80\xaf",     /* overlong */
    "\xc2",                 /* truncated */
    "\xe2\x82",             /* truncated */
    "\x80",                 /* lone continuation */
    "\xff", "\xfe\xff",
    "\xe2\x80\xa8\xe2\x80\xa9", /* U+2028 U+2029 */
    "\xef\xbb\xbf",         /* BOM */
    "id", "data", "1", "-0", "null", "true", "\\u0000",
};

static void build(lua_State *L, recipe *r, int depth);

static void push_string(lua_State *L, recipe *r)
{
    unsigned op = byte(r);
    if (op & 1) {
        lua_pushstring(L, STRINGS[(op >> 1) % (sizeof STRINGS / sizeof STRINGS[0])]);
    } else if (op & 2) {
        /* a NUL-containing string */
        char buf[3] = {'a', '\0', 'b'};
        lua_pushlstring(L, buf, (op >> 2) % 4);
    } else {
        size_t n = (op >> 2) % 64, avail = (size_t)(r->end - r->p);
        if (n > avail)
            n = avail;
        lua_pushlstring(L, (const char *)r->p, n);
        r->p += n;
    }
}

static void remember(lua_State *L, recipe *r)
{
    /* value on top: keep a reference for "reuse" (bounded) */
    if (r->npool < 64) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, r->pool, ++r->npool);
    }
}

static void push_table(lua_State *L, recipe *r, int depth, int kind)
{
    unsigned n = byte(r) % 9, i;
    int t;
    lua_newtable(L);
    t = lua_gettop(L);
    r->anc[r->nanc++] = t;
    switch (kind) {
    case 0: /* array, maybe marked */
    case 1:
        for (i = 1; i <= n; i++) {
            build(L, r, depth + 1);
            lua_rawseti(L, t, (lua_Integer)i);
        }
        if (kind == 1) {
            luaL_getmetatable(L, "stream.array");
            lua_setmetatable(L, t);
        }
        break;
    case 2: /* object */
        for (i = 0; i < n; i++) {
            push_string(L, r);
            build(L, r, depth + 1);
            lua_rawset(L, t);
        }
        break;
    default: { /* keys of any kind: sparse, mixed, float, boolean, 0, negative */
        for (i = 0; i < n; i++) {
            unsigned k = byte(r);
            switch (k % 6) {
            case 0: lua_pushinteger(L, (lua_Integer)(k >> 3) - 4); break;
            case 1: lua_pushinteger(L, (lua_Integer)(i + 1)); break;
            case 2: lua_pushnumber(L, (lua_Number)(k >> 3) + 0.5); break;
            case 3: lua_pushboolean(L, k & 8); break;
            case 4: lua_pushinteger(L, (lua_Integer)bytes8(r)); break;
            default: push_string(L, r); break;
            }
            build(L, r, depth + 1);
            if (lua_isnil(L, -2) || lua_isnil(L, -1)) {
                lua_pop(L, 2);
                continue;
            }
            lua_rawset(L, t);
        }
        if (byte(r) & 1) {
            luaL_getmetatable(L, "stream.array");
            lua_setmetatable(L, t);
        }
        break;
    }
    }
    r->nanc--;
    remember(L, r);
}

static int dummy_fn(lua_State *L)
{
    (void)L;
    return 0;
}

static void build(lua_State *L, recipe *r, int depth)
{
    unsigned op;
    luaL_checkstack(L, 8, "fuzz recipe");
    if (depth >= MAX_DEPTH || ++r->nodes > MAX_NODES || r->p >= r->end) {
        lua_pushinteger(L, depth);
        return;
    }
    op = byte(r);
    switch (op % 24) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, 0); break;
    case 2: lua_pushboolean(L, 1); break;
    case 3: lua_pushinteger(L, (lua_Integer)bytes8(r)); break;
    case 4: lua_pushinteger(L, INTS[byte(r) % (sizeof INTS / sizeof INTS[0])]); break;
    case 5: lua_pushinteger(L, (lua_Integer)(signed char)byte(r)); break;
    case 6: {
        uint64_t u = bytes8(r);
        double d;
        memcpy(&d, &u, sizeof d);
        lua_pushnumber(L, d);
        break;
    }
    case 7: lua_pushnumber(L, special_double(byte(r))); break;
    case 8: lua_pushnumber(L, (double)(signed char)byte(r) / 4.0); break;
    case 9:
    case 10: push_string(L, r); break;
    case 11: lua_pushlightuserdata(L, NULL); break; /* stream.null */
    case 12: push_table(L, r, depth, 0); break;
    case 13: push_table(L, r, depth, 1); break;
    case 14:
    case 15: push_table(L, r, depth, 2); break;
    case 16: push_table(L, r, depth, 3); break;
    case 17: /* marked empty array */
        lua_newtable(L);
        luaL_getmetatable(L, "stream.array");
        lua_setmetatable(L, -2);
        break;
    case 18: /* a cycle back to an ancestor (or a fresh table at the root) */
        if (r->nanc > 0)
            lua_pushvalue(L, r->anc[byte(r) % (unsigned)r->nanc]);
        else
            lua_newtable(L);
        break;
    case 19: /* a finished table again */
        if (r->npool > 0 && r->reuses++ < MAX_REUSES)
            lua_rawgeti(L, r->pool, (lua_Integer)(byte(r) % (unsigned)r->npool) + 1);
        else
            lua_newtable(L);
        break;
    case 20: { /* a deep chain of one-element arrays or objects */
        unsigned hi = byte(r), lo = byte(r), obj = byte(r) & 1, i;
        /* mostly shallow; 1 in 8 up to 1099 deep (slow under ASan: ~4 ms) */
        unsigned d = (hi & 7) == 0 ? ((hi << 8) | lo) % 1100 : lo % 64;
        if (d + (unsigned)depth > MAX_DEPTH)
            d = MAX_DEPTH - (unsigned)depth;
        luaL_checkstack(L, (int)d + 8, "fuzz chain");
        for (i = 0; i < d; i++)
            lua_newtable(L);
        build(L, r, MAX_DEPTH); /* leaf: the depth cap makes it an integer */
        for (i = d; i > 0; i--) {
            if (obj)
                lua_setfield(L, -2, "k");
            else
                lua_rawseti(L, -2, 1);
        }
        break;
    }
    case 21: lua_pushcfunction(L, dummy_fn); break;
    case 22:
        if (op & 0x80)
            lua_newuserdatauv(L, 1, 0);
        else
            lua_pushlightuserdata(L, (void *)r);
        break;
    default: /* a coroutine or a number in the integer-float borderlands */
        if (op & 0x80)
            lua_newthread(L);
        else
            lua_pushnumber(L, (double)INTS[byte(r) % (sizeof INTS / sizeof INTS[0])]);
        break;
    }
}

static const char *fuzz_checker_source(void)
{
    return
        "-- like(v, y): y is what decode gives for a value v that encoded fine\n"
        "local function like(v, y, path)\n"
        "  if v == nil or v == null then\n"
        "    if y ~= null then fail('%s: null expected, got %s', path, q(y)) end\n"
        "  elseif type(v) == 'table' then\n"
        "    if type(y) ~= 'table' then fail('%s: table expected', path) end\n"
        "    local isarr = getmetatable(v) == array_mt or rawlen(v) > 0\n"
        "    if isarr ~= (getmetatable(y) == array_mt) then fail('%s: array mark', path) end\n"
        "    local n = 0\n"
        "    for k, x in next, v do n = n + 1; like(x, rawget(y, k), path .. '.' .. tostring(k)) end\n"
        "    for _ in next, y do n = n - 1 end\n"
        "    if n ~= 0 then fail('%s: number of entries differs', path) end\n"
        "  else\n"
        "    deq(v, y, path)\n"
        "  end\n"
        "end\n"
        "return function(v, root)\n"
        "  local want, why = ref_encode(v)\n"
        "  local t, err = encode(v, root)\n"
        "  if t == nil then\n"
        "    local r = root or 'value'\n"
        "    if type(err) ~= 'string' then fail('encode failed without a message') end\n"
        "    if err:sub(1, #r) ~= r or not err:find(': ', #r + 1, true) then\n"
        "      fail('encode message %s does not start with root %s', q(err), q(r)) end\n"
        "    if want ~= nil then fail('encode failed (%s); the reference writes %s', q(err), q(want)) end\n"
        "    return\n"
        "  end\n"
        "  if err ~= nil then fail('encode returned text and %s', q(err)) end\n"
        "  if want == nil then fail('encode wrote %s; the reference refuses (%s)', q(t), why) end\n"
        "  if t ~= want then fail('encode wrote\\n%s\\nthe reference\\n%s', q(t), q(want)) end\n"
        "  local y, derr = decode(t)\n"
        "  if y == nil then fail('decode of %s failed: %s', q(t), q(derr)) end\n"
        "  like(v, y, 'value')\n"
        "  local t2, eerr = encode(y)\n"
        "  if t2 == nil then fail('re-encode failed: %s', q(eerr)) end\n"
        "  same_text(t, t2, 'encode(decode(encode(v)))')\n"
        "end\n";
}

/* Pushes the value a recipe builds and, when the first byte says so, a
 * root name. */
static int fuzz_push_input(lua_State *L, const uint8_t *data, size_t size)
{
    recipe r;
    unsigned first;
    int nargs = 1;

    memset(&r, 0, sizeof r);
    r.p = data;
    r.end = data + size;
    lua_newtable(L); /* pool of finished tables */
    r.pool = lua_gettop(L);
    first = byte(&r);
    build(L, &r, 0); /* the value */
    if (first & 1) { /* a root name */
        push_string(L, &r);
        nargs = 2;
    }
    lua_remove(L, r.pool);
    return nargs;
}
