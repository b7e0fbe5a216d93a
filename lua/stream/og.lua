-- stream.og: `client:og(url)`, the Open Graph data of a page as Stream
-- scrapes it (`GET og/?url=` on the API): title, type, url, site,
-- site_name, description, determiner, locale, favicon, original_url,
-- images, videos and audios, each only when the page has it.
--
-- Checks, nothing sent when they fail (`invalid`): the URL is http(s)
-- with a host and no white space or control character; a non-string
-- raises. A scrape is a read: it may be sent again.

local files = require "stream.files"

local og = {}

local PATH = "og/"

-- og.scrape(client, url, fname) -> the OG object | nil, err
function og.scrape(client, url, fname)
  local err
  url, err = files.url_arg(url, fname, { method = "GET", path = PATH }, 4)
  if not url then return nil, err end
  return client.pipeline:send({ method = "GET", path = PATH, query = { url = url }, idempotent = true })
end

return og
