/*
 * bench/rawcurl.c - the physical limit for lua-stream's benchmarks: the same
 * HTTP requests lua-stream sends (same URL, headers and bodies), made with raw
 * libcurl and nothing else (no JSON, no Lua; answers are only counted).
 *
 *   rawcurl [-X METHOD] [-c CONC] [-n N] [-w WARMUP] [-d BODYFILE] [-H 'K: v']... URL
 *
 * -c 1 (default): one kept-alive easy handle, curl_easy_perform in a loop.
 * -c N > 1: one multi handle with N easy handles in flight; a finished one is
 * re-armed and re-added at once, so N stay in flight (N kept-alive connections;
 * CURLMOPT_MAXCONNECTS = N so none is closed in between).
 * "@N@" in the URL or the body is replaced by a request counter on every request
 * (unique ids for creates). WARMUP requests run first and are not timed; then N
 * requests are timed with CLOCK_MONOTONIC (and the process's CPU time, user + system,
 * with CLOCK_PROCESS_CPUTIME_ID). Prints one line:
 *
 *   requests=N seconds=S rps=R cpu_us=<CPU microseconds per request> errors=E connects=C
 *
 * (errors: transfers that failed or answered outside 2xx). Built by bench/run:
 * cc -O2 -o bench/out/rawcurl bench/rawcurl.c -lcurl
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#define MAX_HEADERS 32
#define MAX_CONC 1024

static const char *method = "GET";
static const char *url_tpl;
static char *body_tpl;
static struct curl_slist *headers;
static long counter;
static long errors;
static long connects;

typedef struct {
    CURL *easy;
    char url[4096];
    char *body;
    size_t body_cap;
} slot;

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copies tpl into out replacing every "@N@" with n. */
static size_t subst(char *out, size_t cap, const char *tpl, long n)
{
    size_t o = 0;
    char num[32];
    int nl = snprintf(num, sizeof num, "%ld", n);
    while (*tpl) {
        if (tpl[0] == '@' && tpl[1] == 'N' && tpl[2] == '@') {
            if (o + (size_t)nl + 1 > cap)
                break;
            memcpy(out + o, num, (size_t)nl);
            o += (size_t)nl;
            tpl += 3;
        } else {
            if (o + 2 > cap)
                break;
            out[o++] = *tpl++;
        }
    }
    out[o] = '\0';
    return o;
}

static void setup(slot *s)
{
    CURL *e = s->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "stream-lua-client/0.1.0");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body_tpl != NULL) {
        s->body_cap = strlen(body_tpl) + 64;
        s->body = malloc(s->body_cap);
        if (s->body == NULL) {
            perror("malloc");
            exit(1);
        }
    }
}

/* Points the slot at the next request. */
static void arm(slot *s)
{
    long n = counter++;
    subst(s->url, sizeof s->url, url_tpl, n);
    curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
    if (s->body != NULL) {
        size_t len = subst(s->body, s->body_cap, body_tpl, n);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)len);
        curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
    }
}

static void check(CURL *e, CURLcode rc)
{
    long status = 0, nc = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nc);
    connects += nc;
    if (rc != CURLE_OK || status < 200 || status > 299) {
        if (errors < 3)
            fprintf(stderr, "rawcurl: %s status %ld\n", curl_easy_strerror(rc), status);
        errors++;
    }
}

static void run_seq(slot *s, long n)
{
    long i;
    for (i = 0; i < n; i++) {
        arm(s);
        check(s->easy, curl_easy_perform(s->easy));
    }
}

static void run_multi(CURLM *m, slot *slots, int conc, long n)
{
    long started = 0, finished = 0;
    int i, running = 0;
    for (i = 0; i < conc && started < n; i++, started++) {
        arm(&slots[i]);
        curl_multi_add_handle(m, slots[i].easy);
    }
    while (finished < n) {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            slot *s = NULL;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            check(s->easy, msg->data.result);
            finished++;
            curl_multi_remove_handle(m, s->easy);
            if (started < n) {
                started++;
                arm(s);
                curl_multi_add_handle(m, s->easy);
            }
        }
        if (finished < n)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
}

static char *read_file(const char *name)
{
    FILE *f = fopen(name, "rb");
    char *d;
    long len;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
        perror(name);
        exit(2);
    }
    rewind(f);
    d = malloc((size_t)len + 1);
    if (d == NULL || fread(d, 1, (size_t)len, f) != (size_t)len) {
        perror(name);
        exit(2);
    }
    d[len] = '\0';
    while (len > 0 && (d[len - 1] == '\n' || d[len - 1] == '\r'))
        d[--len] = '\0';
    fclose(f);
    return d;
}

int main(int argc, char **argv)
{
    long n = 1000, warm = 100;
    int conc = 1, i;
    slot *slots;
    CURLM *m = NULL;
    double t0, c0, dt, cpu;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && strcmp(a, "-X") == 0)
            method = argv[++i];
        else if (i + 1 < argc && strcmp(a, "-c") == 0)
            conc = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "-n") == 0)
            n = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "-w") == 0)
            warm = atol(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "-d") == 0)
            body_tpl = read_file(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "-H") == 0)
            headers = curl_slist_append(headers, argv[++i]);
        else if (a[0] != '-' && url_tpl == NULL)
            url_tpl = a;
        else {
            fprintf(stderr, "usage: rawcurl [-X METHOD] [-c CONC] [-n N] [-w WARMUP] "
                            "[-d BODYFILE] [-H 'K: v']... URL\n");
            return 2;
        }
    }
    if (url_tpl == NULL || conc < 1 || conc > MAX_CONC || n < 1 || warm < 0) {
        fprintf(stderr, "rawcurl: need a URL, 1 <= -c <= %d, -n >= 1, -w >= 0\n", MAX_CONC);
        return 2;
    }
    if (body_tpl != NULL)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    slots = calloc((size_t)conc, sizeof *slots);
    for (i = 0; i < conc; i++) {
        slots[i].easy = curl_easy_init();
        curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, (char *)&slots[i]);
        setup(&slots[i]);
    }
    if (conc > 1) {
        m = curl_multi_init();
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conc);
    }

    if (warm > 0) {
        if (conc == 1)
            run_seq(&slots[0], warm);
        else
            run_multi(m, slots, conc, warm);
    }
    errors = 0;
    connects = 0;
    t0 = clock_s(CLOCK_MONOTONIC);
    c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (conc == 1)
        run_seq(&slots[0], n);
    else
        run_multi(m, slots, conc, n);
    dt = clock_s(CLOCK_MONOTONIC) - t0;
    cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    printf("requests=%ld seconds=%.6f rps=%.1f cpu_us=%.1f errors=%ld connects=%ld\n",
           n, dt, (double)n / dt, cpu * 1e6 / (double)n, errors, connects);

    for (i = 0; i < conc; i++) {
        if (m != NULL)
            curl_multi_remove_handle(m, slots[i].easy);
        curl_easy_cleanup(slots[i].easy);
        free(slots[i].body);
    }
    if (m != NULL)
        curl_multi_cleanup(m);
    free(slots);
    free(body_tpl);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return errors > 0 ? 1 : 0;
}
