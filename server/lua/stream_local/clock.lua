-- stream_local.clock: the two clocks the server reads, through clock_gettime (FFI).
--
-- What it does: realtime_us() is the wall clock in whole microseconds since the epoch
-- (timestamps); monotonic_ms() a monotonic clock in fractional milliseconds
-- ("duration"). Both return nil if clock_gettime fails.
--
-- What it deliberately does not do: no time zones, no formatting (stream_local.times).

local ffi = require "ffi"
local tonumber, pcall = tonumber, pcall

local M = {}

pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } stream_local_timespec;
int clock_gettime(int clk_id, stream_local_timespec *tp);
]])
local ts = ffi.new("stream_local_timespec")
local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1

function M.realtime_us()
  if ffi.C.clock_gettime(CLOCK_REALTIME, ts) ~= 0 then return nil end
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

function M.monotonic_ms()
  if ffi.C.clock_gettime(CLOCK_MONOTONIC, ts) ~= 0 then return nil end
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

return M
