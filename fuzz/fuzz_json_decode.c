/*
 * fuzz_json_decode.c - json_decode on arbitrary bytes, against a second,
 * independent strict parser: the local server's (server/lua/stream_local/
 * json.lua, its nesting limit raised to the codec's 1000).
 *
 * Properties, for every input s:
 *   - decode(s) never crashes and either returns a value or nil plus
 *     "invalid JSON at byte N: ..." with 1 <= N <= #s + 1;
 *   - it refuses s exactly when the server's parser does, except that the
 *     server refuses duplicate object keys (decode lets the last one win);
 *   - a value holds what the server's tree holds: the same strings, arrays
 *     (marked as arrays, same length) and objects (same keys), null as
 *     stream.null, and every number equal to tonumber() of its text in
 *     value, math.type and sign of zero (so integers stay integers up to
 *     2^63-1 and floats are correctly rounded);
 *   - a second decode(s) gives the same value (the cached buffer and the
 *     collector leave no state behind).
 *
 * Encoding what decode gives is fuzz_json_roundtrip's job.
 */
#define FUZZ_TEXT_INPUT
#include "fuzz_common.h"

static const char *fuzz_checker_source(void)
{
    return
        "return function(s)\n"
        "  local v, err = decode(s)\n"
        "  local tree, serr = server_parse(s)\n"
        "  if v == nil then\n"
        "    if type(err) ~= 'string' then fail('decode failed without a message') end\n"
        "    local n = tonumber(err:match('^invalid JSON at byte (%d+): .'))\n"
        "    if not n or n < 1 or n > #s + 1 then fail('bad decode message %s', q(err)) end\n"
        "    if tree ~= nil then fail('decode refused what the server parser accepts: %s', q(err)) end\n"
        "    return\n"
        "  end\n"
        "  if err ~= nil then fail('decode returned a value and %s', q(err)) end\n"
        "  if tree == nil then\n"
        "    if not tostring(serr):find('duplicate object key', 1, true) then\n"
        "      fail('decode accepted what the server parser refuses: %s', q(serr)) end\n"
        "  else\n"
        "    like_tree(v, tree, 'value')\n"
        "  end\n"
        "  deq(v, (decode(s)), 'decode twice')\n"
        "end\n";
}
