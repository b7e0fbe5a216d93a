/*
 * clock.c - a monotonic clock and a sleep for stream.core.
 *
 *   monotime() -> seconds (float) from an arbitrary start, never going back
 *   sleep(s)   -> blocks the calling thread for s seconds (s <= 0: returns);
 *                 a signal ends it early, so the hook a handler sets (lua.c's
 *                 SIGINT) runs at once: callers that need the full wait loop
 *                 on the clock (the scheduler does)
 *
 * The Lua layer uses them for retry back-off and call deadlines with the
 * curl transport; inside nginx the ngx transport uses ngx.now/ngx.sleep
 * instead, so nothing here ever blocks an nginx worker.
 */
#include <time.h>

#include "core.h"

double stream_monotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int l_monotime(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)stream_monotime());
    return 1;
}

static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;
    if (!(s > 0))
        return 0;
    if (s > 86400)
        s = 86400;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    return 0;
}

void stream_clock_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"monotime", l_monotime},
        {"sleep", l_sleep},
        {NULL, NULL}
    };
    luaL_setfuncs(L, funcs, 0);
}
