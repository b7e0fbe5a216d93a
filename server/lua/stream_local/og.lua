-- stream_local.og: open graph scraping (stream-feeds-api.md section 14).
--
-- What it does:
--   GET /api/v1.0/og/?url=<url> (also `og?url=` without the slash, as the Ruby client
--     sends it: answered on both paths, no redirect) -> 200 with what the page says
--     about itself: title, type, url, site, site_name, description, determiner, locale,
--     favicon, original_url, images, videos, audios, each only when found, and
--     `duration`. og:* meta come first (`property`, or `name` when it starts with og:);
--     then <title>, <meta name="description">, and <link rel="icon"> (default
--     /favicon.ico), made absolute against the final URL. `url` is og:url or the final
--     URL after redirects, `original_url` the URL asked for. An og:image,
--     og:video or og:audio starts a new entry; its og:<kind>:url, secure_url, width,
--     height, type and alt (images) fill the newest entry (url starts a new one when
--     the newest has one already); width and height are numbers, dropped when they are
--     not whole numbers.
--   The page is fetched by stream_local.fetch (4-second deadline for everything, five
--   redirects, 2 MiB of body at most: a longer page is read up to the cap and parsed as
--   far as it got) and parsed by stream_local.html (libgumbo).
--   A missing url or one that is not http(s): 400 code 4 naming `url`. Unreachable,
--   too slow, a non-2xx answer, a body that is not HTML, or a page without a title:
--   400 code 4 `couldn't find og data for the provided url`.
--   Tokens: any user token; server tokens with resource `url` or `*` (action read or
--   *), feed_id `*` or none.
--
-- What it deliberately does not do: no caching, no robots.txt, no og:* namespaces other
-- than og: (no article:, music:, twitter:), no charset conversion.

local json = require "stream_local.json"
local reply = require "stream_local.reply"
local request = require "stream_local.request"
local guards = require "stream_local.guards"
local fetch = require "stream_local.fetch"
local html = require "stream_local.html"

-- luacheck: globals ngx
local ngx = ngx
local ipairs, tonumber, concat, format = ipairs, tonumber, table.concat, string.format

local M = {}

M.USER_AGENT = "getstream.io/opengraph-bot facebookexternalhit/1.1"
M.TIMEOUT = 4
M.MAX_BODY = 2 * 1024 * 1024
M.REDIRECTS = 5

local NO_DATA = "couldn't find og data for the provided url"

local PLAIN = { "title", "type", "url", "site", "site_name", "description", "determiner", "locale" }
local IS_PLAIN = {}
for _, k in ipairs(PLAIN) do IS_PLAIN[k] = true end

-- the structured media kinds: their list key, and their properties in answer order

local MEDIA = {
  image = { list = "images", props = { "url", "secure_url", "width", "height", "type", "alt" } },
  video = { list = "videos", props = { "url", "secure_url", "width", "height", "type" } },
  audio = { list = "audios", props = { "url", "secure_url", "type" } },
}
local NUMBER = { width = true, height = true }
for _, m in pairs(MEDIA) do
  m.known = {}
  for _, p in ipairs(m.props) do m.known[p] = true end
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- add_media(og, kind, prop, value): og:<kind> (prop nil) or og:<kind>:<prop>
local function add_media(og, kind, prop, value)
  local m = MEDIA[kind]
  local list = og[m.list] or {}
  og[m.list] = list
  local last = list[#list]
  if prop == nil then
    list[#list + 1] = { [kind] = value }
    return
  end
  if not m.known[prop] then return end
  if NUMBER[prop] then
    value = tonumber(value:match("^%d+$"))
    if not value then return end
  end
  if not last or (prop == "url" and last.url) then
    last = {}
    list[#list + 1] = last
  end
  if last[prop] == nil then last[prop] = value end
end

-- collect(found) -> og fields from the page's og:* meta
local function collect(found)
  local og = {}
  for _, meta in ipairs(found.metas) do
    local key = meta.property
    if not (key and key:lower():find("^og:")) and meta.name and meta.name:lower():find("^og:") then
      key = meta.name
    end
    local content = meta.content and trim(meta.content)
    if key and content and content ~= "" then
      local rest = key:lower():match("^og:(.+)$")
      local kind, prop = (rest or ""):match("^(%a+):?([%w_]*)$")
      if kind and MEDIA[kind] then
        add_media(og, kind, prop ~= "" and prop or nil, content)
      elseif rest and IS_PLAIN[rest] and og[rest] == nil then
        og[rest] = content
      end
    end
  end
  return og
end

local function meta_named(found, name)
  for _, meta in ipairs(found.metas) do
    if meta.name and meta.name:lower() == name and meta.content and trim(meta.content) ~= "" then
      return trim(meta.content)
    end
  end
end

-- object(found, original, final) -> the OG object | nil when the page has no title
local function object(found, original, final)
  local og = collect(found)
  if not og.title and found.title then
    local t = trim(found.title:gsub("%s+", " "))
    if t ~= "" then og.title = t end
  end
  if not og.title then return nil end
  og.description = og.description or meta_named(found, "description")
  og.favicon = fetch.resolve(final, found.icons[1] or "/favicon.ico")
  og.original_url = original
  og.url = og.url or final
  return og
end

local function encode_media(kind, entries)
  local m, out = MEDIA[kind], {}
  local keys = { kind }
  for _, p in ipairs(m.props) do keys[#keys + 1] = p end
  for i, e in ipairs(entries) do
    local parts = {}
    for _, k in ipairs(keys) do
      local v = e[k]
      if v ~= nil then
        parts[#parts + 1] = json.quote(k) .. ":" .. (NUMBER[k] and format("%d", v) or json.quote(v))
      end
    end
    out[i] = "{" .. concat(parts, ",") .. "}"
  end
  return "[" .. concat(out, ",") .. "]"
end

local ORDER = { "title", "type", "url", "site", "site_name", "description", "determiner", "locale",
  "favicon", "original_url" }

function M.encode(og)
  local parts = {}
  for _, k in ipairs(ORDER) do
    if og[k] then parts[#parts + 1] = json.quote(k) .. ":" .. json.quote(og[k]) end
  end
  for _, kind in ipairs({ "image", "video", "audio" }) do
    local list = og[MEDIA[kind].list]
    if list and list[1] then
      parts[#parts + 1] = json.quote(MEDIA[kind].list) .. ":" .. encode_media(kind, list)
    end
  end
  return "{" .. concat(parts, ",") .. "}"
end

local function is_html(status, headers)
  if status < 200 or status >= 300 then return false end
  local ct = (headers["content-type"] or ""):lower()
  return ct == "" or ct:find("^%s*text/html") ~= nil or ct:find("^%s*application/xhtml%+xml") ~= nil
end

-- scrape(url) -> the OG object | nil, why (for the error log)
function M.scrape(url)
  local res, err = fetch.get(url, { timeout = M.TIMEOUT, redirects = M.REDIRECTS, max_body = M.MAX_BODY,
    user_agent = M.USER_AGENT, want_body = is_html })
  if not res then return nil, err end
  if not is_html(res.status, res.headers) then return nil, "status " .. res.status .. ", not an HTML page" end
  if res.headers["content-type"] == nil and not res.body:find("^%s*<") then return nil, "not markup" end
  local found
  found, err = html.scan(res.body)
  if not found then return nil, err end
  return object(found, url, res.url)
end

function M.get(ctx)
  local url = request.first(ctx.args.url)
  if url == nil or trim(url) == "" then
    return reply.invalid({ { "url", "is required" } })
  end
  url = trim(url)
  local u = fetch.parse(url)
  if not u or (u.scheme ~= "http" and u.scheme ~= "https") then
    return reply.invalid({ { "url", "must be an http or https URL" } })
  end
  local og, why = M.scrape(url)
  if not og then
    ngx.log(ngx.WARN, "stream-local: og: no data for ", url, ": ", why)
    return reply.error(400, NO_DATA)
  end
  return reply.send(200, M.encode(og))
end

-- routes (assembled by stream_local.app) ------------------------------------------

M.ROUTES = {
  { pattern = [[^/api/v1\.0/og/?$]], resource = "url", feed_id = guards.any_feed, methods = { GET = M.get } },
}

return M
