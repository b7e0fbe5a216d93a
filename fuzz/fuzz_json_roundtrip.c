/*
 * fuzz_json_roundtrip.c - json_encode of what json_decode produced; the
 * round trip must be exact.
 *
 * The input is JSON text. When decode(s) gives a value v (what it refuses
 * is fuzz_json_decode's business):
 *   - encode(v) writes exactly the text of an independent encoder written
 *     in Lua from the codec's rules (ref_encode in fuzz_common.h): the same
 *     bytes, with object keys in lua_next's order, numbers in the shortest
 *     form that reads back (integral floats with ".0"), the same escapes;
 *     the only value it may refuse is one holding +-inf (from 1e999), with
 *     a message naming inf;
 *   - decode(encode(v)) deep-equals v: math.type, the sign of zero, array
 *     marks (also of empty arrays), stream.null, embedded NULs;
 *   - encode of that second value is the reference text again, and the same
 *     text as the first up to the order of object keys.
 *
 * Values decode cannot produce (cycles, NaN, functions, sparse tables) are
 * fuzz_json_encode's.
 */
#define FUZZ_TEXT_INPUT
#include "fuzz_common.h"

static const char *fuzz_checker_source(void)
{
    return
        "return function(s)\n"
        "  local v = decode(s)\n"
        "  if v == nil then return end\n"
        "  local want, why = ref_encode(v)\n"
        "  local t, err = encode(v)\n"
        "  if t == nil then\n"
        "    if want ~= nil then fail('encode failed (%s); the reference writes %s', q(err), q(want)) end\n"
        "    if not has_inf(v) or not err:find('inf cannot be encoded', 1, true) then\n"
        "      fail('encode of a decoded value failed: %s (reference: %s)', q(err), q(why)) end\n"
        "    return\n"
        "  end\n"
        "  if err ~= nil then fail('encode returned text and %s', q(err)) end\n"
        "  if t ~= want then fail('encode wrote\\n%s\\nthe reference\\n%s', q(t), q(want)) end\n"
        "  local v2, derr = decode(t)\n"
        "  if v2 == nil then fail('decode of encode failed: %s on %s', q(derr), q(t)) end\n"
        "  deq(v, v2, 'value')\n"
        "  local t2 = encode(v2)\n"
        "  if t2 ~= ref_encode(v2) then fail('second encode %s differs from the reference', q(t2)) end\n"
        "  same_text(t, t2, 'encode(decode(encode(v)))')\n"
        "end\n";
}
