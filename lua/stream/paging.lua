-- stream.paging: following the `next` links of paged answers (feeds,
-- reactions) and the iterators built on them.
--
-- A `next` link is data from outside: a broken or hostile answer must never
-- make the client send its token anywhere else. A link is followed only
-- when it is a path under the client's own base URL: relative to the host
-- ("/api/v1.0/feed/user/a/?id_lt=..."), or absolute with exactly the same
-- scheme, host and port. Anything else (another host, a scheme change,
-- "//host/...", control characters, backslashes, "..", a path outside the
-- API prefix, a fragment) is an `invalid` error and nothing is sent. Any
-- `api_key` in the link is dropped (its name escaped or not); the pipeline
-- adds the client's own.
--
-- What it deliberately does not do: no relative links without a leading
-- "/" (Stream never sends them), no percent-decoding of what it keeps (the
-- link's escaping is sent as it came; names are decoded only to find api_key).

local errors = require "stream.errors"

local paging = {}

-- scrub (optional): the client's scrubber; errors.outside runs it over the
-- whole link before cutting, so not even a part of a secret is shown.
local function bad(link, why, info, scrub)
  local shown = errors.outside(link, scrub, 80):gsub("%c", "?")
  return nil, errors.invalid(string.format("next link %q is not followed: %s", shown, why),
    "next", info)
end

-- The pieces of a base URL ("http://h:8000/api/v1.0/"): scheme, host:port
-- (lower case), path prefix.
local function split_base(base)
  local scheme, hostport, prefix = base:match("^(%a+)://([^/]+)(/.*)$")
  return scheme:lower(), hostport:lower(), prefix
end

-- link -> path (relative to the base URL), raw query (without api_key),
-- or nil, err. scrub (optional) cleans the link for the error message.
function paging.resolve(base_url, link, info, scrub)
  if type(link) ~= "string" then
    return bad(tostring(link), "not a string", info)
  end
  local function refuse(why) return bad(link, why, info, scrub) end
  if link:find("[%c%s\\#]") then
    return refuse("it holds control characters, spaces, '\\' or '#'")
  end
  local scheme, hostport, prefix = split_base(base_url)
  local path_and_query
  if link:sub(1, 1) == "/" then
    if link:sub(2, 2) == "/" then
      return refuse("a '//' link names another host")
    end
    path_and_query = link
  else
    local ls, lh, rest = link:match("^(%a[%w+.-]*)://([^/?]*)(.*)$")
    if not ls then
      return refuse("not a path under the client's base URL")
    end
    if ls:lower() ~= scheme or lh:lower() ~= hostport then
      return refuse("it points at another host or scheme than " .. scheme .. "://" .. hostport)
    end
    path_and_query = rest ~= "" and rest or "/"
    if path_and_query:sub(1, 1) ~= "/" then path_and_query = "/" .. path_and_query end
  end
  local path, query = path_and_query:match("^([^?]*)%??(.*)$")
  if path:sub(1, #prefix) ~= prefix or #path == #prefix then
    return refuse("its path is not under " .. prefix)
  end
  local rel = path:sub(#prefix + 1)
  if rel:find("//", 1, true) or ("/" .. rel):find("/%.%.?/") or ("/" .. rel):find("/%.%.?$")
      or rel:lower():find("%%2e") or rel:lower():find("%%2f") then
    return refuse("its path has empty, '.' or '..' segments")
  end
  if rel:find("[^%w%-_.~:@%%/]") then
    return refuse("its path has characters a Stream path never has")
  end
  local kept = {}
  for pair in query:gmatch("[^&]+") do
    -- servers decode the names too: "api%5Fkey" is an api_key as well
    local k = pair:match("^([^=]*)"):gsub("%%(%x%x)", function(h)
      return string.char(tonumber(h, 16))
    end)
    if k:lower() ~= "api_key" then kept[#kept + 1] = pair end
  end
  return rel, table.concat(kept, "&")
end

-- The value a failed walk yields first, with the error second:
--   for page, err in feed:pages() do if err then ... end end
-- It must be neither nil (the loop would end before its body saw err) nor
-- false (`for activity in feed:each()` would die on `false.id` with the
-- error dropped): it is a value that raises the error's text as soon as it
-- is used as a page or an activity (any field read or write; under Lua 5.4
-- also ipairs, pairs and #), and reads as "stream: walk stopped: <error>"
-- in tostring and `..`.
local failures = setmetatable({}, { __mode = "k" }) -- failure value -> its text

local function as_text(v)
  return failures[v] or v
end

local function failure(err)
  local text = "stream: walk stopped: " .. tostring(err)
  local function raise() error(text, 2) end
  local v = setmetatable({}, {
    __name = "stream.failure",
    __index = raise, __newindex = raise, __len = raise, __pairs = raise, __call = raise,
    __tostring = function() return text end,
    __concat = function(a, b) return as_text(a) .. as_text(b) end,
  })
  failures[v] = text
  return v
end
paging.failure = failure

-- Whether v is the value a failed walk yields.
function paging.is_failure(v)
  return failures[v] ~= nil
end

-- The client's scrubber as a function (nil for a client without a pipeline).
local function scrubber(client)
  local pipe = client.pipeline
  return pipe and function(t) return pipe:scrub(t) end
end

-- An iterator over pages: first(), then follow(path, raw_query) for every
-- non-empty `next`. Yields each answer; a failed request yields
-- failure(err), err once, then the iteration ends. Links are resolved
-- against client.base_url, refused ones cleaned by the client's pipeline.
function paging.pages(client, first, follow, info)
  local state = "first"
  local link
  return function()
    local res, err
    if state == "first" then
      res, err = first()
    elseif state == "more" then
      local path, raw = paging.resolve(client.base_url, link, info, scrubber(client))
      if not path then
        res, err = nil, raw
      else
        res, err = follow(path, raw)
      end
    else
      return nil
    end
    if not res then
      state = "done"
      return failure(err), err
    end
    link = res.next
    state = (type(link) == "string" and link ~= "") and "more" or "done"
    return res
  end
end

-- Every entry of `results` across pages; same error rule.
function paging.each(pages)
  local page, i = nil, 0
  return function()
    while true do
      if page then
        i = i + 1
        local v = page.results and page.results[i]
        if v ~= nil then return v end
      end
      local p, err = pages()
      if p == nil then return nil end
      if err ~= nil then return p, err end
      page, i = p, 0
    end
  end
end

return paging
