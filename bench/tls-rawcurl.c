/*
 * bench/tls-rawcurl.c - bench/rawcurl.c over HTTPS with a private CA: the same program,
 * compiled with every easy handle given CURLOPT_CAINFO = $BENCH_CA_FILE (the certificate
 * bench/tls makes at run time) right after curl_easy_init. Nothing else differs.
 * Built by bench/tls: cc -O2 -I bench -o OUT/tls-rawcurl bench/tls-rawcurl.c -lcurl
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <curl/curl.h>

static CURL *tls_easy_init(void)
{
    CURL *e = curl_easy_init();
    const char *ca = getenv("BENCH_CA_FILE");
    if (e != NULL && ca != NULL && ca[0] != '\0')
        curl_easy_setopt(e, CURLOPT_CAINFO, ca);
    return e;
}

#define curl_easy_init tls_easy_init
#include "rawcurl.c"
