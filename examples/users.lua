-- A tour of the users API. With STREAM_API_KEY / STREAM_API_SECRET (or
-- STREAM_URL) set it talks to Stream; `make demo` points it at the local
-- server instead. Run from the repository root after `make`:
--   lua5.4 examples/users.lua

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath

local stream = require "stream"

local function show(step, res, err)
  if res == nil then
    print(string.format("%-28s -> error: %s", step, tostring(err)))
  elseif type(res) == "table" then
    print(string.format("%-28s -> %s", step, stream.json.encode(res)))
  else
    print(string.format("%-28s -> %s", step, tostring(res)))
  end
end

local client = stream.connect()
print("client: " .. tostring(client))

local id = string.format("demo-%d-%d", os.time(), math.random(1000, 9999))
local user = client:user(id)

show("create", user:create({ name = "John Doe", occupation = "Software Engineer", level = 3 }))
show("create again (duplicate)", user:create({ name = "John Doe" }))
show("get_or_create", user:get_or_create({ name = "ignored, the user exists" }))
show("get with follow counts", user:get({ with_follow_counts = true }))
show("update (replaces data)", user:update({ name = "Jane Doe", tags = stream.array({}) }))
show("delete", user:delete())
show("get after delete", user:get())
show("ref", user:ref())
show("bad id (sends nothing)", client:user("no spaces allowed"):get())

-- A user token is what a browser or game client holds; the secret stays here.
local token = client:create_user_token(id, { role = "player" })
show("user token", token)

local as_user = stream.connect(client.api_key, token, client.app_id, { base_url = client.base_url })
print("user client: " .. tostring(as_user))
show("set_user (get-or-create)", as_user:set_user({ name = "From the token" }))
show("set_user again (unchanged)", as_user:set_user({ name = "Not applied" }))
show("user token edits another", as_user:user("someone-else"):update({ x = 1 }))
show("cleanup", as_user.current_user:delete())

as_user:close()
client:close()
