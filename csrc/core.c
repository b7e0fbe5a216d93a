/*
 * core.c - luaopen_stream_core: assembles the module `stream.core` from the
 * parts in json.c (codec), jwt.c (HS256, base64url), http.c (libcurl)
 * and clock.c (monotonic time, sleep).
 *
 * It holds no logic of its own. Only luaopen_stream_core is exported.
 */
#include "core.h"

#define STREAM_CORE_VERSION "0.1.0"

#if defined(_WIN32)
#define STREAM_EXPORT __declspec(dllexport)
#else
#define STREAM_EXPORT __attribute__((visibility("default")))
#endif

STREAM_EXPORT int luaopen_stream_core(lua_State *L);

int luaopen_stream_core(lua_State *L)
{
    lua_newtable(L);
    stream_json_open(L);
    stream_jwt_open(L);
    stream_http_open(L);
    stream_clock_open(L);
    lua_pushliteral(L, STREAM_CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
