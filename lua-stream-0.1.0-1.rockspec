rockspec_format = "3.0"
package = "lua-stream"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/lua-stream.git",
  tag = "v0.1.0",
}
description = {
  summary = "Client for Stream's Activity Feeds API (users, feeds, reactions), with a C core",
  detailed = [[
    require "stream": users, feeds with follows and enriched reads, reactions,
    collections, notification feeds, activity updates, personalization,
    analytics, moderation, files and images, and open graph.
    Exact JSON, HS256 signing and libcurl transfers with connection reuse
    live in the C core (stream.core); the API, validation and errors in Lua.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
external_dependencies = {
  -- Debian keeps curl.h in a multiarch folder the compiler searches by itself,
  -- so only the library is looked up here.
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
}
build = {
  type = "builtin",
  modules = {
    ["stream"] = "lua/stream/init.lua",
    ["stream.activities"] = "lua/stream/activities.lua",
    ["stream.batch"] = "lua/stream/batch.lua",
    ["stream.check"] = "lua/stream/check.lua",
    ["stream.client"] = "lua/stream/client.lua",
    ["stream.collections"] = "lua/stream/collections.lua",
    ["stream.personalization"] = "lua/stream/personalization.lua",
    ["stream.analytics"] = "lua/stream/analytics.lua",
    ["stream.moderation"] = "lua/stream/moderation.lua",
    ["stream.files"] = "lua/stream/files.lua",
    ["stream.og"] = "lua/stream/og.lua",
    ["stream.config"] = "lua/stream/config.lua",
    ["stream.errors"] = "lua/stream/errors.lua",
    ["stream.feeds"] = "lua/stream/feeds.lua",
    ["stream.handles"] = "lua/stream/handles.lua",
    ["stream.hooks"] = "lua/stream/hooks.lua",
    ["stream.loop"] = "lua/stream/loop.lua",
    ["stream.loop.luv"] = "lua/stream/loop/luv.lua",
    ["stream.loop.cqueues"] = "lua/stream/loop/cqueues.lua",
    ["stream.paging"] = "lua/stream/paging.lua",
    ["stream.reactions"] = "lua/stream/reactions.lua",
    ["stream.request"] = "lua/stream/request.lua",
    ["stream.retry"] = "lua/stream/retry.lua",
    ["stream.rules"] = "lua/stream/rules.lua",
    ["stream.scheduler"] = "lua/stream/scheduler.lua",
    ["stream.users"] = "lua/stream/users.lua",
    ["stream.transport.curl"] = "lua/stream/transport/curl.lua",
    ["stream.transport.http1"] = "lua/stream/transport/http1.lua",
    ["stream.transport.ngx"] = "lua/stream/transport/ngx.lua",
    ["stream.core"] = {
      sources = { "csrc/core.c", "csrc/json.c", "csrc/jwt.c", "csrc/http.c",
                  "csrc/clock.c" },
      libraries = { "curl", "crypto" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
  },
}
