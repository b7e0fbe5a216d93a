-- The server's aggregation format language (server/lua/stream_local/aggformat.lua),
-- loaded directly under Lua 5.4: it is plain Lua so the same file runs inside nginx
-- (LuaJIT). The HTTP side is spec/server/aggregation_formats_spec.lua.

package.path = "server/lua/?.lua;" .. package.path
local agg = require "stream_local.aggformat"
local json = require "stream_local.json"

local ACTIVITY = json.parse('{"verb":"like","actor":"SU:bob","object":"o1","n":3,"zero":0,"flag":true,'
  .. '"nul":null,"empty":"","list":[1,2],"details":{"place":{"city":"Oslo"}}}')
local ENV = {
  lookup = function(name) return ACTIVITY.values[name] end,
  time_us = 1700000000123456, -- 2023-11-14T22:13:20.123456 UTC
  feed = { group = "agg", user_id = "u1" },
}

local function render(source)
  local template, err = agg.compile(source)
  assert(template, "does not compile: " .. source .. ": " .. tostring(err))
  return agg.render(template, ENV)
end

describe("server aggregation format language", function()
  it("renders the default format as verb and UTC day", function()
    assert.are.equal("like_2023-11-14", render(agg.DEFAULT))
  end)

  it("prints values as the service's templates do", function()
    assert.are.equal("3|True|None|{\"place\":{\"city\":\"Oslo\"}}|[1,2]",
      render("{{ n }}|{{ flag }}|{{ nul }}|{{ details }}|{{ list }}"))
    assert.are.equal("2023-11-14 22:13:20.123456", render("{{ time }}"))
    assert.are.equal("Oslo", render("{{ details.place.city }}"))
    assert.are.equal("agg/u1", render("{{ feed.group }}/{{ feed.user_id }}"))
    assert.are.equal("|", render("{{ unknown }}|{{ details.place.nope.x }}{{ verb.x }}"))
  end)

  it("takes strftime codes on UTC and leaves unknown codes as written", function()
    assert.are.equal("2023-11-14 22:13:20 318 23 % %Q", render('{{ time.strftime("%Y-%m-%d %H:%M:%S %j %y %% %Q") }}'))
    assert.are.equal("", render("{{ verb.strftime('%Y') }}"))
  end)

  it("chooses branches with if / elif / else, nested, with and, or, not, == and !=", function()
    local src = "{% if verb == 'follow' %}F{% elif verb == \"like\" and n == 3 %}"
      .. "{% if not flag %}x{% else %}L{% endif %}{% else %}O{% endif %}"
    assert.are.equal("L", render(src))
    assert.are.equal("yes", render("{% if zero or empty or nul or unknown %}no{% else %}yes{% endif %}"))
    assert.are.equal("yes", render("{% if list and details and n != 4 and n == 3.0 %}yes{% endif %}"))
    assert.are.equal("yes", render("{% if (verb != 'like' or true) and not none %}yes{% endif %}"))
    assert.are.equal("yes", render("{% if unknown == other %}yes{% endif %}"))
    assert.are.equal("no", render("{% if n == '3' %}yes{% else %}no{% endif %}"))
  end)

  it("strips whitespace, honours {{- -}} and comments, and keeps quotes' contents", function()
    assert.are.equal("a-b", render("  a {{- '-' -}}  b \n"))
    assert.are.equal("like", render("{# a comment {{ x }} #}{{ verb }}"))
    assert.are.equal("x}}y%}'\"", render("{{ 'x}}y%}\\'\"' }}"))
  end)

  it("cuts the key at 255 characters, not bytes", function()
    assert.are.equal(string.rep("é", 255), render(string.rep("é", 300)))
  end)

  it("refuses what does not parse", function()
    for _, source in ipairs({ "{{test[]}}", "{{ }}", "{{ verb", "{% if verb %}a", "{% endif %}",
      "{% else %}", "{% if verb %}a{% else x %}b{% endif %}", "{% for x in y %}{% endfor %}", "{{ verb|upper }}",
      "{{ time.foo() }}", "{{ strftime('%Y') }}", "{{ 'open }}", "{{ verb verb }}", "{{ a == }}",
      "{% if %}{% endif %}", "{{ (verb }}", "{{ 1 + 2 }}" }) do
      local template, err = agg.compile(source)
      assert.is_nil(template, source)
      assert.is_string(err, source)
    end
  end)
end)
