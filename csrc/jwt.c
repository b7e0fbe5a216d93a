/*
 * jwt.c - HS256 JSON Web Tokens and base64url for stream.core.
 *
 *   hs256(secret, payload_json)  -> compact JWT "header.payload.signature"
 *   b64url_encode(s)             -> base64url text, no padding
 *   b64url_decode(s)             -> bytes, or nil, message
 *
 * The HMAC-SHA256 itself is OpenSSL's libcrypto; this file only frames it.
 * It does not build or check claims (the Lua layer encodes the payload with
 * json_encode) and it does not verify tokens: a client never needs to, and
 * the local server verifies with code of its own.
 */
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core.h"

/* base64url of {"alg":"HS256","typ":"JWT"}: the header every token shares. */
static const char JWT_HEADER[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

static const char B64URL[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_len(size_t n)
{
    return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0);
}

/* Writes base64url of src[0..n) into dst (room for b64url_len(n)). */
static size_t b64url_write(char *dst, const unsigned char *src, size_t n)
{
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = ((unsigned)src[i] << 16) | ((unsigned)src[i + 1] << 8) | src[i + 2];
        dst[o++] = B64URL[(v >> 18) & 63];
        dst[o++] = B64URL[(v >> 12) & 63];
        dst[o++] = B64URL[(v >> 6) & 63];
        dst[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)src[i] << 16;
        dst[o++] = B64URL[(v >> 18) & 63];
        dst[o++] = B64URL[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = ((unsigned)src[i] << 16) | ((unsigned)src[i + 1] << 8);
        dst[o++] = B64URL[(v >> 18) & 63];
        dst[o++] = B64URL[(v >> 12) & 63];
        dst[o++] = B64URL[(v >> 6) & 63];
    }
    return o;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/*
 * Scratch memory owned by Lua: a userdata left on the stack, so an error
 * raised while it is in use cannot leak it. finish() turns its first n
 * bytes into a string that replaces it on the stack.
 */
static char *scratch(lua_State *L, size_t n)
{
    return (char *)lua_newuserdata(L, n > 0 ? n : 1);
}

static void finish(lua_State *L, const char *p, size_t n)
{
    lua_pushlstring(L, p, n);
    lua_remove(L, -2);
}

static int l_b64url_encode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char *dst = scratch(L, b64url_len(n));
    finish(L, dst, b64url_write(dst, (const unsigned char *)s, n));
    return 1;
}

/*
 * Strict decoding: only the URL alphabet, no padding, and no length that
 * cannot come from an encoder (n % 4 == 1) or leaves stray bits set.
 */
static int l_b64url_decode(lua_State *L)
{
    size_t n, i, o = 0;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    unsigned acc = 0;
    int bits = 0;
    char *dst;
    if (n % 4 == 1) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64url: impossible length");
        return 2;
    }
    dst = scratch(L, n / 4 * 3 + 3);
    for (i = 0; i < n; i++) {
        int v = b64url_value(s[i]);
        if (v < 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "invalid base64url: bad character at byte %d", (int)i + 1);
            return 2;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "invalid base64url: trailing bits set");
        return 2;
    }
    finish(L, dst, o);
    return 1;
}

static int l_hs256(lua_State *L)
{
    size_t klen, plen, hlen = sizeof(JWT_HEADER) - 1, total, o;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *payload = luaL_checklstring(L, 2, &plen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *dst;

    if (klen > (size_t)0x7fffffff)
        return luaL_argerror(L, 1, "secret too long");
    total = hlen + 1 + b64url_len(plen) + 1 + b64url_len(32);
    dst = scratch(L, total);
    memcpy(dst, JWT_HEADER, hlen);
    o = hlen;
    dst[o++] = '.';
    o += b64url_write(dst + o, (const unsigned char *)payload, plen);
    if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)dst, o, mac, &maclen) == NULL
        || maclen != 32)
        return luaL_error(L, "stream.core: HMAC-SHA256 failed");
    dst[o++] = '.';
    o += b64url_write(dst + o, mac, maclen);
    OPENSSL_cleanse(mac, sizeof(mac));
    finish(L, dst, o);
    return 1;
}

void stream_jwt_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"hs256", l_hs256},
        {"b64url_encode", l_b64url_encode},
        {"b64url_decode", l_b64url_decode},
        {NULL, NULL}
    };
    luaL_setfuncs(L, funcs, 0);
}
