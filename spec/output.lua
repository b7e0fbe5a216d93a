-- busted output handler: the usual terminal output, then one closing line
-- "busted: N passed, N failed, N skipped" that CI and people can read alike.
return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.utfTerminal")(options)
  busted.subscribe({ "exit" }, function()
    local failed = #handler.failures + #handler.errors
    io.write(string.format("\nbusted: %d passed, %d failed, %d skipped\n",
      #handler.successes, failed, #handler.pendings))
    io.flush()
    return nil, true
  end)
  return handler
end
