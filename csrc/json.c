/*
 * json.c - the JSON codec of stream.core.
 *
 *   json_encode(value [, root]) -> text        or nil, "root.path: what"
 *   json_decode(text)           -> value       or nil, "invalid JSON at byte N: what"
 *   null                        -> light userdata NULL (equal to cjson.null)
 *   array(t), array_mt          -> mark a table as a JSON array ("stream.array")
 *
 * Exact both ways: integers stay integers (full int64 on Lua 5.3+), floats
 * are written in the shortest of %.15g/%.16g/%.17g that reads back to the
 * same double and keep a ".0" when integral, so math.type survives a round
 * trip. Strings are checked for UTF-8 both ways. Decoded arrays (also empty
 * ones) carry array_mt, so decode -> change -> encode keeps [] as [].
 * Single pass each way, no Lua calls per character; the output and scratch
 * buffer lives in a userdata (one is cached per module), so an error raised
 * by the Lua API (out of memory) never leaks.
 *
 * Caveats (deliberate):
 * - Encoding errors rather than guesses: sparse arrays, tables mixing
 *   integer and string keys, keys that are neither, NaN/inf, functions,
 *   userdata other than null, cycles and nesting deeper than 1000 are
 *   reported as nil, message. A table seen twice, but not on its own path,
 *   is fine (it is written twice).
 * - Metatables are not consulted (no __pairs, __index, __tojson, __name)
 *   except to recognise array_mt; object key order is lua_next's.
 * - No options: no pretty printing, no escaping of "/" or of non-ASCII,
 *   no sorting, no configurable depth, number precision or sparse arrays.
 * - Decoding is strict RFC 8259: no comments, trailing commas, NaN/Infinity,
 *   leading zeros, single quotes, byte order mark or unescaped control
 *   characters; any JSON value is accepted at the top. Numbers beyond the
 *   double range decode to +-inf (as strtod does); "-0" is the integer 0.
 * - Duplicate object keys: the last one wins. \u0000 gives an embedded NUL.
 * - Under Lua 5.1/LuaJIT (no integer subtype) numbers are doubles: integral
 *   values below 2^53 are written without ".0", larger integers lose
 *   precision as they do in Lua itself.
 * - Independent of LC_NUMERIC: the decimal point snprintf writes is
 *   normalised to '.', and strtod is handed the locale's decimal point.
 */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define JSON_MAXDEPTH 1000
#define JSON_MAXDEPTH_TEXT "1000"
#define ARRAY_MT "stream.array"
#define BUFFER_MT "stream.json.buffer"

/* Upvalues of json_encode, json_decode and array. */
#define UV_ARRAY_MT lua_upvalueindex(1)
#define UV_BUFFER lua_upvalueindex(2)

/* Cycles are looked for eagerly on the first levels (a short linear scan);
 * deeper ones are found when the depth limit is reached. */
#define CYCLE_SCAN_DEPTH 128

/* The cached buffer is freed after a call that grew it beyond this. */
#define BUFFER_KEEP (64 * 1024)

/* ------------------------------------------------------------------------ */
/* Growable byte buffer owned by a userdata                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int busy;
    lua_Alloc alloc;
    void *ud;
} jbuf;

static int jbuf_gc(lua_State *L)
{
    jbuf *b = (jbuf *)lua_touserdata(L, 1);
    if (b != NULL && b->p != NULL) {
        b->alloc(b->ud, b->p, b->cap, 0);
        b->p = NULL;
        b->cap = b->len = 0;
    }
    return 0;
}

/* Pushes a new, empty buffer userdata. */
static jbuf *jbuf_new(lua_State *L)
{
    jbuf *b = (jbuf *)stream_newuserdata(L, sizeof(jbuf));
    b->p = NULL;
    b->len = b->cap = 0;
    b->busy = 0;
    b->alloc = lua_getallocf(L, &b->ud);
    luaL_setmetatable(L, BUFFER_MT);
    return b;
}

static void jbuf_grow(lua_State *L, jbuf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 256;
    char *p;
    if (need > ((size_t)-1) / 4 - b->len)
        luaL_error(L, "JSON text too large");
    while (cap - b->len < need)
        cap *= 2;
    p = (char *)b->alloc(b->ud, b->p, b->cap, cap);
    if (p == NULL)
        luaL_error(L, "not enough memory");
    b->p = p;
    b->cap = cap;
}

#define jbuf_need(L, b, n)                                                      \
    do {                                                                       \
        if ((b)->cap - (b)->len < (size_t)(n))                                 \
            jbuf_grow((L), (b), (size_t)(n));                                  \
    } while (0)

static void jbuf_add(lua_State *L, jbuf *b, const char *s, size_t n)
{
    if (n == 0)
        return; /* b->p may still be NULL */
    jbuf_need(L, b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define jbuf_addlit(L, b, s) jbuf_add((L), (b), "" s, sizeof(s) - 1)

static void jbuf_addc(lua_State *L, jbuf *b, char c)
{
    jbuf_need(L, b, 1);
    b->p[b->len++] = c;
}

/*
 * The module's cached buffer, or (if a call is already using it: a __gc
 * metamethod encoding while an encode allocates) a fresh one pushed on the
 * stack, where it stays until the caller returns. A call that ends by an
 * error leaves the cache busy; later calls then simply use fresh buffers.
 */
static jbuf *jbuf_acquire(lua_State *L)
{
    jbuf *b = (jbuf *)lua_touserdata(L, UV_BUFFER);
    if (b->busy)
        b = jbuf_new(L);
    b->busy = 1;
    b->len = 0;
    return b;
}

static void jbuf_release(jbuf *b)
{
    b->busy = 0;
    b->len = 0;
    if (b->cap > BUFFER_KEEP) {
        b->alloc(b->ud, b->p, b->cap, 0);
        b->p = NULL;
        b->cap = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Shared helpers                                                           */
/* ------------------------------------------------------------------------ */

/* Bytes in a JSON string: 0 as they are, 1 '"', '\\' or control character
 * (escaped on encode, special on decode), 2 start of a UTF-8 sequence. */
static const unsigned char char_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
        if (n < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F)
            return 0; /* U+D800..U+DFFF */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (c == 0xF4 && p[1] > 0x8F)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* Writes the decimal digits of v at out (>= 21 bytes), returns the length. */
static size_t fmt_int64(char *out, int64_t v)
{
    char tmp[24];
    size_t n = 0, i;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0);
    i = 0;
    if (v < 0)
        out[i++] = '-';
    while (n > 0)
        out[i++] = tmp[--n];
    return i;
}

/*
 * Writes finite d at out (>= 32 bytes) in the shortest of %.15g, %.16g and
 * %.17g that strtod reads back as d, with '.' as the decimal point whatever
 * the locale, and ".0" appended to an integral value written without an
 * exponent. Returns the length.
 */
static size_t fmt_double(char *out, double d)
{
    char tmp[40];
    size_t i, n = 0;
    int prec, seen_dot = 0, seen_exp = 0;

#if LUA_VERSION_NUM < 503
    if (d == floor(d) && fabs(d) < 9007199254740992.0 && !(d == 0 && signbit(d)))
        return fmt_int64(out, (int64_t)d);
#else
    if (d == floor(d) && fabs(d) < 1e15) {
        if (d == 0 && signbit(d)) {
            memcpy(out, "-0.0", 4);
            return 4;
        }
        n = fmt_int64(out, (int64_t)d);
        out[n++] = '.';
        out[n++] = '0';
        return n;
    }
#endif
    /* For a normal double, a %.15g that reads back is already the shortest
     * form (%g drops trailing zeros). Subnormals carry fewer digits, so
     * there every precision is tried from 1 up. */
    for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) /* same locale both ways */
            break;
    }
    if (prec == 17)
        snprintf(tmp, sizeof tmp, "%.17g", d);
    /* Copy, replacing the locale's decimal point (maybe several bytes). */
    for (i = 0; tmp[i] != '\0';) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+') {
            out[n++] = c;
            i++;
        } else if (c == 'e') {
            out[n++] = c;
            i++;
            seen_exp = 1;
        } else {
            out[n++] = '.';
            seen_dot = 1;
            while (tmp[i] != '\0' && !(tmp[i] >= '0' && tmp[i] <= '9'))
                i++;
        }
    }
    if (!seen_dot && !seen_exp) {
        out[n++] = '.';
        out[n++] = '0';
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Encoder                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct {
    lua_State *L;
    jbuf *b;
    const char *root;
    size_t rootlen;
    int depth; /* tables on the current path */
    int npath; /* path segments from the root to the current value */
    /* Segment i: stack index of a string key, or 0 and an array index. */
    struct {
        int key;
        lua_Integer index;
    } path[JSON_MAXDEPTH + 1];
    const void *tables[JSON_MAXDEPTH + 1];
} encoder;

static int lua_reserved(const char *s, size_t n)
{
    static const char *const words[] = {
        "and", "break", "do", "else", "elseif", "end", "false", "for",
        "function", "goto", "if", "in", "local", "nil", "not", "or",
        "repeat", "return", "then", "true", "until", "while", NULL};
    int i;
    for (i = 0; words[i] != NULL; i++)
        if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0)
            return 1;
    return 0;
}

static int identifier(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return !lua_reserved(s, n);
}

static void enc_put_segment(encoder *e, int i)
{
    lua_State *L = e->L;
    jbuf *b = e->b;
    char num[24];
    if (e->path[i].key == 0) {
        jbuf_addc(L, b, '[');
        jbuf_add(L, b, num, fmt_int64(num, (int64_t)e->path[i].index));
        jbuf_addc(L, b, ']');
    } else {
        size_t n, j, k;
        const char *s = lua_tolstring(L, e->path[i].key, &n);
        if (identifier(s, n)) {
            jbuf_addc(L, b, '.');
            jbuf_add(L, b, s, n);
            return;
        }
        jbuf_addlit(L, b, "[\"");
        for (j = 0; j < n && j < 64; j += k) {
            unsigned char c = (unsigned char)s[j];
            k = utf8_seq((const unsigned char *)s + j, n - j);
            if (c == '"' || c == '\\') {
                jbuf_addc(L, b, '\\');
                jbuf_addc(L, b, (char)c);
            } else if (c == '\n') {
                jbuf_addlit(L, b, "\\n");
            } else if (c == '\t') {
                jbuf_addlit(L, b, "\\t");
            } else if (c < 0x20 || c == 0x7F || k == 0) {
                snprintf(num, sizeof num, "\\%u", c);
                jbuf_add(L, b, num, strlen(num));
                k = 1;
            } else {
                jbuf_add(L, b, s + j, k);
            }
        }
        if (j < n)
            jbuf_addlit(L, b, "...");
        jbuf_addlit(L, b, "\"]");
    }
}

/*
 * Replaces the output with "root.path: msg" and returns -1. With elide, the
 * path is shown as root[...] (for nesting errors, where it is 1000 long);
 * otherwise paths over 16 segments keep their first and last 8.
 */
static int enc_fail_at(encoder *e, int npath, int elide, const char *msg)
{
    lua_State *L = e->L;
    jbuf *b = e->b;
    int i;
    b->len = 0;
    jbuf_add(L, b, e->root, e->rootlen);
    if (elide) {
        jbuf_addlit(L, b, "[...]");
    } else {
        for (i = 0; i < npath; i++) {
            if (npath > 16 && i == 8) {
                jbuf_addlit(L, b, "[...]");
                i = npath - 8;
            }
            enc_put_segment(e, i);
        }
    }
    jbuf_addlit(L, b, ": ");
    jbuf_add(L, b, msg, strlen(msg));
    return -1;
}

static int enc_fail(encoder *e, const char *msg)
{
    return enc_fail_at(e, e->npath, 0, msg);
}

static int enc_string(encoder *e, const char *str, size_t len, int is_key)
{
    static const char hex[] = "0123456789abcdef";
    lua_State *L = e->L;
    jbuf *b = e->b;
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    char *out;

    /* Invariant: room for the rest of the input plus the closing quote. */
    jbuf_need(L, b, len + 2);
    out = b->p + b->len;
    *out++ = '"';
    while (i < len) {
        unsigned char c = s[i];
        if (char_class[c] == 0) {
            *out++ = (char)c;
            i++;
        } else if (char_class[c] == 2) {
            size_t k = utf8_seq(s + i, len - i);
            if (k == 0) {
                char msg[64];
                snprintf(msg, sizeof msg, "invalid UTF-8 in %s at byte %lu",
                         is_key ? "key" : "string", (unsigned long)i + 1);
                return enc_fail(e, msg);
            }
            memcpy(out, s + i, k);
            out += k;
            i += k;
        } else {
            b->len = (size_t)(out - b->p);
            jbuf_need(L, b, (len - i) + 6);
            out = b->p + b->len;
            *out++ = '\\';
            switch (c) {
            case '"': *out++ = '"'; break;
            case '\\': *out++ = '\\'; break;
            case '\b': *out++ = 'b'; break;
            case '\f': *out++ = 'f'; break;
            case '\n': *out++ = 'n'; break;
            case '\r': *out++ = 'r'; break;
            case '\t': *out++ = 't'; break;
            default:
                *out++ = 'u';
                *out++ = '0';
                *out++ = '0';
                *out++ = hex[c >> 4];
                *out++ = hex[c & 15];
            }
            i++;
        }
    }
    *out++ = '"';
    b->len = (size_t)(out - b->p);
    return 0;
}

static int enc_number(encoder *e)
{
    lua_State *L = e->L;
    jbuf *b = e->b;
    lua_Number d;
    jbuf_need(L, b, 32);
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, -1)) {
        b->len += fmt_int64(b->p + b->len, (int64_t)lua_tointeger(L, -1));
        return 0;
    }
#endif
    d = lua_tonumber(L, -1);
    if (d != d)
        return enc_fail(e, "NaN cannot be encoded");
    if (d == (lua_Number)HUGE_VAL)
        return enc_fail(e, "inf cannot be encoded");
    if (d == -(lua_Number)HUGE_VAL)
        return enc_fail(e, "-inf cannot be encoded");
    b->len += fmt_double(b->p + b->len, (double)d);
    return 0;
}

/* Is the number at idx an integer (on 5.1: an integral double)? */
static int int_key(lua_State *L, int idx, lua_Integer *out)
{
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        *out = lua_tointeger(L, idx);
        return 1;
    }
    return 0;
#else
    lua_Number d = lua_tonumber(L, idx);
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == floor(d)) {
        *out = (lua_Integer)d;
        return 1;
    }
    return 0;
#endif
}

/*
 * Checks that the keys of the table at t are exactly 1..n (empty is fine
 * here: the caller decides). On failure writes the error and returns -1.
 */
static int enc_check_keys(encoder *e, int t, size_t n)
{
    lua_State *L = e->L;
    size_t inrange = 0, ints = 0;
    int has_str = 0, has_low = 0;
    lua_Integer low = 0, k, i;
    char msg[64];
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int kt = lua_type(L, -2);
        lua_pop(L, 1);
        if (kt == LUA_TSTRING) {
            has_str = 1;
        } else if (kt == LUA_TNUMBER && int_key(L, -1, &k)) {
            ints++;
            if (k >= 1 && (size_t)k <= n)
                inrange++;
            else if (k < 1 && (!has_low || k > low)) {
                has_low = 1;
                low = k;
            }
        } else {
            snprintf(msg, sizeof msg, "%s key cannot be encoded",
                     kt == LUA_TNUMBER ? "non-integer number" : lua_typename(L, kt));
            return enc_fail(e, msg);
        }
    }
    /* Strings with integers, or in a table marked as an array. */
    if (has_str)
        return enc_fail(e, "mixed array and object keys");
    if (has_low) {
        snprintf(msg, sizeof msg, "array index %lld out of range", (long long)low);
        return enc_fail(e, msg);
    }
    if (ints == inrange && inrange == n)
        return 0;
    /* A key above n or a nil below it: name the first missing index (the
     * search stops at n + 1 at the latest, n being a border). */
    for (i = 1;; i++) {
        int nil;
        lua_rawgeti(L, t, i);
        nil = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (nil)
            break;
    }
    snprintf(msg, sizeof msg, "sparse array (missing index %lld)", (long long)i);
    return enc_fail(e, msg);
}

static int enc_value(encoder *e);

static int enc_too_deep(encoder *e, const void *ptr)
{
    /* A cycle that closes deeper than the eager scan looks? */
    int i, j;
    e->tables[e->depth] = ptr;
    for (j = 1; j <= e->depth; j++)
        for (i = 0; i < j; i++)
            if (e->tables[i] == e->tables[j])
                return enc_fail_at(e, j, 0, "cycle");
    return enc_fail_at(e, e->npath, 1, "nesting deeper than " JSON_MAXDEPTH_TEXT);
}

static int enc_table(encoder *e)
{
    lua_State *L = e->L;
    jbuf *b = e->b;
    int t = lua_gettop(L), marked = 0, i;
    const void *ptr = lua_topointer(L, t);
    size_t n;

    if (e->depth < CYCLE_SCAN_DEPTH) {
        for (i = 0; i < e->depth; i++)
            if (e->tables[i] == ptr)
                return enc_fail(e, "cycle");
    }
    if (e->depth >= JSON_MAXDEPTH)
        return enc_too_deep(e, ptr);
    luaL_checkstack(L, 4, "JSON nesting");
    e->tables[e->depth++] = ptr;

    if (lua_getmetatable(L, t)) {
        marked = lua_rawequal(L, -1, UV_ARRAY_MT);
        lua_pop(L, 1);
    }
    n = lua_rawlen(L, t);
    if (n > 0 || marked) {
        lua_Integer k;
        if (enc_check_keys(e, t, n))
            return -1;
        jbuf_addc(L, b, '[');
        for (k = 1; (size_t)k <= n; k++) {
            if (k > 1)
                jbuf_addc(L, b, ',');
            lua_rawgeti(L, t, k);
            e->path[e->npath].key = 0;
            e->path[e->npath].index = k;
            e->npath++;
            if (enc_value(e))
                return -1;
            e->npath--;
            lua_pop(L, 1);
        }
        jbuf_addc(L, b, ']');
    } else {
        int first = 1;
        jbuf_addc(L, b, '{');
        lua_pushnil(L);
        while (lua_next(L, t)) {
            size_t klen;
            const char *key;
            if (lua_type(L, -2) != LUA_TSTRING) {
                lua_settop(L, t);
                if (enc_check_keys(e, t, 0) == 0) /* cannot happen */
                    enc_fail(e, "mixed array and object keys");
                return -1;
            }
            key = lua_tolstring(L, -2, &klen);
            if (!first)
                jbuf_addc(L, b, ',');
            first = 0;
            if (enc_string(e, key, klen, 1))
                return -1;
            jbuf_addc(L, b, ':');
            e->path[e->npath].key = lua_gettop(L) - 1;
            e->npath++;
            if (enc_value(e))
                return -1;
            e->npath--;
            lua_pop(L, 1);
        }
        jbuf_addc(L, b, '}');
    }
    e->depth--;
    return 0;
}

/* Appends the value on top of the stack (left there). 0, or -1 on error. */
static int enc_value(encoder *e)
{
    lua_State *L = e->L;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        return enc_string(e, s, len, 0);
    }
    case LUA_TNUMBER:
        return enc_number(e);
    case LUA_TTABLE:
        return enc_table(e);
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, -1))
            jbuf_addlit(L, e->b, "true");
        else
            jbuf_addlit(L, e->b, "false");
        return 0;
    case LUA_TNIL:
        jbuf_addlit(L, e->b, "null");
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, -1) == NULL) {
            jbuf_addlit(L, e->b, "null");
            return 0;
        }
        break;
    default:
        break;
    }
    {
        char msg[64];
        snprintf(msg, sizeof msg, "%s cannot be encoded", luaL_typename(L, -1));
        return enc_fail(e, msg);
    }
}

static int json_encode(lua_State *L)
{
    encoder e;
    int base;
    if (lua_isnoneornil(L, 2)) {
        e.root = "value";
        e.rootlen = 5;
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        e.root = lua_tolstring(L, 2, &e.rootlen);
    } else {
        return luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s",
                                                   luaL_typename(L, 2)));
    }
    lua_settop(L, 2);
    e.L = L;
    e.b = jbuf_acquire(L);
    e.depth = 0;
    e.npath = 0;
    base = lua_gettop(L);
    lua_pushvalue(L, 1);
    if (enc_value(&e)) {
        lua_settop(L, base);
        lua_pushnil(L);
        lua_pushlstring(L, e.b->p, e.b->len);
        jbuf_release(e.b);
        return 2;
    }
    lua_pushlstring(L, e.b->p, e.b->len);
    jbuf_release(e.b);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Decoder                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * The text is a Lua string, so text[len] == '\0': that sentinel ends every
 * scan without a bounds check (a NUL inside the text is rejected where it
 * stands, one at the end is reported as the end of input).
 */
typedef struct {
    lua_State *L;
    const char *s, *p, *end;
    jbuf *b;
    int depth;
    const char *err, *errat;
} decoder;

/* Records an error at `at` (at the end of the text: the end of input). */
static int dec_fail(decoder *d, const char *at, const char *msg)
{
    d->errat = at;
    d->err = at >= d->end ? "unexpected end of input" : msg;
    return -1;
}

static int dec_unterminated(decoder *d)
{
    d->errat = d->end;
    d->err = "unterminated string";
    return -1;
}

#define dec_skip_ws(p)                                                          \
    while (*(p) == ' ' || *(p) == '\n' || *(p) == '\r' || *(p) == '\t')        \
        (p)++

/* Skips plain bytes and valid UTF-8 from p; stops at anything else. */
static const unsigned char *dec_scan(const unsigned char *p, const unsigned char *end)
{
    for (;;) {
        unsigned char c = *p;
        if (char_class[c] == 0) {
            p++;
        } else if (char_class[c] == 2) {
            size_t k = utf8_seq(p, (size_t)(end - p));
            if (k == 0)
                return p;
            p += k;
        } else {
            return p;
        }
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads 4 hex digits at p (stopping at the sentinel), -1 if invalid. */
static long hex4(const unsigned char *p)
{
    long v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | h;
    }
    return v;
}

static size_t utf8_put(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At p: the character that ended a scan inside a string. */
static int dec_string_fail(decoder *d, const unsigned char *p)
{
    const char *at = (const char *)p;
    if (at >= d->end)
        return dec_unterminated(d);
    if (*p >= 0x80)
        return dec_fail(d, at, "invalid UTF-8 in string");
    return dec_fail(d, at, "control character in string");
}

/* d->p at the opening quote; pushes the string. */
static int dec_string(decoder *d)
{
    lua_State *L = d->L;
    const unsigned char *end = (const unsigned char *)d->end;
    const unsigned char *start = (const unsigned char *)d->p + 1;
    const unsigned char *p = dec_scan(start, end);
    jbuf *b = d->b;

    if (*p == '"') {
        lua_pushlstring(L, (const char *)start, (size_t)(p - start));
        d->p = (const char *)p + 1;
        return 0;
    }
    if (*p != '\\')
        return dec_string_fail(d, p);

    /* Escapes: build the string in the scratch buffer. */
    b->len = 0;
    jbuf_add(L, b, (const char *)start, (size_t)(p - start));
    for (;;) {
        const unsigned char *run;
        if (*p == '"')
            break;
        if (*p != '\\')
            return dec_string_fail(d, p);
        jbuf_need(L, b, 4);
        switch (p[1]) {
        case '"': b->p[b->len++] = '"'; p += 2; break;
        case '\\': b->p[b->len++] = '\\'; p += 2; break;
        case '/': b->p[b->len++] = '/'; p += 2; break;
        case 'b': b->p[b->len++] = '\b'; p += 2; break;
        case 'f': b->p[b->len++] = '\f'; p += 2; break;
        case 'n': b->p[b->len++] = '\n'; p += 2; break;
        case 'r': b->p[b->len++] = '\r'; p += 2; break;
        case 't': b->p[b->len++] = '\t'; p += 2; break;
        case 'u': {
            long cp = hex4(p + 2), lo;
            if (cp < 0)
                return dec_fail(d, (const char *)p, "invalid \\u escape");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return dec_fail(d, (const char *)p, "lone surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p[6] != '\\' || p[7] != 'u' || (lo = hex4(p + 8)) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return dec_fail(d, (const char *)p, "lone surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            b->len += utf8_put(b->p + b->len, (unsigned long)cp);
            p += 6;
            break;
        }
        default:
            if ((const char *)p + 1 >= d->end)
                return dec_unterminated(d);
            return dec_fail(d, (const char *)p, "invalid escape");
        }
        run = p;
        p = dec_scan(p, end);
        jbuf_add(L, b, (const char *)run, (size_t)(p - run));
    }
    lua_pushlstring(L, b->p, b->len);
    d->p = (const char *)p + 1;
    return 0;
}

/* Correctly rounded conversion of a validated number token by strtod,
 * given the locale's decimal point instead of '.'. */
static double dec_strtod(decoder *d, const char *s, size_t n)
{
    char local[64], *buf;
    const char *dp = localeconv()->decimal_point;
    size_t dplen = strlen(dp), i, o = 0;
    if (dplen == 0) {
        dp = ".";
        dplen = 1;
    }
    if (n + dplen + 1 <= sizeof local) {
        buf = local;
    } else {
        d->b->len = 0;
        jbuf_need(d->L, d->b, n + dplen + 1);
        buf = d->b->p;
    }
    for (i = 0; i < n; i++) {
        if (s[i] == '.') {
            memcpy(buf + o, dp, dplen);
            o += dplen;
        } else {
            buf[o++] = s[i];
        }
    }
    buf[o] = '\0';
    return strtod(buf, NULL);
}

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define DEC_FAST_FLOAT 1
static const double pow10_tab[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#else
#define DEC_FAST_FLOAT 0
#endif

static int dec_number(decoder *d)
{
    lua_State *L = d->L;
    const char *start = d->p, *p = d->p;
    int neg = 0, isfloat = 0, truncated = 0, ndig = 0;
    uint64_t m = 0;
    long exp10 = 0, e = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p == '0') {
        p++;
        if (*p >= '0' && *p <= '9')
            return dec_fail(d, p - 1, "leading zero in number");
    } else if (*p >= '1' && *p <= '9') {
        for (; *p >= '0' && *p <= '9'; p++) {
            if (ndig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                ndig++;
            } else {
                exp10++;
                truncated = 1;
            }
        }
    } else {
        return dec_fail(d, p, "expected digit");
    }
    if (*p == '.') {
        isfloat = 1;
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return dec_fail(d, p, "expected digit after '.'");
        for (; *p >= '0' && *p <= '9'; p++) {
            if (m == 0 && *p == '0') {
                exp10--;
            } else if (ndig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                ndig++;
                exp10--;
            } else {
                truncated = 1;
            }
        }
    }
    if (*p == 'e' || *p == 'E') {
        int eneg = 0;
        isfloat = 1;
        p++;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        if (!(*p >= '0' && *p <= '9'))
            return dec_fail(d, p, "expected digit in exponent");
        for (; *p >= '0' && *p <= '9'; p++)
            if (e < 100000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    d->p = p;

    if (!isfloat && !truncated) {
        /* 19 digits at most: m < 10^19 < 2^64, no overflow. */
        if (!neg && m <= (uint64_t)INT64_MAX) {
#if LUA_VERSION_NUM >= 503
            lua_pushinteger(L, (lua_Integer)m);
#else
            lua_pushnumber(L, (lua_Number)(int64_t)m);
#endif
            return 0;
        }
        if (neg && m <= (uint64_t)INT64_MAX + 1) {
            int64_t v = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
#if LUA_VERSION_NUM >= 503
            lua_pushinteger(L, (lua_Integer)v);
#else
            lua_pushnumber(L, (lua_Number)v);
#endif
            return 0;
        }
    }
#if DEC_FAST_FLOAT
    if (!truncated && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / pow10_tab[-exp10] : v * pow10_tab[exp10];
        lua_pushnumber(L, (lua_Number)(neg ? -v : v));
        return 0;
    }
#endif
    lua_pushnumber(L, (lua_Number)dec_strtod(d, start, (size_t)(p - start)));
    return 0;
}

static int dec_value(decoder *d);

/* Up to this many items (array values, object pairs) are kept on the stack
 * and the table is made at their exact size, so it is never resized while
 * it fills (luaH_resize was a tenth of a small answer's decode); a longer
 * one is made at this size and grows from there. Only this deep: every
 * level keeps its items on the stack (LuaJIT's stack is ~65,000 slots). */
#define DEC_BATCH 32
#define DEC_BATCH_DEPTH 64

static int dec_array(decoder *d)
{
    lua_State *L = d->L;
    lua_Integer i;
    int base, n = 0, made = 0, batch;
    if (++d->depth > JSON_MAXDEPTH)
        return dec_fail(d, d->p, "nesting deeper than " JSON_MAXDEPTH_TEXT);
    batch = d->depth <= DEC_BATCH_DEPTH ? DEC_BATCH : 0;
    luaL_checkstack(L, 4 + batch, "JSON nesting");
    base = lua_gettop(L);
    d->p++;
    dec_skip_ws(d->p);
    if (*d->p == ']') {
        d->p++;
    } else {
        for (i = 1;; i++) {
            if (!made && n == batch) {
                /* the table, under the n values kept so far */
                lua_createtable(L, n > 0 ? n : 4, 0);
                lua_insert(L, base + 1);
                for (; n > 0; n--)
                    lua_rawseti(L, base + 1, n);
                made = 1;
            }
            if (dec_value(d))
                return -1;
            if (made)
                lua_rawseti(L, base + 1, i);
            else
                n++;
            dec_skip_ws(d->p);
            if (*d->p == ',') {
                d->p++;
            } else if (*d->p == ']') {
                d->p++;
                break;
            } else {
                return dec_fail(d, d->p, "expected ',' or ']'");
            }
        }
    }
    if (!made) {
        lua_createtable(L, n, 0);
        lua_insert(L, base + 1);
        for (; n > 0; n--)
            lua_rawseti(L, base + 1, n);
    }
    lua_pushvalue(L, UV_ARRAY_MT);
    lua_setmetatable(L, -2);
    d->depth--;
    return 0;
}

/* The table of the n pairs above base, made at their size and put at
 * base + 1; the pairs are set in order, so a repeated key's last value wins. */
static void dec_object_make(lua_State *L, int base, int n)
{
    int i;
    lua_createtable(L, 0, n);
    for (i = 0; i < n; i++) {
        lua_pushvalue(L, base + 1 + 2 * i);
        lua_pushvalue(L, base + 2 + 2 * i);
        lua_rawset(L, -3);
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
}

static int dec_object(decoder *d)
{
    lua_State *L = d->L;
    int base, n = 0, made = 0, batch;
    if (++d->depth > JSON_MAXDEPTH)
        return dec_fail(d, d->p, "nesting deeper than " JSON_MAXDEPTH_TEXT);
    batch = d->depth <= DEC_BATCH_DEPTH ? DEC_BATCH : 0;
    luaL_checkstack(L, 6 + 2 * batch, "JSON nesting");
    base = lua_gettop(L);
    d->p++;
    dec_skip_ws(d->p);
    if (*d->p == '}') {
        d->p++;
        lua_createtable(L, 0, 0);
        d->depth--;
        return 0;
    }
    if (batch == 0) {
        lua_createtable(L, 0, 0);
        made = 1;
    }
    for (;;) {
        if (*d->p != '"')
            return dec_fail(d, d->p, "expected string key");
        if (dec_string(d))
            return -1;
        dec_skip_ws(d->p);
        if (*d->p != ':')
            return dec_fail(d, d->p, "expected ':'");
        d->p++;
        if (dec_value(d))
            return -1;
        if (made) {
            lua_rawset(L, base + 1);
        } else if (++n == batch) {
            dec_object_make(L, base, n);
            made = 1;
        }
        dec_skip_ws(d->p);
        if (*d->p == ',') {
            d->p++;
            dec_skip_ws(d->p);
        } else if (*d->p == '}') {
            d->p++;
            break;
        } else {
            return dec_fail(d, d->p, "expected ',' or '}'");
        }
    }
    if (!made)
        dec_object_make(L, base, n);
    d->depth--;
    return 0;
}

static int dec_literal(decoder *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return dec_fail(d, d->p, "invalid literal");
    d->p += n;
    return 0;
}

/* Skips whitespace, then pushes the value at d->p. */
static int dec_value(decoder *d)
{
    lua_State *L = d->L;
    dec_skip_ws(d->p);
    switch (*d->p) {
    case '{':
        return dec_object(d);
    case '[':
        return dec_array(d);
    case '"':
        return dec_string(d);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return dec_number(d);
    case 't':
        if (dec_literal(d, "true", 4))
            return -1;
        lua_pushboolean(L, 1);
        return 0;
    case 'f':
        if (dec_literal(d, "false", 5))
            return -1;
        lua_pushboolean(L, 0);
        return 0;
    case 'n':
        if (dec_literal(d, "null", 4))
            return -1;
        lua_pushlightuserdata(L, NULL);
        return 0;
    default:
        return dec_fail(d, d->p, "expected value");
    }
}

static int json_decode(lua_State *L)
{
    decoder d;
    size_t len;
    int base;
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_argerror(L, 1, lua_pushfstring(L, "string expected, got %s",
                                                   luaL_typename(L, 1)));
    lua_settop(L, 1);
    d.L = L;
    d.s = d.p = lua_tolstring(L, 1, &len);
    d.end = d.s + len;
    d.b = jbuf_acquire(L);
    d.depth = 0;
    d.err = d.errat = NULL;
    base = lua_gettop(L);
    if (dec_value(&d) == 0) {
        dec_skip_ws(d.p);
        if (d.p == d.end) {
            jbuf_release(d.b);
            return 1;
        }
        dec_fail(&d, d.p, "unexpected data after the JSON value");
    }
    lua_settop(L, base);
    jbuf_release(d.b);
    {
        char at[32];
        snprintf(at, sizeof at, "%lu", (unsigned long)(d.errat - d.s) + 1);
        lua_pushnil(L);
        lua_pushfstring(L, "invalid JSON at byte %s: %s", at, d.err);
    }
    return 2;
}

/* ------------------------------------------------------------------------ */
/* array, null, registration                                                */
/* ------------------------------------------------------------------------ */

static int json_array(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getmetatable(L, 1)) {
        if (!lua_rawequal(L, -1, UV_ARRAY_MT))
            return luaL_argerror(L, 1, "table already has a metatable");
    } else {
        lua_pushvalue(L, UV_ARRAY_MT);
        lua_setmetatable(L, 1);
    }
    lua_settop(L, 1);
    return 1;
}

void stream_json_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"json_encode", json_encode},
        {"json_decode", json_decode},
        {"array", json_array},
        {NULL, NULL}};
    luaL_checkstack(L, 4, NULL);
    if (luaL_newmetatable(L, BUFFER_MT)) {
        lua_pushcfunction(L, jbuf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newmetatable(L, ARRAY_MT); /* module, mt */
    lua_pushliteral(L, ARRAY_MT);
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "array_mt");
    jbuf_new(L); /* module, mt, buffer */
    luaL_setfuncs(L, funcs, 2);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
}
