/*
 * compat.h - the few Lua C API differences between 5.1/LuaJIT and 5.4 that
 * the core touches, smoothed over in one place.
 *
 * It does not try to be a general compatibility layer: only what csrc/ uses.
 * 5.4-only features (__close, lua_Integer wider than a double mantissa) are
 * guarded with LUA_VERSION_NUM where they are used.
 */
#ifndef STREAM_COMPAT_H
#define STREAM_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

/*
 * Plain Lua 5.1 lacks the 5.2 auxiliary functions below; LuaJIT 2.1 has
 * them (and defines luaL_newlibtable as a macro, which tells it apart).
 */
#if LUA_VERSION_NUM < 502 && !defined(luaL_newlibtable)
#define luaL_setfuncs(L, l, nup) stream_compat_setfuncs((L), (l), (nup))
static inline void stream_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define luaL_newlibtable(L, l) lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l) (luaL_newlibtable(L, l), luaL_setfuncs(L, l, 0))
#define luaL_testudata(L, i, t) stream_compat_testudata((L), (i), (t))
static inline void *stream_compat_testudata(lua_State *L, int i, const char *tname)
{
    void *p = lua_touserdata(L, i);
    if (p != NULL && lua_getmetatable(L, i)) {
        luaL_getmetatable(L, tname);
        if (!lua_rawequal(L, -1, -2))
            p = NULL;
        lua_pop(L, 2);
        return p;
    }
    return NULL;
}
#define luaL_setmetatable(L, t) (luaL_getmetatable(L, t), lua_setmetatable(L, -2))
#endif

#if LUA_VERSION_NUM < 503
/* 5.1/5.2 have no integer subtype: every number is a lua_Number. */
#define lua_isinteger(L, i) 0
#endif

#if LUA_VERSION_NUM < 504
#define stream_newuserdata(L, sz) lua_newuserdata((L), (sz))
#else
#define stream_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#endif

#endif
