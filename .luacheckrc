std = "max"
max_line_length = 120
files["spec"] = { std = "+busted" }
files["server/lua"] = { globals = { "ngx" } }
exclude_files = { "build/**" }
