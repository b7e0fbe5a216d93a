/*
 * core.h - the parts of stream.core and how they register themselves.
 *
 * Each *_open function adds its functions to the module table on the top
 * of the stack and leaves the stack as it found it.
 */
#ifndef STREAM_CORE_H
#define STREAM_CORE_H

#include "compat.h"

/* json.c: json_encode, json_decode, null, array, array_mt */
void stream_json_open(lua_State *L);
/* jwt.c: hs256, b64url_encode, b64url_decode */
void stream_jwt_open(lua_State *L);
/* http.c: http_new and the stream.http userdata */
void stream_http_open(lua_State *L);
/* clock.c: monotime, sleep */
void stream_clock_open(lua_State *L);
/* clock.c: the monotonic clock in seconds, as monotime() gives it */
double stream_monotime(void);

#endif
