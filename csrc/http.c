/*
 * http.c - HTTP transfers over libcurl for stream.core.
 *
 * One `stream.http` userdata owns one curl multi handle (and so one
 * connection cache: sequential and concurrent requests reuse keep-alive
 * connections) and a small pool of easy handles. A request is its own
 * `stream.request` userdata:
 *
 *   http = core.http_new{timeout=, connect_timeout=, ca_file=, verify=,
 *                        proxy=, user_agent=, max_connections=,
 *                        max_response_bytes=, headers={"K: v", ...},
 *                        body_headers={"Content-Type: ...", ...}}
 *   status, body, headers = http:request(method, url [, headers [, body [, timeout]]])
 *   req = http:submit(method, url [, headers [, body [, timeout]]])  -- returns at once
 *   running = http:perform(wait_seconds)  -- drives transfers, waits at most that long
 *   req:done() ; status, body, headers = req:result()
 *   http:timeout()  -> seconds until perform should be called again, or nil
 *   http:stats()    -> {requests=, connects=, running=}
 *   http:close()    -- also __gc and __close; idempotent
 *
 * Failures come back as nil, kind, message, stage with kind "timeout" or
 * "transport"; stage is "connect" when the request provably never reached
 * the server (no connection could be made), "limit" when the answer (after
 * decompression) outgrew max_response_bytes and the transfer was cut, else
 * "transfer". `timeout` (seconds) overrides the client's total timeout for
 * one request. `headers` maps lower-cased names to values (last one wins).
 *
 * Deliberately not here: URLs, auth, retries, JSON, scheduling of
 * coroutines (all Lua). Redirects are never followed (a redirected POST
 * loses its body); the 3xx comes back as a response for Lua to judge.
 * No Lua function is ever called from inside a libcurl callback: the
 * callbacks only append to C buffers owned by the request userdata, and Lua
 * values are built after the transfer has finished.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "core.h"

#define HTTP_MT "stream.http"
#define REQUEST_MT "stream.request"
#define POOL_MAX 64
#define DEFAULT_MAX_RESPONSE (16L * 1024 * 1024)

typedef struct {
    char *data;
    size_t len, cap;
} membuf;

typedef struct http_s http_t;

typedef struct {
    http_t *http;               /* NULL once finished or detached */
    CURL *easy;                 /* NULL unless in flight */
    struct curl_slist *headers; /* this request's list, if it has its own */
    membuf body, head;
    size_t max_bytes;
    int done, too_large;
    CURLcode result;
    long status;
    char errbuf[CURL_ERROR_SIZE];
} request_t;

struct http_s {
    CURLM *multi;               /* NULL once closed */
    CURL *pool[POOL_MAX];
    int npool;
    struct curl_slist *base;    /* headers sent on every request */
    struct curl_slist *base_body; /* base plus the ones for requests with a body */
    long timeout_ms, connect_timeout_ms;
    long max_response;
    int verify;
    char *ca_file, *proxy, *user_agent;
    int running;
    lua_Integer requests, connects, inflight;
};

static int curl_ready = 0;

/* ---------------------------------------------------------------- buffers */

static int membuf_add(membuf *m, const char *p, size_t n)
{
    if (m->len + n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 1024;
        char *d;
        while (cap < m->len + n + 1)
            cap *= 2;
        d = realloc(m->data, cap);
        if (d == NULL)
            return 0;
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
    m->data[m->len] = '\0';
    return 1;
}

static void membuf_free(membuf *m)
{
    free(m->data);
    m->data = NULL;
    m->len = m->cap = 0;
}

static char *dupstr(const char *s)
{
    size_t n;
    char *d;
    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* -------------------------------------------------------------- callbacks */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    request_t *r = ud;
    size_t bytes = size * n;
    if (r->body.len + bytes > r->max_bytes) {
        r->too_large = 1;
        return 0;
    }
    return membuf_add(&r->body, p, bytes) ? bytes : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    request_t *r = ud;
    size_t bytes = size * n;
    /* A new status line starts a new header block (1xx answers). */
    if (bytes >= 5 && memcmp(p, "HTTP/", 5) == 0)
        r->head.len = 0;
    if (r->head.len + bytes > 256 * 1024)
        return 0;
    return membuf_add(&r->head, p, bytes) ? bytes : 0;
}

/* ---------------------------------------------------------------- helpers */

static http_t *check_http(lua_State *L, int idx)
{
    http_t *h = luaL_checkudata(L, idx, HTTP_MT);
    if (h->multi == NULL)
        luaL_error(L, "stream.http: client is closed");
    return h;
}

static long opt_ms(lua_State *L, int t, const char *key, long dflt)
{
    long v = dflt;
    lua_getfield(L, t, key);
    if (!lua_isnil(L, -1)) {
        lua_Number s = luaL_checknumber(L, -1);
        if (!(s > 0) || s > 86400)
            luaL_error(L, "stream.http: option '%s' must be a number of seconds in (0, 86400]", key);
        v = (long)(s * 1000.0 + 0.5);
        if (v < 1)
            v = 1;
    }
    lua_pop(L, 1);
    return v;
}

static char *opt_str(lua_State *L, int t, const char *key)
{
    char *v = NULL;
    lua_getfield(L, t, key);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "stream.http: option '%s' must be a string", key);
        v = dupstr(lua_tostring(L, -1));
        if (v == NULL)
            luaL_error(L, "stream.http: out of memory");
    }
    lua_pop(L, 1);
    return v;
}

/* Appends every string of the list at index idx to *list. */
static int append_headers(lua_State *L, int idx, struct curl_slist **list)
{
    int i, n;
    if (lua_isnoneornil(L, idx))
        return 1;
    luaL_checktype(L, idx, LUA_TTABLE);
    n = (int)lua_rawlen(L, idx);
    for (i = 1; i <= n; i++) {
        struct curl_slist *next;
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            return 0;
        }
        next = curl_slist_append(*list, lua_tostring(L, -1));
        lua_pop(L, 1);
        if (next == NULL)
            return 0;
        *list = next;
    }
    return 1;
}

static void request_release(request_t *r)
{
    http_t *h = r->http;
    if (r->easy != NULL) {
        if (h != NULL && h->multi != NULL) {
            curl_multi_remove_handle(h->multi, r->easy);
            h->inflight--;
        }
        if (h != NULL && h->npool < POOL_MAX) {
            curl_easy_reset(r->easy);
            h->pool[h->npool++] = r->easy;
        } else {
            curl_easy_cleanup(r->easy);
        }
        r->easy = NULL;
    }
    if (r->headers != NULL) {
        curl_slist_free_all(r->headers);
        r->headers = NULL;
    }
    r->http = NULL;
}

/* The http userdata's uservalue table anchors requests in flight. */
static void anchor(lua_State *L, int http_idx, request_t *r, int req_idx)
{
#if LUA_VERSION_NUM >= 504
    lua_getiuservalue(L, http_idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_getuservalue(L, http_idx);
#else
    lua_getfenv(L, http_idx);
#endif
    lua_pushlightuserdata(L, r);
    if (req_idx)
        lua_pushvalue(L, req_idx);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Reads what finished; runs outside any curl callback. */
static void collect(lua_State *L, int http_idx, http_t *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        request_t *r = NULL;
        long nconn = 0;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r == NULL)
            continue;
        r->result = msg->data.result;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &nconn);
        h->connects += nconn;
        r->done = 1;
        request_release(r);   /* msg is invalid from here on */
        anchor(L, http_idx, r, 0);
    }
}

/* --------------------------------------------------------------- requests */

static int start(lua_State *L, http_t *h, request_t *r)
{
    size_t blen = 0;
    const char *method = luaL_checkstring(L, 2);
    const char *url = luaL_checkstring(L, 3);
    const char *body = luaL_optlstring(L, 5, NULL, &blen);
    lua_Number tmo = luaL_optnumber(L, 6, 0);
    long timeout_ms = h->timeout_ms;
    struct curl_slist *list = body != NULL ? h->base_body : h->base;
    CURL *e;
    CURLMcode mc;

    if (!lua_isnoneornil(L, 4)) {
        struct curl_slist *s;
        for (s = list; s != NULL; s = s->next)
            if (!(r->headers = curl_slist_append(r->headers, s->data)))
                return luaL_error(L, "stream.http: out of memory");
        if (!append_headers(L, 4, &r->headers))
            return luaL_error(L, "stream.http: headers must be a list of strings");
        list = r->headers;
    }
    e = h->npool > 0 ? h->pool[--h->npool] : curl_easy_init();
    if (e == NULL)
        return luaL_error(L, "stream.http: cannot create a transfer");
    r->easy = e;
    r->http = h;
    r->max_bytes = (size_t)h->max_response;
    r->errbuf[0] = '\0';

    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (tmo > 0) {
        timeout_ms = tmo > 86400 ? 86400000L : (long)(tmo * 1000.0 + 0.5);
        if (timeout_ms < 1)
            timeout_ms = 1;
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->verify ? 2L : 0L);
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (h->proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, h->proxy);
    if (h->user_agent)
        curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);

    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    }

    mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        request_release(r);
        return luaL_error(L, "stream.http: %s", curl_multi_strerror(mc));
    }
    h->inflight++;
    h->requests++;
    return 0;
}

static request_t *new_request(lua_State *L)
{
    request_t *r = stream_newuserdata(L, sizeof(request_t));
    memset(r, 0, sizeof(*r));
    r->done = 1;             /* "closed" until a transfer is attached */
    luaL_setmetatable(L, REQUEST_MT);
    return r;
}

/* Drives transfers once; waits up to wait_ms for activity. */
static void drive(lua_State *L, int http_idx, http_t *h, long wait_ms)
{
    CURLMcode mc = curl_multi_perform(h->multi, &h->running);
    collect(L, http_idx, h);
    if (mc == CURLM_OK && h->running > 0 && wait_ms > 0) {
        long t = -1;
        curl_multi_timeout(h->multi, &t);
        if (t >= 0 && t < wait_ms)
            wait_ms = t;
        if (wait_ms > 0)
            curl_multi_poll(h->multi, NULL, 0, (int)wait_ms, NULL);
        curl_multi_perform(h->multi, &h->running);
        collect(L, http_idx, h);
    }
}

static void push_headers(lua_State *L, const membuf *m)
{
    const char *p = m->data, *end = m->data + m->len;
    lua_newtable(L);
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon != NULL && colon > p) {
            const char *v = colon + 1, *ve = line_end;
            luaL_Buffer b;
            const char *k;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            luaL_buffinit(L, &b);
            for (k = p; k < colon; k++) {
                char c = *k;
                luaL_addchar(&b, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
            }
            luaL_pushresult(&b);
            lua_pushlstring(L, v, (size_t)(ve - v));
            lua_rawset(L, -3);
        }
        p = eol ? eol + 1 : end;
    }
}

static int push_result(lua_State *L, request_t *r)
{
    if (r->result != CURLE_OK) {
        lua_pushnil(L);
        if (r->too_large) {
            lua_pushliteral(L, "transport");
            lua_pushfstring(L, "response larger than max_response_bytes (%d)", (int)r->max_bytes);
            lua_pushliteral(L, "limit");
            return 4;
        } else {
            lua_pushstring(L, r->result == CURLE_OPERATION_TIMEDOUT ? "timeout" : "transport");
            if (r->errbuf[0] != '\0')
                lua_pushstring(L, r->errbuf);
            else
                lua_pushstring(L, curl_easy_strerror(r->result));
        }
        switch (r->result) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
            lua_pushliteral(L, "connect");
            break;
        default:
            lua_pushliteral(L, "transfer");
        }
        return 4;
    }
    lua_pushinteger(L, (lua_Integer)r->status);
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    push_headers(L, &r->head);
    return 3;
}

static int l_http_request(lua_State *L)
{
    http_t *h = check_http(L, 1);
    request_t *r;
    int ridx, n;
    lua_settop(L, 6);
    r = new_request(L);
    ridx = lua_gettop(L);
    start(L, h, r);
    r->done = 0;
    anchor(L, 1, r, ridx);
    while (!r->done && h->multi != NULL)
        drive(L, 1, h, 1000);
    n = push_result(L, r);
    membuf_free(&r->body);
    membuf_free(&r->head);
    return n;
}

static int l_http_submit(lua_State *L)
{
    http_t *h = check_http(L, 1);
    request_t *r;
    int ridx;
    lua_settop(L, 6);
    r = new_request(L);
    ridx = lua_gettop(L);
    start(L, h, r);
    r->done = 0;
    anchor(L, 1, r, ridx);
    lua_settop(L, ridx);
    return 1;
}

static int l_http_perform(lua_State *L)
{
    http_t *h = check_http(L, 1);
    lua_Number wait = luaL_optnumber(L, 2, 0);
    long ms = wait > 0 ? (long)(wait * 1000.0 + 0.5) : 0;
    drive(L, 1, h, ms);
    lua_pushinteger(L, (lua_Integer)h->running);
    return 1;
}

static int l_http_timeout(lua_State *L)
{
    http_t *h = check_http(L, 1);
    long t = -1;
    curl_multi_timeout(h->multi, &t);
    if (t < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, (lua_Number)t / 1000.0);
    return 1;
}

static int l_http_stats(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, h->requests);
    lua_setfield(L, -2, "requests");
    lua_pushinteger(L, h->connects);
    lua_setfield(L, -2, "connects");
    lua_pushinteger(L, h->inflight);
    lua_setfield(L, -2, "in_flight");
    lua_pushboolean(L, h->multi == NULL);
    lua_setfield(L, -2, "closed");
    return 1;
}

static int l_http_close(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    if (h->multi != NULL) {
        /* Detach every request still in flight: each keeps its buffers. */
#if LUA_VERSION_NUM >= 504
        lua_getiuservalue(L, 1, 1);
#elif LUA_VERSION_NUM >= 502
        lua_getuservalue(L, 1);
#else
        lua_getfenv(L, 1);
#endif
        if (lua_istable(L, -1)) {
            lua_pushnil(L);
            while (lua_next(L, -2) != 0) {
                request_t *r = luaL_testudata(L, -1, REQUEST_MT);
                if (r != NULL && !r->done) {
                    r->result = CURLE_ABORTED_BY_CALLBACK;
                    snprintf(r->errbuf, sizeof(r->errbuf), "client closed while the request was in flight");
                    r->done = 1;
                    request_release(r);
                }
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        while (h->npool > 0)
            curl_easy_cleanup(h->pool[--h->npool]);
        curl_multi_cleanup(h->multi);
        h->multi = NULL;
        curl_slist_free_all(h->base);
        curl_slist_free_all(h->base_body);
        h->base = h->base_body = NULL;
        free(h->ca_file);
        free(h->proxy);
        free(h->user_agent);
        h->ca_file = h->proxy = h->user_agent = NULL;
    }
    return 0;
}

static int l_http_tostring(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    lua_pushfstring(L, "stream.http (%s)", h->multi ? "open" : "closed");
    return 1;
}

static int l_http_new(lua_State *L)
{
    http_t *h;
    int t;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    else
        luaL_checktype(L, 1, LUA_TTABLE);
    t = 1;
    if (lua_gettop(L) > 1)
        lua_settop(L, 1);
    h = stream_newuserdata(L, sizeof(http_t));
    memset(h, 0, sizeof(*h));        /* closed: multi == NULL */
    luaL_setmetatable(L, HTTP_MT);
    lua_newtable(L);
#if LUA_VERSION_NUM >= 504
    lua_setiuservalue(L, -2, 1);
#elif LUA_VERSION_NUM >= 502
    lua_setuservalue(L, -2);
#else
    lua_setfenv(L, -2);
#endif

    h->timeout_ms = opt_ms(L, t, "timeout", 10000);
    h->connect_timeout_ms = opt_ms(L, t, "connect_timeout", 5000);
    h->verify = 1;
    lua_getfield(L, t, "verify");
    if (lua_type(L, -1) == LUA_TBOOLEAN)
        h->verify = lua_toboolean(L, -1);
    lua_pop(L, 1);
    h->max_response = DEFAULT_MAX_RESPONSE;
    lua_getfield(L, t, "max_response_bytes");
    if (!lua_isnil(L, -1)) {
        lua_Number n = luaL_checknumber(L, -1);
        if (!(n >= 1) || n > 2147483647.0)
            return luaL_error(L, "stream.http: option 'max_response_bytes' out of range");
        h->max_response = (long)n;
    }
    lua_pop(L, 1);

    /* Acquire resources only now that the userdata can release them. */
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        return luaL_error(L, "stream.http: cannot create a curl multi handle");
    h->ca_file = opt_str(L, t, "ca_file");
    h->proxy = opt_str(L, t, "proxy");
    h->user_agent = opt_str(L, t, "user_agent");
    lua_getfield(L, t, "headers");
    if (!append_headers(L, lua_gettop(L), &h->base)
        || !append_headers(L, lua_gettop(L), &h->base_body))
        return luaL_error(L, "stream.http: option 'headers' must be a list of strings");
    lua_pop(L, 1);
    lua_getfield(L, t, "body_headers");
    if (!append_headers(L, lua_gettop(L), &h->base_body))
        return luaL_error(L, "stream.http: option 'body_headers' must be a list of strings");
    lua_pop(L, 1);
    lua_getfield(L, t, "max_connections");
    if (!lua_isnil(L, -1)) {
        lua_Number n = luaL_checknumber(L, -1);
        if (!(n >= 1) || n > 10000)
            return luaL_error(L, "stream.http: option 'max_connections' must be in [1, 10000]");
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n);
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)n);
    } else {
        /* libcurl's default cache size is 4 x the transfers added at the
         * moment, which shrinks (closing kept-alive connections) whenever
         * the transfers in flight drain between two steps. */
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)POOL_MAX);
    }
    lua_pop(L, 1);
    return 1;
}

/* ------------------------------------------------------- request methods */

static int l_request_done(lua_State *L)
{
    request_t *r = luaL_checkudata(L, 1, REQUEST_MT);
    lua_pushboolean(L, r->done);
    return 1;
}

static int l_request_result(lua_State *L)
{
    request_t *r = luaL_checkudata(L, 1, REQUEST_MT);
    if (!r->done)
        return luaL_error(L, "stream.request: still in flight");
    return push_result(L, r);
}

static int l_request_gc(lua_State *L)
{
    request_t *r = luaL_checkudata(L, 1, REQUEST_MT);
    request_release(r);
    membuf_free(&r->body);
    membuf_free(&r->head);
    return 0;
}

void stream_http_open(lua_State *L)
{
    static const luaL_Reg http_methods[] = {
        {"request", l_http_request},
        {"submit", l_http_submit},
        {"perform", l_http_perform},
        {"timeout", l_http_timeout},
        {"stats", l_http_stats},
        {"close", l_http_close},
        {NULL, NULL}
    };
    static const luaL_Reg request_methods[] = {
        {"done", l_request_done},
        {"result", l_request_result},
        {NULL, NULL}
    };
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            luaL_error(L, "stream.core: curl_global_init failed");
        curl_ready = 1;
    }
    if (luaL_newmetatable(L, HTTP_MT)) {
        luaL_newlibtable(L, http_methods);
        luaL_setfuncs(L, http_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_http_close);
        lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
        lua_pushcfunction(L, l_http_close);
        lua_setfield(L, -2, "__close");
#endif
        lua_pushcfunction(L, l_http_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, REQUEST_MT)) {
        luaL_newlibtable(L, request_methods);
        luaL_setfuncs(L, request_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_request_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_http_new);
    lua_setfield(L, -2, "http_new");
    {
        /* curl_version_info, not curl_version: the latter initialises
         * LDAP/SASL, which never frees what it allocates. */
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        lua_pushfstring(L, "libcurl/%s %s", v->version, v->ssl_version ? v->ssl_version : "no-tls");
        lua_setfield(L, -2, "curl_version");
    }
}
