-- Registers one ticket per request (`POST /api/v1/tickets` with the tickets key), each with a new token
-- (WRK_RUN, the thread and a counter), so every request creates a ticket: 201 expected (a 200 would be
-- a repeated registration). Needs WRK_TICKETS_KEY and the show of WRK_DATA/show_id.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = common.setup

local headers, prefix, show, n

function init(args)
  local f = assert(io.open(common.env("WRK_DATA") .. "/show_id"))
  show = f:read("*l")
  f:close()
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. common.env("WRK_TICKETS_KEY"),
  }
  prefix = '{"show_id":"' .. show .. '","token":"wr' .. common.env("WRK_RUN") .. "t" .. id .. "n"
  n = 0
end

function request()
  n = n + 1
  return wrk.format("POST", "/api/v1/tickets", headers, prefix .. string.format("%08d", n) .. '"}')
end

function response(status)
  common.count(status)
end

done = common.done("register", true)
