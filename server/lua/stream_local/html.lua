-- stream_local.html: the parts of an HTML page the open graph scraper reads, through
-- libgumbo (an HTML5 parser: malformed pages parse as a browser would parse them, and
-- entities in text and attributes come back decoded) via LuaJIT's FFI.
--
-- What it does:
--   * scan(text) -> { metas = { {property=, name=, content=}, ... } (every <meta>, in
--     document order, attributes as gumbo decoded them), title = the text of the first
--     HTML <title> (nil when none), icons = { href, ... } (<link> whose rel has the
--     token `icon`, in order) } | nil, why.
--   Nesting deeper than 1024 elements ends the text the parser sees (gumbo's time grows
--   with the square of the depth). The tree is walked with an explicit stack, so deep nesting cannot overflow the Lua
--   stack; the parse output is always freed.
--
-- What it deliberately does not do: no scripts, no <base href>, no charset conversion
-- (gumbo reads UTF-8; other encodings' bytes outside ASCII come back replaced).

local ffi = require "ffi"

local M = {}

-- from gumbo.h (libgumbo 0.10.1); only the members read here need to be exact, and the
-- layout before them
pcall(ffi.cdef, [[
typedef struct { unsigned int line; unsigned int column; unsigned int offset; } GumboSourcePosition;
typedef struct { const char *data; size_t length; } GumboStringPiece;
typedef struct { void **data; unsigned int length; unsigned int capacity; } GumboVector;
typedef int GumboTag;
typedef int GumboNamespaceEnum;
typedef struct {
  int attr_namespace;
  const char *name;
  GumboStringPiece original_name;
  const char *value;
  GumboStringPiece original_value;
  GumboSourcePosition name_start, name_end, value_start, value_end;
} GumboAttribute;
typedef struct {
  GumboVector children;
  bool has_doctype;
  const char *name;
  const char *public_identifier;
  const char *system_identifier;
  int doc_type_quirks_mode;
} GumboDocument;
typedef struct {
  const char *text;
  GumboStringPiece original_text;
  GumboSourcePosition start_pos;
} GumboText;
typedef struct {
  GumboVector children;
  GumboTag tag;
  GumboNamespaceEnum tag_namespace;
  GumboStringPiece original_tag;
  GumboStringPiece original_end_tag;
  GumboSourcePosition start_pos;
  GumboSourcePosition end_pos;
  GumboVector attributes;
} GumboElement;
typedef struct GumboInternalNode GumboNode;
struct GumboInternalNode {
  int type;
  GumboNode *parent;
  size_t index_within_parent;
  int parse_flags;
  union { GumboDocument document; GumboElement element; GumboText text; } v;
};
typedef struct GumboInternalOptions {
  void *allocator;
  void *deallocator;
  void *userdata;
  int tab_stop;
  bool stop_on_first_error;
  int max_errors;
  GumboTag fragment_context;
  GumboNamespaceEnum fragment_namespace;
} GumboOptions;
extern const GumboOptions kGumboDefaultOptions;
typedef struct GumboInternalOutput { GumboNode *document; GumboNode *root; GumboVector errors; } GumboOutput;
GumboOutput *gumbo_parse_with_options(const GumboOptions *options, const char *buffer, size_t buffer_length);
void gumbo_destroy_output(const GumboOptions *options, GumboOutput *output);
GumboTag gumbo_tag_enum(const char *tagname);
]])

local ok_lib, gumbo = pcall(ffi.load, "libgumbo.so.1")

-- GumboNodeType
local DOCUMENT, ELEMENT, TEXT, CDATA, WHITESPACE, TEMPLATE = 0, 1, 2, 3, 5, 6
local NS_HTML = 0

-- the default options, but no parse errors kept: gumbo copies the stack of open
-- elements into every error, which costs quadratic time and memory on deep nesting
local OPTIONS
local TAG = {}
if ok_lib then
  OPTIONS = ffi.new("GumboOptions", gumbo.kGumboDefaultOptions)
  OPTIONS.max_errors = 0
  for _, name in ipairs({ "meta", "title", "link" }) do TAG[name] = gumbo.gumbo_tag_enum(name) end
end

local function str(p)
  if p == nil then return nil end
  return ffi.string(p)
end

-- attrs(element) -> { name -> value } (first of each name)
local function attrs(el)
  local t, vec = {}, el.attributes
  for i = 0, vec.length - 1 do
    local a = ffi.cast("GumboAttribute *", vec.data[i])
    local name = str(a.name)
    if name and t[name] == nil then t[name] = str(a.value) end
  end
  return t
end

local function text_of(el)
  local parts, vec = {}, el.children
  for i = 0, vec.length - 1 do
    local n = ffi.cast("GumboNode *", vec.data[i])
    if n.type == TEXT or n.type == CDATA or n.type == WHITESPACE then parts[#parts + 1] = str(n.v.text.text) end
  end
  return table.concat(parts)
end

local function has_token(list, token)
  for t in (list or ""):lower():gmatch("%S+") do
    if t == token then return true end
  end
  return false
end

-- visit(found, el): note an element the scraper reads
local function visit(found, el)
  if el.tag_namespace ~= NS_HTML then return end
  local tag = el.tag
  if tag == TAG.meta then
    local a = attrs(el)
    found.metas[#found.metas + 1] = { property = a.property, name = a.name, content = a.content }
  elseif tag == TAG.title then
    if not found.title then found.title = text_of(el) end
  elseif tag == TAG.link then
    local a = attrs(el)
    if a.href and has_token(a.rel, "icon") then found.icons[#found.icons + 1] = a.href end
  end
end

local function walk(root)
  local found = { metas = {}, icons = {} }
  local stack = { root }
  while #stack > 0 do
    local n = stack[#stack]
    stack[#stack] = nil
    local vec
    if n.type == DOCUMENT then
      vec = n.v.document.children
    elseif n.type == ELEMENT or n.type == TEMPLATE then
      visit(found, n.v.element)
      vec = n.v.element.children
    end
    if vec then
      for i = vec.length - 1, 0, -1 do stack[#stack + 1] = ffi.cast("GumboNode *", vec.data[i]) end
    end
  end
  return found
end

-- elements that never hold others (no end tag), or whose content is text
local VOID = {}
for name in ([[area base br col embed hr img input link meta param source track wbr
  basefont bgsound frame keygen image isindex]]):gmatch("%S+") do VOID[name] = true end

-- elements a start tag of the same name closes (<li><li>: siblings, not nested)
local SIBLING = {}
for name in ("p li dt dd option optgroup tr td th rb rt rp"):gmatch("%S+") do SIBLING[name] = true end

-- shallow(text) -> the text up to the tag where nesting would pass MAX_DEPTH levels.
-- gumbo looks through the stack of open elements at most start tags, so a page of
-- 400,000 nested <div>s would cost minutes; this estimate (start tags push, an end tag
-- pops back to its open element when there is one) is linear and keeps the parse so.
local MAX_DEPTH = 1024
local function shallow(text)
  local stack, open, depth = {}, {}, 0
  for at, slash, name in text:gmatch("()<(/?)([%a][%w:-]*)") do
    name = name:lower()
    if slash == "/" then
      if (open[name] or 0) > 0 then
        repeat
          local top = stack[depth]
          stack[depth], depth, open[top] = nil, depth - 1, open[top] - 1
        until top == name
      end
    elseif not VOID[name] and not (SIBLING[name] and stack[depth] == name) then
      if depth >= MAX_DEPTH then return text:sub(1, at - 1) end
      depth = depth + 1
      stack[depth], open[name] = name, (open[name] or 0) + 1
    end
  end
  return text
end
M.shallow = shallow

function M.scan(text)
  if not ok_lib then return nil, "libgumbo.so.1 is not available" end
  text = shallow(text)
  local out = gumbo.gumbo_parse_with_options(OPTIONS, text, #text)
  if out == nil then return nil, "the HTML parser failed" end
  local ok, found = pcall(walk, out.document)
  gumbo.gumbo_destroy_output(OPTIONS, out)
  if not ok then return nil, found end
  return found
end

return M
