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
 *                        max_response_bytes=, max_header_bytes=,
 *                        headers={"K: v", ...},
 *                        body_headers={"Content-Type: ...", ...}}
 *   res, err = http:request(method, url [, body [, timeout [, once [, headers]]]])
 *   req = http:submit(method, url [, body [, timeout [, once [, headers [, owner]]]]])
 *       -- returns at once; owner (any value but nil) is what perform lists
 *       -- for it when it is done, instead of the request
 *       body: a string, or {prefix, path, size, suffix} (a file streamed
 *       from disk between two strings; see "Files" below)
 *   running = http:perform(wait_seconds)  -- drives transfers, waits at most that long
 *   running, n = http:perform(wait_seconds, done)  -- also puts the submitted
 *       requests that finished since the last such call (their owners, for
 *       those submitted with one) in done[1..n]
 *   req:done() ; res, err = req:result()
 *   http:timeout()  -> seconds until perform should be called again, or nil
 *   http:stats()    -> {requests=, connects=, in_flight=, closed=}
 *   http:close()    -- also __gc and __close; idempotent
 *   found = core.file_contains(path, needle)  -- nil, message when unreadable
 *
 * Socket mode, for a foreign event loop (lua/stream/loop.lua):
 *   http:watch()    -- from now on libcurl's socket API drives the transfers
 *   n, timer, reset = http:events(list)  -- what to watch now (l_http_events)
 *   running [, n] = http:action(fd, what [, done])  -- a socket is ready, or
 *       with fd nil libcurl's timer fired; done as for perform
 * libcurl's socket and timer callbacks only record (the set of sockets and
 * what to watch on each, the changes since the loop last asked, the timer's
 * deadline); the loop asks after each call. A blocking http:request (and
 * perform) in socket mode waits in poll(2) on that same set, so calls from
 * outside the loop still work and drive the loop's transfers too.
 *
 * The values the client resolved (timeouts, the response cap) are required
 * options: the defaults and ranges live in the Lua layer (config.lua), not
 * here. max_header_bytes caps the status lines and headers of an answer
 * (1xx blocks included); without it only libcurl's own limits apply. The
 * header lists are libcurl's "Name: value" strings (the curl transport
 * builds them from the client's name/value map); `body_headers` are added
 * for requests with a body. A call's `headers` (a list of such strings) is
 * instead the whole header list of that one request: libcurl's list made
 * from it belongs to the request, is anchored with it while in flight, and
 * is freed when its transfer ends, the client closes or the request is
 * collected (its easy handle goes back to the pool with the shared list
 * set again). Without it a call allocates no list at all. The body is any
 * bytes, NUL included: its length is given to libcurl, never taken with
 * strlen.
 *
 * Success is {status=, body=, headers=} (headers maps lower-cased names to
 * values, the last one winning). Only error paths read the headers, so the
 * table is built from the header text the first time `headers` is read.
 * `reused` (true when the answer came over a connection opened before) is
 * read from which of two metatables the result has, so it costs a result
 * nothing until it is read. Failure is nil, {kind=, message=, sent=,
 * reason=}: kind "timeout" or "transport"; sent is false when no byte of
 * the request was written to a connection (libcurl's request size is 0), so
 * the request certainly did not reach the server; reason is "connect" (no
 * connection, name, proxy or TLS session could be made), "limit" (the answer,
 * after decompression, outgrew max_response_bytes and was cut, its
 * Content-Length said so, or its headers outgrew max_header_bytes),
 * "malformed" (the answer breaks HTTP: a status that is not three digits,
 * a Content-Length that is not a number, a reply libcurl calls weird),
 * "closed" (the client was closed while it was in flight) or "transfer".
 * `timeout` (seconds) overrides the client's total timeout for one request.
 *
 * A blocking http:request looks at least every BLOCKING_POLL_MS whether a
 * hook is set and if so calls an empty Lua function, so a hook set from a
 * signal handler (lua.c's SIGINT: "interrupted!") runs within that time
 * instead of when the transfer ends; without a hook it costs one load. The hook's error leaves the request in
 * the blocking slot, which the next call (or close) releases.
 *
 * `once` (a request that must not reach the server twice, e.g. a POST that
 * adds): libcurl re-sends a request by itself when a reused connection dies
 * before any answer byte ("Connection died, retrying a fresh connect"),
 * which for a POST that the server did process means a duplicate. Such a
 * body is handed to libcurl through a read callback with no way to rewind,
 * so libcurl may still re-send it when no body byte was written, but fails
 * the transfer (CURLE_SEND_FAIL_REWIND, sent = true) instead of sending the
 * body a second time.
 *
 * Files: a body {prefix, path, size, suffix} sends prefix, then `size`
 * bytes of the file at `path` read through a FILE* this file opens, then
 * suffix, with Content-Length their sum; only the two strings are copied
 * (into the request's `upload` buffer), the file is read as libcurl asks
 * for it, so a file of any size costs one libcurl buffer of memory. The
 * FILE* belongs to the request and is closed when its transfer ends, the
 * client closes or the request is collected. A file that cannot be opened
 * fails the call before anything is sent: nil, {kind = "invalid", reason =
 * "file", sent = false} (from submit too, which then returns no request).
 * A file that ends before `size` bytes stops the transfer (reason
 * "transfer"). Such a body has a seek callback (libcurl rewinds it to send
 * it again on a fresh connection) only when it is not `once`.
 *
 * Deliberately not here: URLs, auth, retries, JSON, scheduling of
 * coroutines (all Lua). Redirects are never followed (a redirected POST
 * loses its body); the 3xx comes back as a response for Lua to judge.
 * No Lua function is ever called from inside a libcurl callback: the
 * callbacks only append to C buffers owned by the request userdata, and Lua
 * values are built after the transfer has finished.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "core.h"

#define HTTP_MT "stream.http"
#define REQUEST_MT "stream.request"
#define RESULT_MT "stream.result"
/* the metatable of a result whose transfer opened a connection of its own */
#define RESULT_NEW_MT "stream.result.new"
/* Easy handles (and cached connections) kept when max_connections is not
 * given; with it, the pool and the cache hold that many. */
#define POOL_DEFAULT 64
/* A queued transfer with less of its timeout left than this is not started. */
#define QUEUE_MIN_LEFT_MS 10
/* The most idle easy handles a client keeps (after a burst of queued calls). */
#define POOL_MAX 1024
#define MS_PER_DAY 86400000L
/* A blocking request comes back to Lua at least this often (ms). */
#define BLOCKING_POLL_MS 100
/* Failures of the answer itself (request_t.refused). */
#define REFUSED_LIMIT 1         /* over max_response_bytes or max_header_bytes */
#define REFUSED_MALFORMED 2     /* not HTTP as it must be */
#define REFUSED_FILE 3          /* a streamed file ended before its size */

typedef struct {
    char *data;
    size_t len, cap;
} membuf;

typedef struct http_s http_t;
typedef struct request_s request_t;

/* A socket libcurl asked to watch (CURL_POLL_IN/OUT/INOUT), or a change of
 * one (what 0: no longer watched). */
typedef struct {
    curl_socket_t fd;
    int what;
} sockev_t;

/* Socket mode: what libcurl's socket and timer callbacks said, for the
 * blocking calls (the set) and for a foreign loop (the changes). */
typedef struct {
    sockev_t *set, *changes;
    int nset, capset, nchanges, capchanges;
    int reset;                  /* changes overflowed: hand over the whole set */
    double timer_at;            /* monotonic deadline of libcurl's timer, < 0: none */
    int timer_changed;          /* since the last http:events */
} watch_t;

/* Options a request may leave set on its easy handle (easy_t.state). */
#define ST_BODY_HEADERS 1       /* CURLOPT_HTTPHEADER is base_body, not base */
#define ST_POSTFIELDS 2         /* a copied body */
#define ST_READ 4               /* a `once` body's read callback */
#define ST_CUSTOM 8             /* CURLOPT_CUSTOMREQUEST */
#define ST_OWN_HEADERS 16       /* CURLOPT_HTTPHEADER is the request's own list */
#define ST_SEEK 32              /* CURLOPT_SEEKFUNCTION (a file body that may be re-sent) */

/* One easy handle, configured once when made (the options every request
 * shares) and pooled with what its last request left set, so the next one
 * sets only what differs. Its callbacks reach the request through `req`. */
typedef struct {
    CURL *e;
    request_t *req;             /* the request it carries; NULL when idle */
    int state;                  /* ST_* */
    long timeout_ms;            /* CURLOPT_TIMEOUT_MS as last set */
    char errbuf[CURL_ERROR_SIZE];
} easy_t;

struct request_s {
    http_t *http;               /* NULL once finished or detached */
    easy_t *easy;               /* NULL unless in flight */
    membuf body, head;
    membuf upload;              /* a body read by on_read: a `once` one, or a file's prefix and suffix */
    size_t upload_split;        /* upload[0, split) goes before the file, the rest after it */
    FILE *file;                 /* a streamed file body's, or NULL */
    curl_off_t file_size, file_left;
    int reader;                 /* the body goes through on_read */
    struct curl_slist *headers; /* the request's own header list, or NULL */
    int own_headers;            /* sent with `headers` (even when empty), not the shared lists */
    size_t upload_pos;
    size_t max_bytes, max_head;
    size_t head_total;          /* header bytes of every block so far */
    int refused;                /* REFUSED_*, set by a callback that stopped the transfer */
    int head_done;              /* the final answer's header block ended */
    int final_block;            /* the block being read has a status >= 200 */
    const char *why;            /* what was refused, a static string */
    int done, too_large;
    int in_multi;               /* added to the multi handle and counted in flight */
    int queued;                 /* waiting for a connection (http_t's queue), counted in flight */
    request_t *qprev, *qnext;   /* the queue's links */
    double queued_at;           /* when it was queued (monotonic seconds) */
    int closed;                 /* the client was closed while it was in flight */
    int sent;                   /* some byte of the request was written */
    int listed;                 /* submitted: goes on the done list when it finishes */
    int blocking;               /* the http's own slot for http:request: not a userdata */
    int slot;                   /* anchored at uservalue[2 * slot] while in flight (0: not) */
    int owned;                  /* uservalue[2 * slot + 1] holds the owner given to submit */
    CURLcode result;
    long status;
    int reused;                 /* no connection was opened for it (CURLINFO_NUM_CONNECTS 0) */
    char errbuf[CURL_ERROR_SIZE];
};

struct http_s {
    CURLM *multi;               /* NULL once closed */
    CURLSH *share;              /* TLS sessions every easy handle of the client resumes */
    easy_t **pool;              /* idle easy handles: npool of room */
    int npool, pool_cap;        /* pool_cap: max_connections (or POOL_DEFAULT) */
    int room;                   /* the pool's size: grows to the most transfers
                                 * ever outstanding at once (queued ones too),
                                 * up to POOL_MAX, so a burst beyond the
                                 * connections reuses handles instead of
                                 * making and freeing one per request */
    struct curl_slist *base;    /* headers sent on every request */
    struct curl_slist *base_body; /* base plus the ones for requests with a body */
    long timeout_ms, connect_timeout_ms;
    long max_response;
    size_t max_header;          /* 0: libcurl's own limits only */
    int verify;
    char *ca_file, *proxy, *user_agent;
    int running;
    lua_Integer requests, connects, inflight;
    /* Transfers beyond `limit` (max_connections; 0: none given) wait here,
     * oldest first, each configured with its easy handle but not added to
     * the multi handle, so libcurl never holds, scans or wakes a transfer
     * that has no connection to go on: one is added per one that ends. */
    int limit, nqueued;
    request_t *qhead, *qtail;
    int ndone;                  /* length of the done list (uservalue[1]) */
    /* Anchor slots of the uservalue table (slot s: [2s] the request, [2s+1]
     * its owner), integer keys, reused from a free stack. */
    int *freeslots;
    int nfreeslots, capfreeslots, nextslot;
    watch_t *watch;             /* what the socket and timer callbacks recorded */
    /* http:request's request: one at a time (it returns before any other
     * Lua code runs), kept with its buffers, so a blocking call makes no
     * userdata, anchor or finalizer. */
    request_t blocking;
};

/* One call's arguments, parsed by l_http_request / l_http_submit. */
typedef struct {
    const char *method, *url, *body;
    size_t blen;
    long timeout_ms;
    int once;                   /* the body must never be sent twice */
    int parts;                  /* body is {prefix, path, size, suffix} */
    const char *suffix, *path;  /* with parts; body is the prefix, blen its length */
    size_t slen;
    curl_off_t fsize, total;    /* the file's bytes to send; the whole body's length */
    int headers;                /* stack index of the call's own header list, or 0 */
} call_t;

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
    request_t *r = ((easy_t *)ud)->req;
    size_t bytes = size * n;
    if (r == NULL)
        return 0;
    if (r->body.len + bytes > r->max_bytes) {
        r->too_large = 1;
        return 0;
    }
    return membuf_add(&r->body, p, bytes) ? bytes : 0;
}

/* Stops the transfer from a callback, saying why (push_result reports it). */
static size_t refuse(request_t *r, int kind, const char *why)
{
    r->refused = kind;
    r->why = why;
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether p[0..n) starts with the lower-case `name`, in any case. */
static int has_prefix(const char *p, size_t n, const char *name)
{
    size_t i;
    for (i = 0; name[i] != '\0'; i++) {
        char c;
        if (i >= n)
            return 0;
        c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != name[i])
            return 0;
    }
    return 1;
}

/* "HTTP/1.1 200 OK": a version, then exactly three digits and a space or
 * the line's end (a 20-digit status is not status 999). The offset of the
 * status' first digit, or 0 when the line is malformed. */
static size_t status_offset(const char *p, size_t n)
{
    size_t i = 5;
    if (n < 5 || memcmp(p, "HTTP/", 5) != 0)
        return 0;
    while (i < n && (is_digit(p[i]) || p[i] == '.'))
        i++;
    if (i == 5 || i + 4 > n || p[i] != ' ')
        return 0;
    if (!is_digit(p[i + 1]) || !is_digit(p[i + 2]) || !is_digit(p[i + 3]))
        return 0;
    if (i + 4 == n || p[i + 4] == ' ' || p[i + 4] == '\r' || p[i + 4] == '\n')
        return i + 1;
    return 0;
}

/* A Content-Length line: digits only (libcurl would read an overflowing one
 * as "until the connection closes" and take a short body as the answer). */
static size_t check_length(request_t *r, const char *p, size_t n)
{
    size_t i = 15, digits = 0;      /* strlen("content-length:") */
    unsigned long long v = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    for (; i < n && is_digit(p[i]); i++, digits++)
        if (digits < 19)
            v = v * 10 + (unsigned long long)(p[i] - '0');
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    if (digits == 0 || i != n)
        return refuse(r, REFUSED_MALFORMED, "malformed Content-Length in the answer");
    if (digits > 18 || v > (unsigned long long)r->max_bytes) {
        r->too_large = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    request_t *r = ((easy_t *)ud)->req;
    size_t bytes = size * n;
    if (r == NULL)
        return 0;
    r->head_total += bytes;
    if (r->max_head > 0 && r->head_total > r->max_head)
        return refuse(r, REFUSED_LIMIT, "answer's headers larger than max_header_bytes");
    /* A new status line starts a new header block (1xx answers). */
    if (bytes >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        size_t at = status_offset(p, bytes);
        if (at == 0)
            return refuse(r, REFUSED_MALFORMED, "malformed status line in the answer");
        r->head.len = 0;
        r->final_block = p[at] >= '2';
    } else if ((bytes == 2 && p[0] == '\r') || (bytes == 1 && p[0] == '\n')) {
        r->head_done = r->final_block;
    } else if (has_prefix(p, bytes, "content-length:") && check_length(r, p, bytes) == 0) {
        return 0;
    }
    return membuf_add(&r->head, p, bytes) ? bytes : 0;
}

/* Copies up to `room` bytes of upload[pos, end) out. */
static size_t upload_copy(request_t *r, char *p, size_t room, size_t end)
{
    size_t left = end - r->upload_pos;
    size_t bytes = room < left ? room : left;
    if (bytes == 0)
        return 0;
    memcpy(p, r->upload.data + r->upload_pos, bytes);
    r->upload_pos += bytes;
    return bytes;
}

/* Hands out a body read through the request: the upload buffer's part
 * before the file, the file, the rest. A `once` body has no seek callback,
 * so libcurl cannot send it twice. */
static size_t on_read(char *p, size_t size, size_t n, void *ud)
{
    request_t *r = ((easy_t *)ud)->req;
    size_t room = size * n, bytes;
    if (r == NULL)
        return CURL_READFUNC_ABORT;
    if (r->upload_pos < r->upload_split)
        return upload_copy(r, p, room, r->upload_split);
    if (r->file_left > 0) {
        if ((curl_off_t)room > r->file_left)
            room = (size_t)r->file_left;
        bytes = fread(p, 1, room, r->file);
        if (bytes == 0) {
            refuse(r, REFUSED_FILE, "the file to upload ended before its size (changed while sent?)");
            return CURL_READFUNC_ABORT;
        }
        r->file_left -= (curl_off_t)bytes;
        return bytes;
    }
    return upload_copy(r, p, room, r->upload.len);
}

/* Rewinds a file body that may be sent again (not `once`): libcurl asks
 * for offset 0 before it re-sends on a fresh connection. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
    request_t *r = ((easy_t *)ud)->req;
    if (r == NULL || origin != SEEK_SET || offset != 0)
        return CURL_SEEKFUNC_CANTSEEK;
    if (r->file != NULL && fseek(r->file, 0L, SEEK_SET) != 0)
        return CURL_SEEKFUNC_FAIL;
    r->upload_pos = 0;
    r->file_left = r->file_size;
    return CURL_SEEKFUNC_OK;
}

/* ---------------------------------------------------------------- helpers */

static http_t *check_http(lua_State *L, int idx)
{
    http_t *h = luaL_checkudata(L, idx, HTTP_MT);
    if (h->multi == NULL)
        luaL_error(L, "stream.http: client is closed");
    return h;
}

/* Seconds as whole milliseconds, at least 1. */
static long seconds_ms(lua_Number s)
{
    long v;
    if (s > 86400)
        return MS_PER_DAY;
    v = (long)(s * 1000.0 + 0.5);
    return v < 1 ? 1 : v;
}

/* A required option in seconds, as milliseconds. */
static long opt_ms(lua_State *L, int t, const char *key)
{
    lua_Number s;
    lua_getfield(L, t, key);
    s = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(s > 0) || s > 86400)
        luaL_error(L, "stream.http: option '%s' must be a number of seconds in (0, 86400]", key);
    lua_pop(L, 1);
    return seconds_ms(s);
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

static void easy_free(easy_t *ez)
{
    if (ez->e != NULL)
        curl_easy_cleanup(ez->e);
    free(ez);
}

/* Transfers in the multi handle (in flight and not queued). */
static int active(const http_t *h)
{
    return (int)(h->inflight - h->nqueued);
}

static void enqueue(http_t *h, request_t *r)
{
    r->qnext = NULL;
    r->qprev = h->qtail;
    if (h->qtail != NULL)
        h->qtail->qnext = r;
    else
        h->qhead = r;
    h->qtail = r;
    r->queued = 1;
    h->nqueued++;
}

static void unqueue(http_t *h, request_t *r)
{
    if (r->qprev != NULL)
        r->qprev->qnext = r->qnext;
    else
        h->qhead = r->qnext;
    if (r->qnext != NULL)
        r->qnext->qprev = r->qprev;
    else
        h->qtail = r->qprev;
    r->qprev = r->qnext = NULL;
    r->queued = 0;
    h->nqueued--;
}

/* Whether the pool can take one more idle handle (growing it if need be). */
static int pool_room(http_t *h)
{
    easy_t **np;
    int nroom;
    if (h->npool < h->room)
        return 1;
    if (h->room >= POOL_MAX)
        return 0;
    nroom = h->room * 2 < POOL_MAX ? h->room * 2 : POOL_MAX;
    np = realloc(h->pool, (size_t)nroom * sizeof(easy_t *));
    if (np == NULL)
        return 0;
    h->pool = np;
    h->room = nroom;
    return 1;
}

/* Detaches the request from its transfer (the easy handle back to the
 * pool) and frees its own header list, which nothing points at after that:
 * a pooled handle is given the shared list again. Idempotent. */
static void request_release(request_t *r)
{
    http_t *h = r->http;
    easy_t *ez = r->easy;
    if (r->queued && h != NULL) {
        unqueue(h, r);
        h->inflight--;
    }
    if (ez != NULL) {
        if (r->in_multi && h != NULL && h->multi != NULL) {
            curl_multi_remove_handle(h->multi, ez->e);
            h->inflight--;
        }
        r->in_multi = 0;
        ez->req = NULL;
        if (ez->e != NULL && h != NULL && h->multi != NULL && pool_room(h)) {
            if (ez->state & ST_OWN_HEADERS) {
                curl_easy_setopt(ez->e, CURLOPT_HTTPHEADER, h->base);
                ez->state &= ~(ST_OWN_HEADERS | ST_BODY_HEADERS);
            }
            h->pool[h->npool++] = ez;
        } else {
            easy_free(ez);
        }
        r->easy = NULL;
    }
    r->http = NULL;
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    r->own_headers = 0;
    if (r->file != NULL)
        fclose(r->file);
    r->file = NULL;
}

/* Whether any byte of the request was written (libcurl counts the bytes of
 * the request it wrote, headers included, from 0 for each transfer). */
static int request_sent(request_t *r)
{
    long size = 0;
    if (r->easy == NULL)
        return 1;
    curl_easy_getinfo(r->easy->e, CURLINFO_REQUEST_SIZE, &size);
    return size > 0;
}


/* Pushes the http userdata's uservalue table: requests in flight are
 * anchored there (request pointer -> request userdata), and [1] is the done
 * list, the submitted requests that finished and perform has not handed
 * back yet. */
static void push_uservalue(lua_State *L, int http_idx)
{
#if LUA_VERSION_NUM >= 504
    lua_getiuservalue(L, http_idx, 1);
#elif LUA_VERSION_NUM >= 502
    lua_getuservalue(L, http_idx);
#else
    lua_getfenv(L, http_idx);
#endif
}

/* Anchors the request at index req_idx (and its owner at owner_idx, 0 for
 * none) in the uservalue table while it is in flight. */
static void anchor(lua_State *L, int http_idx, http_t *h, request_t *r, int req_idx, int owner_idx)
{
    int slot = h->nfreeslots > 0 ? h->freeslots[--h->nfreeslots] : ++h->nextslot;
    push_uservalue(L, http_idx);
    lua_pushvalue(L, req_idx);
    lua_rawseti(L, -2, 2 * slot);
    if (owner_idx) {
        lua_pushvalue(L, owner_idx);
        lua_rawseti(L, -2, 2 * slot + 1);
    }
    lua_pop(L, 1);
    r->slot = slot;
    r->owned = owner_idx != 0;
}

/* Lets go of a request's anchor (the uservalue table at index uv). */
static void unanchor(lua_State *L, int uv, http_t *h, request_t *r)
{
    int slot = r->slot;
    lua_pushnil(L);
    lua_rawseti(L, uv, 2 * slot);
    if (r->owned) {
        lua_pushnil(L);
        lua_rawseti(L, uv, 2 * slot + 1);
    }
    r->slot = 0;
    r->owned = 0;
    if (h->nfreeslots == h->capfreeslots) {
        int ncap = h->capfreeslots > 0 ? h->capfreeslots * 2 : 64;
        int *nf = realloc(h->freeslots, (size_t)ncap * sizeof(int));
        if (nf == NULL)
            return;             /* the slot number is not reused: no harm */
        h->freeslots = nf;
        h->capfreeslots = ncap;
    }
    h->freeslots[h->nfreeslots++] = slot;
}

/* A request that has finished (done set, released): onto the done list
 * when submitted (its owner, when submit was given one), and no longer
 * anchored. */
static void finished(lua_State *L, int http_idx, http_t *h, request_t *r)
{
    int uv;
    if (r->slot == 0)
        return;                 /* the blocking slot: neither listed nor anchored */
    push_uservalue(L, http_idx);
    uv = lua_gettop(L);
    if (r->listed) {
        lua_rawgeti(L, uv, 1);
        lua_rawgeti(L, uv, r->owned ? 2 * r->slot + 1 : 2 * r->slot);
        lua_rawseti(L, -2, ++h->ndone);
        lua_pop(L, 1);
    }
    unanchor(L, uv, h, r);
    lua_pop(L, 1);
}

/* Ends a queued request without a transfer (nothing was sent). */
static void fail_queued(lua_State *L, int http_idx, http_t *h, request_t *r, CURLcode code,
                        const char *why)
{
    r->result = code;
    snprintf(r->errbuf, sizeof(r->errbuf), "%s", why);
    r->sent = 0;
    r->done = 1;
    request_release(r);
    finished(L, http_idx, h, r);
}

/* Adds queued transfers while fewer than `limit` are in the multi handle.
 * The time one waited counts against its timeout; one left with less than
 * QUEUE_MIN_LEFT_MS of it fails as a timeout there, unsent (it could not
 * be answered in time, and would only reach the server). */
static void pump_queue(lua_State *L, int http_idx, http_t *h)
{
    while (h->qhead != NULL && h->multi != NULL && active(h) < h->limit) {
        request_t *r = h->qhead;
        easy_t *ez = r->easy;
        long waited = (long)((stream_monotime() - r->queued_at) * 1000.0);
        unqueue(h, r);
        h->inflight--;          /* counted again below once added */
        if (ez->timeout_ms > 0 && waited >= ez->timeout_ms - QUEUE_MIN_LEFT_MS) {
            fail_queued(L, http_idx, h, r, CURLE_OPERATION_TIMEDOUT,
                        "timed out waiting for a free connection");
            continue;
        }
        if (ez->timeout_ms > 0 && waited > 0) {
            ez->timeout_ms -= waited;
            curl_easy_setopt(ez->e, CURLOPT_TIMEOUT_MS, ez->timeout_ms);
        }
        if (curl_multi_add_handle(h->multi, ez->e) != CURLM_OK) {
            fail_queued(L, http_idx, h, r, CURLE_FAILED_INIT, "cannot start the transfer");
            continue;
        }
        r->in_multi = 1;
        h->inflight++;
    }
}

/* Reads what finished; runs outside any curl callback. */
static void collect(lua_State *L, int http_idx, http_t *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        easy_t *ez = NULL;
        request_t *r;
        long nconn = 0;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&ez);
        if (ez == NULL || (r = ez->req) == NULL)
            continue;
        r->result = msg->data.result;
        if (r->result != CURLE_OK)
            memcpy(r->errbuf, ez->errbuf, sizeof(r->errbuf));
        curl_easy_getinfo(ez->e, CURLINFO_RESPONSE_CODE, &r->status);
        curl_easy_getinfo(ez->e, CURLINFO_NUM_CONNECTS, &nconn);
        h->connects += nconn;
        r->reused = nconn == 0;
        /* a failed rewind means a body went out on a connection that died */
        r->sent = r->result == CURLE_OK || r->result == CURLE_SEND_FAIL_REWIND || request_sent(r);
        r->done = 1;
        request_release(r);   /* msg is invalid from here on */
        finished(L, http_idx, h, r);
    }
    if (h->qhead != NULL)
        pump_queue(L, http_idx, h);
}

/* --------------------------------------------------------------- requests */

/* A string element of the parts table at index 4, left on the stack (so
 * it stays reachable while the call uses it). */
static const char *part_string(lua_State *L, int i, size_t *len)
{
    lua_rawgeti(L, 4, i);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "stream.http: body parts must be {prefix, path, size, suffix}");
    return lua_tolstring(L, -1, len);
}

/* A body {prefix, path, size, suffix} (the stack must be set to 7). */
static void read_parts(lua_State *L, call_t *c)
{
    size_t plen;
    lua_Number size;
    c->body = part_string(L, 1, &c->blen);
    c->path = part_string(L, 2, &plen);
    c->suffix = part_string(L, 4, &c->slen);
    lua_rawgeti(L, 4, 3);
    size = lua_tonumber(L, -1);
    if (!lua_isnumber(L, -1) || size < 0 || size != (lua_Number)(curl_off_t)size
        || strlen(c->path) != plen)
        luaL_error(L, "stream.http: body parts must be {prefix, path, size, suffix}");
    lua_pop(L, 1);
    c->fsize = (curl_off_t)size;
}

/* Method, URL, body, timeout, once and the own header list from the stack (2..7). */
static void read_call(lua_State *L, http_t *h, call_t *c)
{
    lua_Number tmo;
    c->method = luaL_checkstring(L, 2);
    c->url = luaL_checkstring(L, 3);
    c->blen = 0;
    c->parts = lua_istable(L, 4);
    if (c->parts)
        read_parts(L, c);
    else
        c->body = luaL_optlstring(L, 4, NULL, &c->blen);
    c->total = (curl_off_t)c->blen;
    tmo = luaL_optnumber(L, 5, 0);
    c->timeout_ms = tmo > 0 ? seconds_ms(tmo) : h->timeout_ms;
    c->once = lua_toboolean(L, 6);
    c->headers = 0;
    if (!lua_isnoneornil(L, 7)) {
        luaL_checktype(L, 7, LUA_TTABLE);
        c->headers = 7;
    }
}

/* The call's own header list, made into the request's (which frees it
 * whatever happens next: the list is never a bare allocation across a call
 * that can raise). */
static void own_headers(lua_State *L, request_t *r, const call_t *c)
{
    if (c->headers == 0)
        return;
    r->own_headers = 1;
    if (!append_headers(L, c->headers, &r->headers))
        luaL_error(L, "stream.http: headers must be a list of strings");
}

/* A new easy handle with the options every request of this client shares;
 * NULL when libcurl or malloc fails. */
static easy_t *easy_new(http_t *h)
{
    easy_t *ez = calloc(1, sizeof(easy_t));
    CURL *e;
    if (ez == NULL)
        return NULL;
    ez->e = e = curl_easy_init();
    if (e == NULL) {
        free(ez);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)ez);
    if (h->share != NULL)
        curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ez->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, ez);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, ez);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->base);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    ez->timeout_ms = h->timeout_ms;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->verify ? 2L : 0L);
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (h->proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, h->proxy);
    if (h->user_agent)
        curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
    return ez;
}

/* The header list of one transfer: the request's own, or the shared one
 * for requests with or without a body. The new state. */
static int set_header_list(http_t *h, request_t *r, easy_t *ez, int st, int body_headers)
{
    if (r->own_headers) {
        /* request_release sets the shared list again */
        curl_easy_setopt(ez->e, CURLOPT_HTTPHEADER, r->headers);
        return (st & ~ST_BODY_HEADERS) | ST_OWN_HEADERS;
    }
    if ((st & ST_OWN_HEADERS) || (st & ST_BODY_HEADERS) != body_headers) {
        curl_easy_setopt(ez->e, CURLOPT_HTTPHEADER, body_headers ? h->base_body : h->base);
        return (st & ~(ST_OWN_HEADERS | ST_BODY_HEADERS)) | body_headers;
    }
    return st;
}

/* A seek callback for a file body that may be sent again, none otherwise.
 * The new state. */
static int set_seek(easy_t *ez, int st, int seek)
{
    if (seek && !(st & ST_SEEK)) {
        curl_easy_setopt(ez->e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(ez->e, CURLOPT_SEEKDATA, ez);
        return st | ST_SEEK;
    }
    if (!seek && (st & ST_SEEK)) {
        curl_easy_setopt(ez->e, CURLOPT_SEEKFUNCTION, (curl_seek_callback)NULL);
        curl_easy_setopt(ez->e, CURLOPT_SEEKDATA, (void *)NULL);
        return st & ~ST_SEEK;
    }
    return st;
}

/* Sets what one transfer needs beyond easy_new's options, and undoes what
 * the handle's previous request set that this one must not carry: after
 * this, the handle is configured as a fresh one given the same call. */
static void configure(http_t *h, request_t *r, easy_t *ez, const call_t *c)
{
    CURL *e = ez->e;
    int st = ez->state;
    int body_headers = c->body != NULL ? ST_BODY_HEADERS : 0;
    ez->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    if (c->timeout_ms != ez->timeout_ms) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        ez->timeout_ms = c->timeout_ms;
    }
    st = set_header_list(h, r, ez, st, body_headers);
    if (c->body == NULL) {
        if (st & (ST_POSTFIELDS | ST_READ)) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
            curl_easy_setopt(e, CURLOPT_READFUNCTION, (curl_read_callback)NULL);
            curl_easy_setopt(e, CURLOPT_READDATA, (void *)NULL);
            st &= ~(ST_POSTFIELDS | ST_READ);
        }
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);   /* after POSTFIELDS, which means POST */
    } else if (r->reader) {
        if (st & ST_POSTFIELDS)
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, c->total);
        if (!(st & ST_READ)) {
            curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(e, CURLOPT_READDATA, ez);
        }
        st = (st & ~ST_POSTFIELDS) | ST_READ;
    } else {
        if (st & ST_READ) {
            curl_easy_setopt(e, CURLOPT_READFUNCTION, (curl_read_callback)NULL);
            curl_easy_setopt(e, CURLOPT_READDATA, (void *)NULL);
        }
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->blen);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, c->body);
        st = (st & ~ST_READ) | ST_POSTFIELDS;
    }
    st = set_seek(ez, st, c->parts && !c->once);
    if (strcmp(c->method, "GET") == 0) {
        if (st & ST_CUSTOM)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
        st &= ~ST_CUSTOM;
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, c->method);
        st |= ST_CUSTOM;
    }
    ez->state = st;
}

static request_t *new_request(lua_State *L)
{
    request_t *r = stream_newuserdata(L, sizeof(request_t));
    memset(r, 0, sizeof(*r));
    r->done = 1;             /* "closed" until a transfer is attached */
    luaL_setmetatable(L, REQUEST_MT);
    return r;
}

/* The bytes on_read hands out from memory (a `once` body, or a file's
 * prefix and suffix); 0 when out of memory. */
static int fill_upload(request_t *r, const call_t *c)
{
    r->upload_pos = 0;
    r->upload.len = 0;
    r->reader = c->parts || (c->body != NULL && c->once && c->blen > 0);
    if (!r->reader)
        return 1;
    if (c->blen > 0 && !membuf_add(&r->upload, c->body, c->blen))
        return 0;
    r->upload_split = r->upload.len;
    if (c->parts && c->slen > 0 && !membuf_add(&r->upload, c->suffix, c->slen))
        return 0;
    r->file_size = r->file_left = c->parts ? c->fsize : 0;
    return 1;
}

/* Opens a parts body's file into the request (which closes it whatever
 * happens next); 1, or 0 with nil, failure pushed. */
static int open_file(lua_State *L, request_t *r, call_t *c)
{
    if (!c->parts)
        return 1;
    r->file = fopen(c->path, "rb");
    if (r->file == NULL) {
        lua_pushnil(L);
        lua_createtable(L, 0, 4);
        lua_pushfstring(L, "cannot open the file to upload: %s", strerror(errno));
        lua_setfield(L, -2, "message");
        lua_pushliteral(L, "invalid");
        lua_setfield(L, -2, "kind");
        lua_pushliteral(L, "file");
        lua_setfield(L, -2, "reason");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "sent");
        return 0;
    }
    c->total = (curl_off_t)c->blen + c->fsize + (curl_off_t)c->slen;
    return 1;
}

/* The one way a transfer starts, for request and submit: pushes the
 * request userdata, anchored in the http userdata at index 1. */
static void start_call(lua_State *L, http_t *h, request_t *r, const call_t *c)
{
    easy_t *ez = h->npool > 0 ? h->pool[--h->npool] : easy_new(h);
    CURLMcode mc;
    if (ez == NULL)
        luaL_error(L, "stream.http: cannot create a transfer");
    r->easy = ez;
    ez->req = r;
    r->http = h;
    r->max_bytes = (size_t)h->max_response;
    r->max_head = h->max_header;
    if (!fill_upload(r, c)) {
        request_release(r);
        luaL_error(L, "stream.http: out of memory");
    }
    configure(h, r, ez, c);
    if (h->limit > 0 && active(h) >= h->limit) {
        r->queued_at = stream_monotime();
        enqueue(h, r);
    } else {
        mc = curl_multi_add_handle(h->multi, ez->e);
        if (mc != CURLM_OK) {
            request_release(r);  /* never counted in flight: in_multi is 0 */
            luaL_error(L, "stream.http: %s", curl_multi_strerror(mc));
        }
        r->in_multi = 1;
    }
    h->inflight++;
    h->requests++;
    r->done = 0;
}

/* The request userdata (pushed), or NULL with nil, failure pushed. */
static request_t *submit_call(lua_State *L, http_t *h, call_t *c, int owner_idx)
{
    request_t *r = new_request(L);
    int ridx = lua_gettop(L);
    own_headers(L, r, c);
    if (!open_file(L, r, c))
        return NULL;
    start_call(L, h, r, c);
    anchor(L, 1, h, r, ridx, owner_idx);
    return r;
}

/* Buffers of the blocking slot are kept for the next call, unless large. */
#define KEEP_BYTES (64 * 1024)

static void membuf_trim(membuf *m)
{
    m->len = 0;
    if (m->cap > KEEP_BYTES)
        membuf_free(m);
}

/* The blocking slot, emptied for a new call (its buffers kept). */
static request_t *blocking_slot(http_t *h)
{
    request_t *r = &h->blocking;
    membuf body = r->body, head = r->head, upload = r->upload;
    request_release(r);   /* a call that raised while in flight */
    memset(r, 0, sizeof(*r));
    r->body = body;
    r->head = head;
    r->upload = upload;
    r->body.len = r->head.len = r->upload.len = 0;
    r->blocking = 1;
    r->done = 1;
    return r;
}

static void drive_sockets(lua_State *L, int http_idx, http_t *h, long wait_ms);
static int hand_done(lua_State *L, http_t *h, int done);

/* Drives transfers once; waits up to wait_ms for activity first. In socket
 * mode (http:watch) through drive_sockets; otherwise one curl_multi_perform
 * per call (it runs every transfer in the multi handle, so each one
 * counts): the wait comes first, and a transfer added since the last call
 * makes libcurl's timer due at once, so it does not wait. (Socket mode runs
 * only the transfers that are ready, a few percent less work per call, but
 * libcurl then keeps a socket hash of 911 buckets, ~29 KiB, per multi
 * handle: so only a client on a foreign loop pays for it.) */
static void drive(lua_State *L, int http_idx, http_t *h, long wait_ms)
{
    if (h->watch != NULL) {
        drive_sockets(L, http_idx, h, wait_ms);
        return;
    }
    if (wait_ms > 0 && active(h) > 0) {
        long t = -1;
        curl_multi_timeout(h->multi, &t);
        if (t >= 0 && t < wait_ms)
            wait_ms = t;
        if (wait_ms > 0)
            curl_multi_poll(h->multi, NULL, 0, (int)wait_ms, NULL);
    }
    curl_multi_perform(h->multi, &h->running);
    collect(L, http_idx, h);
}

/* ----------------------------------------------------------- socket mode */

/* Changes kept for a foreign loop before they are replaced by the whole
 * set (a loop that stopped asking must not make them grow without end). */
#define MAX_CHANGES 1024
/* Sockets polled on the stack by a blocking call; more are allocated. */
#define POLL_STACK 64

static int sockev_push(sockev_t **a, int *n, int *cap, curl_socket_t fd, int what)
{
    if (*n == *cap) {
        int ncap = *cap > 0 ? *cap * 2 : 16;
        sockev_t *na = realloc(*a, (size_t)ncap * sizeof(sockev_t));
        if (na == NULL)
            return 0;
        *a = na;
        *cap = ncap;
    }
    (*a)[*n].fd = fd;
    (*a)[*n].what = what;
    (*n)++;
    return 1;
}

/* CURLMOPT_SOCKETFUNCTION: records, calls nothing. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *sockp)
{
    watch_t *w = ud;
    int i, mask = what == CURL_POLL_REMOVE ? 0 : what;
    (void)e;
    (void)sockp;
    for (i = 0; i < w->nset && w->set[i].fd != fd; i++)
        ;
    if (mask == 0) {
        if (i < w->nset)
            w->set[i] = w->set[--w->nset];
    } else if (i < w->nset) {
        w->set[i].what = mask;
    } else if (!sockev_push(&w->set, &w->nset, &w->capset, fd, mask)) {
        return -1;              /* out of memory: libcurl fails the transfer */
    }
    if (w->nchanges >= MAX_CHANGES) {
        w->reset = 1;
        w->nchanges = 0;
    }
    if (!w->reset && !sockev_push(&w->changes, &w->nchanges, &w->capchanges, fd, mask))
        w->reset = 1;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: the deadline, from now. */
static int on_timer(CURLM *m, long ms, void *ud)
{
    watch_t *w = ud;
    (void)m;
    w->timer_at = ms < 0 ? -1.0 : stream_monotime() + (double)ms / 1000.0;
    w->timer_changed = 1;
    return 0;
}

static void watch_free(http_t *h)
{
    if (h->watch == NULL)
        return;
    free(h->watch->set);
    free(h->watch->changes);
    free(h->watch);
    h->watch = NULL;
}

/* One curl_multi_socket_action (fd CURL_SOCKET_TIMEOUT: libcurl's timer,
 * which it arms again as it needs); the caller collects. */
static void socket_action(http_t *h, curl_socket_t fd, int mask)
{
    if (fd == CURL_SOCKET_TIMEOUT)
        h->watch->timer_at = -1.0;
    curl_multi_socket_action(h->multi, fd, mask, &h->running);
}

static int poll_mask(short revents)
{
    int mask = 0;
    if (revents & POLLIN)
        mask |= CURL_CSELECT_IN;
    if (revents & POLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (revents & (POLLERR | POLLHUP | POLLNVAL))
        mask |= CURL_CSELECT_ERR;
    return mask;
}

/* drive() in socket mode: waits in poll(2) on the set the socket callback
 * keeps, tells libcurl which sockets are ready, runs libcurl's timer when it
 * is due, and collects once. A timer already due (a transfer was just
 * added) is run at once, with no poll: its transfer's first bytes go out
 * now, and the next drive waits for the answers. */
static void drive_sockets(lua_State *L, int http_idx, http_t *h, long wait_ms)
{
    watch_t *w = h->watch;
    struct pollfd stack[POLL_STACK], *fds = stack;
    int i, n = w->nset, ready = 0;
    if (w->timer_at >= 0) {
        double left = (w->timer_at - stream_monotime()) * 1000.0;
        long t = left > 0 ? (long)(left + 0.999) : 0;
        if (t < wait_ms)
            wait_ms = t;
        if (t == 0)
            n = 0;
    }
    if (n > POLL_STACK && (fds = malloc((size_t)n * sizeof(*fds))) == NULL)
        luaL_error(L, "stream.http: out of memory");
    for (i = 0; i < n; i++) {
        fds[i].fd = w->set[i].fd;
        fds[i].events = (short)(((w->set[i].what & CURL_POLL_IN) ? POLLIN : 0)
                                | ((w->set[i].what & CURL_POLL_OUT) ? POLLOUT : 0));
        fds[i].revents = 0;
    }
    if (n > 0 || wait_ms > 0)
        ready = poll(fds, (nfds_t)n, wait_ms > 0 ? (int)wait_ms : 0);
    for (i = 0; ready > 0 && i < n; i++) {
        if (fds[i].revents != 0)
            socket_action(h, fds[i].fd, poll_mask(fds[i].revents));
    }
    if (fds != stack)
        free(fds);
    if (w->timer_at >= 0 && stream_monotime() >= w->timer_at)
        socket_action(h, CURL_SOCKET_TIMEOUT, 0);
    collect(L, http_idx, h);
}

/* http:watch(): socket mode, for a foreign event loop: libcurl's socket
 * and timer callbacks record into h->watch from now on. Only with nothing
 * in flight (libcurl would not report the sockets of transfers under way). */
static int l_http_watch(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    watch_t *w;
    if (h->multi == NULL)
        return luaL_error(L, "stream.http: closed");
    if (h->watch != NULL)
        return 0;
    if (h->inflight > 0)
        return luaL_error(L, "stream.http: watch with transfers in flight");
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return luaL_error(L, "stream.http: out of memory");
    w->timer_at = -1.0;
    h->watch = w;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, w);
    return 0;
}

/* n, timer, reset = http:events(list): the socket changes since the last
 * call as list[2i-1] = fd, list[2i] = what (1 read, 2 write, 3 both, 0 no
 * longer), i = 1..n; with reset true they are instead the whole set (every
 * socket not in it is no longer watched). timer: seconds until libcurl's
 * timer is due (0 when it is), false for none, nil when unchanged. */
static int l_http_events(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    watch_t *w = h->watch;
    const sockev_t *ev;
    int i, n, reset;
    luaL_checktype(L, 2, LUA_TTABLE);
    if (w == NULL)
        return luaL_error(L, "stream.http: not watching (http:watch)");
    reset = w->reset;
    ev = reset ? w->set : w->changes;
    n = reset ? w->nset : w->nchanges;
    for (i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)ev[i].fd);
        lua_rawseti(L, 2, 2 * i + 1);
        lua_pushinteger(L, ev[i].what);
        lua_rawseti(L, 2, 2 * i + 2);
    }
    w->nchanges = 0;
    w->reset = 0;
    lua_pushinteger(L, n);
    if (!w->timer_changed) {
        lua_pushnil(L);
    } else if (w->timer_at < 0) {
        lua_pushboolean(L, 0);
    } else {
        double left = w->timer_at - stream_monotime();
        lua_pushnumber(L, left > 0 ? (lua_Number)left : 0);
    }
    w->timer_changed = 0;
    lua_pushboolean(L, reset);
    return 3;
}

/* running [, n] = http:action(fd, what [, done]): a watched socket is ready
 * (what: 1 readable, 2 writable, 4 error, or 0 to let libcurl find out), or
 * with fd nil, libcurl's timer fired. done as for http:perform. */
static int l_http_action(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    curl_socket_t fd = CURL_SOCKET_TIMEOUT;
    int mask = (int)luaL_optinteger(L, 3, 0);
    if (h->watch == NULL || h->multi == NULL)
        return luaL_error(L, "stream.http: not watching (http:watch), or closed");
    if (!lua_isnil(L, 2))
        fd = (curl_socket_t)luaL_checkinteger(L, 2);
    socket_action(h, fd, fd == CURL_SOCKET_TIMEOUT ? 0 : mask);
    collect(L, 1, h);
    lua_pushinteger(L, (lua_Integer)h->running);
    if (lua_type(L, 4) != LUA_TTABLE)
        return 1;
    lua_pushinteger(L, (lua_Integer)hand_done(L, h, 4));
    return 2;
}

/* Key of a result's raw header text (its address is unique). */
static const char raw_head_key = 0;

/* A table of the header lines in p[0..len), names lower-cased. */
static void push_headers(lua_State *L, const char *p, size_t len)
{
    const char *end = p + len;
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

/* __index of a result: `headers`, parsed from the raw text and kept;
 * `reused`, the closure's upvalue (one closure per metatable). */
static int l_result_index(lua_State *L)
{
    const char *text;
    size_t len = 0;
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    if (strcmp(lua_tostring(L, 2), "reused") == 0) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return 1;
    }
    if (strcmp(lua_tostring(L, 2), "headers") != 0)
        return 0;
    lua_pushlightuserdata(L, (void *)&raw_head_key);
    lua_rawget(L, 1);
    text = lua_tolstring(L, -1, &len);
    push_headers(L, text != NULL ? text : "", text != NULL ? len : 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "headers");
    return 1;
}

/* Failures libcurl finds in the answer itself: it breaks HTTP. */
static int malformed_result(const request_t *r)
{
    return r->sent && (r->result == CURLE_WEIRD_SERVER_REPLY
        || r->result == CURLE_UNSUPPORTED_PROTOCOL     /* e.g. a 20-digit status */
        || r->result == CURLE_BAD_CONTENT_ENCODING);
}

/* nil, {kind=, message=, sent=, reason=} for a failed transfer. */
static int push_failure(lua_State *L, request_t *r)
{
    const char *kind = "transport", *reason;
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    if (r->too_large) {
        lua_pushfstring(L, "response larger than max_response_bytes (%d)", (int)r->max_bytes);
        reason = "limit";
    } else if (r->refused == REFUSED_LIMIT
        || (r->result == CURLE_OUT_OF_MEMORY && r->sent && !r->head_done)) {
        /* libcurl refuses a single header line over its own cap as "out of memory" */
        lua_pushfstring(L, "answer's headers larger than max_header_bytes (%d)", (int)r->max_head);
        reason = "limit";
    } else if (r->refused == REFUSED_FILE) {
        lua_pushstring(L, r->why);
        reason = "transfer";
    } else if (r->refused == REFUSED_MALFORMED || malformed_result(r)) {
        if (r->refused)
            lua_pushstring(L, r->why);
        else
            lua_pushfstring(L, "malformed answer: %s",
                r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(r->result));
        reason = "malformed";
    } else {
        if (r->result == CURLE_OPERATION_TIMEDOUT)
            kind = "timeout";
        lua_pushstring(L, r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(r->result));
        reason = r->closed ? "closed" : r->sent ? "transfer" : "connect";
    }
    lua_setfield(L, -2, "message");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushboolean(L, r->sent);
    lua_setfield(L, -2, "sent");
    return 2;
}

static int push_result(lua_State *L, request_t *r)
{
    if (r->result != CURLE_OK)
        return push_failure(L, r);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)r->status);
    lua_setfield(L, -2, "status");
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");
    lua_pushlightuserdata(L, (void *)&raw_head_key);
    lua_pushlstring(L, r->head.data ? r->head.data : "", r->head.len);
    lua_rawset(L, -3);
    luaL_setmetatable(L, r->reused ? RESULT_MT : RESULT_NEW_MT);
    return 1;
}

static int l_http_request(lua_State *L)
{
    http_t *h = check_http(L, 1);
    request_t *r;
    call_t c;
    int n;
    lua_settop(L, 7);
    read_call(L, h, &c);
    r = blocking_slot(h);
    own_headers(L, r, &c);
    if (!open_file(L, r, &c)) {
        request_release(r);
        return 2;
    }
    start_call(L, h, r, &c);
    while (!r->done && h->multi != NULL) {
        drive(L, 1, h, BLOCKING_POLL_MS);
        if (!r->done && lua_gethook(L) != NULL) {
            /* back in Lua for a moment (upvalue 1, an empty function): a
             * hook a signal handler set (lua.c's SIGINT) runs now, and may
             * raise; without a hook nothing is called */
            lua_pushvalue(L, lua_upvalueindex(1));
            lua_call(L, 0, 0);
        }
    }
    n = push_result(L, r);
    membuf_trim(&r->body);
    membuf_trim(&r->head);
    membuf_trim(&r->upload);
    return n;
}

static int l_http_submit(lua_State *L)
{
    http_t *h = check_http(L, 1);
    request_t *r;
    call_t c;
    lua_settop(L, 8);
    read_call(L, h, &c);
    r = submit_call(L, h, &c, lua_isnil(L, 8) ? 0 : 8);
    if (r == NULL)
        return 2;
    r->listed = 1;
    return 1;
}


/* Hands the done list over: done[1..n] (done at stack index `done`), the
 * list emptied. Returns n. */
static int hand_done(lua_State *L, http_t *h, int done)
{
    int i, n = h->ndone;
    push_uservalue(L, 1);
    lua_rawgeti(L, -1, 1);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, done, i);
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
    lua_pop(L, 2);
    h->ndone = 0;
    return n;
}

static int l_http_perform(lua_State *L)
{
    http_t *h = check_http(L, 1);
    lua_Number wait = luaL_optnumber(L, 2, 0);
    long ms = wait > 0 ? (long)(wait * 1000.0 + 0.5) : 0;
    /* "at most": back in Lua every BLOCKING_POLL_MS, so a signal's hook runs */
    drive(L, 1, h, ms < BLOCKING_POLL_MS ? ms : BLOCKING_POLL_MS);
    lua_pushinteger(L, (lua_Integer)h->running);
    if (lua_type(L, 3) != LUA_TTABLE)
        return 1;
    lua_pushinteger(L, (lua_Integer)hand_done(L, h, 3));
    return 2;
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
                    r->sent = request_sent(r);
                    r->closed = 1;
                    r->done = 1;
                    request_release(r);
                }
                lua_pop(L, 1);
            }
            lua_newtable(L);
            lua_rawseti(L, -2, 1);  /* the done list, emptied */
            h->ndone = 0;
        }
        lua_pop(L, 1);
        request_release(&h->blocking);   /* only if a call raised while in flight */
        while (h->npool > 0)
            easy_free(h->pool[--h->npool]);
        curl_multi_cleanup(h->multi);
        h->multi = NULL;
        watch_free(h);
        if (h->share != NULL)
            curl_share_cleanup(h->share);   /* no easy handle is left to use it */
        h->share = NULL;
        curl_slist_free_all(h->base);
        curl_slist_free_all(h->base_body);
        h->base = h->base_body = NULL;
        free(h->ca_file);
        free(h->proxy);
        free(h->user_agent);
        h->ca_file = h->proxy = h->user_agent = NULL;
    }
    membuf_free(&h->blocking.body);
    membuf_free(&h->blocking.head);
    membuf_free(&h->blocking.upload);
    /* also when curl_multi_init failed after the pool was made */
    free(h->pool);
    h->pool = NULL;
    h->pool_cap = h->room = 0;
    free(h->freeslots);
    h->freeslots = NULL;
    h->nfreeslots = h->capfreeslots = 0;
    return 0;
}

static int l_http_tostring(lua_State *L)
{
    http_t *h = luaL_checkudata(L, 1, HTTP_MT);
    lua_pushfstring(L, "stream.http (%s)", h->multi ? "open" : "closed");
    return 1;
}

/* The http userdata, "closed" (no multi handle yet), with its uservalue
 * table holding the empty done list. */
static http_t *new_http(lua_State *L)
{
    http_t *h = stream_newuserdata(L, sizeof(http_t));
    memset(h, 0, sizeof(*h));        /* closed: multi == NULL */
    luaL_setmetatable(L, HTTP_MT);
    lua_newtable(L);
    lua_newtable(L);
    lua_rawseti(L, -2, 1);      /* the done list */
#if LUA_VERSION_NUM >= 504
    lua_setiuservalue(L, -2, 1);
#elif LUA_VERSION_NUM >= 502
    lua_setuservalue(L, -2);
#else
    lua_setfenv(L, -2);
#endif
    return h;
}

/* Whether the option `key` is given; *n its number (0 when not a number). */
static int opt_number(lua_State *L, int t, const char *key, lua_Number *n)
{
    int given;
    lua_getfield(L, t, key);
    given = !lua_isnil(L, -1);
    *n = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    return given;
}

/* The numbers and flags of the options table at t (no resource yet). */
static void read_options(lua_State *L, int t, http_t *h)
{
    lua_Number n;
    h->timeout_ms = opt_ms(L, t, "timeout");
    h->connect_timeout_ms = opt_ms(L, t, "connect_timeout");
    h->verify = 1;
    lua_getfield(L, t, "verify");
    if (lua_type(L, -1) == LUA_TBOOLEAN)
        h->verify = lua_toboolean(L, -1);
    lua_pop(L, 1);
    opt_number(L, t, "max_response_bytes", &n);
    if (!(n >= 1) || n > 2147483647.0)
        luaL_error(L, "stream.http: option 'max_response_bytes' must be a number of bytes in [1, 2^31)");
    h->max_response = (long)n;
    if (opt_number(L, t, "max_header_bytes", &n)) {
        if (!(n >= 1))
            luaL_error(L, "stream.http: option 'max_header_bytes' must be a number of bytes");
        h->max_header = n < 1e15 ? (size_t)n : (size_t)1e15;
    }
    h->pool_cap = POOL_DEFAULT;
    lua_getfield(L, t, "max_connections");
    if (!lua_isnil(L, -1)) {
        n = luaL_checknumber(L, -1);
        if (!(n >= 1) || n > 10000)
            luaL_error(L, "stream.http: option 'max_connections' must be in [1, 10000]");
        h->pool_cap = (int)n;
    }
    lua_pop(L, 1);
}

/* The shared header lists: `headers` on every request, `body_headers`
 * after them on requests with a body. */
static void read_header_lists(lua_State *L, int t, http_t *h)
{
    lua_getfield(L, t, "headers");
    if (!append_headers(L, lua_gettop(L), &h->base)
        || !append_headers(L, lua_gettop(L), &h->base_body))
        luaL_error(L, "stream.http: option 'headers' must be a list of strings");
    lua_pop(L, 1);
    lua_getfield(L, t, "body_headers");
    if (!append_headers(L, lua_gettop(L), &h->base_body))
        luaL_error(L, "stream.http: option 'body_headers' must be a list of strings");
    lua_pop(L, 1);
}

/* What the userdata owns and releases on close, acquired only now that it
 * can release them: the pool, the multi handle, strings, header lists. */
static void acquire(lua_State *L, int t, http_t *h)
{
    h->pool = calloc((size_t)h->pool_cap, sizeof(easy_t *));
    h->room = h->pool != NULL ? h->pool_cap : 0;
    /* A TLS session is kept per easy handle unless shared: without this a
     * connection opened by another handle of the pool is a full handshake. */
    h->share = curl_share_init();
    if (h->share != NULL)
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    h->multi = h->pool != NULL ? curl_multi_init() : NULL;
    if (h->multi == NULL)
        luaL_error(L, "stream.http: cannot create a curl multi handle");
    h->ca_file = opt_str(L, t, "ca_file");
    h->proxy = opt_str(L, t, "proxy");
    h->user_agent = opt_str(L, t, "user_agent");
    read_header_lists(L, t, h);
    lua_getfield(L, t, "max_connections");
    if (!lua_isnil(L, -1)) {
        h->limit = h->pool_cap;
        curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->pool_cap);
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->pool_cap);
    }
    lua_pop(L, 1);
    /* The cache holds every connection the client may have open: libcurl's
     * default (4 x the transfers added at the moment) shrinks, closing
     * kept-alive connections, whenever the transfers in flight drain. */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->pool_cap);
}

static int l_http_new(lua_State *L)
{
    http_t *h;
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    } else {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_settop(L, 1);
    }
    h = new_http(L);
    read_options(L, 1, h);
    acquire(L, 1, h);
    return 1;
}

/* ------------------------------------------------------------ file scan */

/* Bytes read at a time by core.file_contains (plus the needle's length, kept
 * from the end of the previous read so no occurrence is missed at a seam). */
#define SCAN_BYTES 16384
#define SCAN_NEEDLE_MAX 256

/* Whether `needle` occurs in buf[0, n). */
static int has_bytes(const char *buf, size_t n, const char *needle, size_t k)
{
    size_t i;
    for (i = 0; i + k <= n; i++) {
        if (buf[i] == needle[0] && memcmp(buf + i, needle, k) == 0)
            return 1;
    }
    return 0;
}

/* core.file_contains(path, needle): whether the file holds the bytes (a
 * multipart boundary that must not occur in a streamed upload), read
 * through a fixed buffer, so a file of any size costs no memory; nil,
 * message when it cannot be read. The FILE* never outlives the call (no
 * Lua call can raise while it is open). */
static int l_file_contains(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t k, keep = 0, got;
    const char *needle = luaL_checklstring(L, 2, &k);
    char buf[SCAN_BYTES + SCAN_NEEDLE_MAX];
    int found = 0, failed;
    FILE *f;
    luaL_argcheck(L, k > 0 && k <= SCAN_NEEDLE_MAX, 2, "1 to 256 bytes");
    f = fopen(path, "rb");
    if (f == NULL) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    while (!found && (got = fread(buf + keep, 1, SCAN_BYTES, f)) > 0) {
        found = has_bytes(buf, keep + got, needle, k);
        keep += got;
        if (keep > k - 1) {
            memmove(buf, buf + keep - (k - 1), k - 1);
            keep = k - 1;
        }
    }
    failed = ferror(f);
    fclose(f);
    if (failed && !found) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: read error", path);
        return 2;
    }
    lua_pushboolean(L, found);
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
    membuf_free(&r->upload);
    return 0;
}

void stream_http_open(lua_State *L)
{
    static const luaL_Reg http_methods[] = {
        {"submit", l_http_submit},
        {"perform", l_http_perform},
        {"watch", l_http_watch},
        {"events", l_http_events},
        {"action", l_http_action},
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
        if (luaL_loadstring(L, "return") != 0)
            lua_error(L);
        lua_pushcclosure(L, l_http_request, 1);
        lua_setfield(L, -2, "request");
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
    if (luaL_newmetatable(L, RESULT_MT)) {
        lua_pushboolean(L, 1);
        lua_pushcclosure(L, l_result_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, RESULT_NEW_MT)) {
        lua_pushboolean(L, 0);
        lua_pushcclosure(L, l_result_index, 1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_http_new);
    lua_setfield(L, -2, "http_new");
    lua_pushcfunction(L, l_file_contains);
    lua_setfield(L, -2, "file_contains");
    {
        /* curl_version_info, not curl_version: the latter initialises
         * LDAP/SASL, which never frees what it allocates. */
        const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
        lua_pushfstring(L, "libcurl/%s %s", v->version, v->ssl_version ? v->ssl_version : "no-tls");
        lua_setfield(L, -2, "curl_version");
    }
}
