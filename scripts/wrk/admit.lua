-- Admits (`POST /api/v1/playback` with {"token"}) over the prepared tickets (tokens.txt), each request
-- with a fresh `X-Usher-Device`: every ticket already holds a seat (k = 1), so each admit takes it over
-- (newest wins). 201 expected.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = common.setup

local bodies, device, i, n

function init(args)
  bodies = {}
  for k, token in ipairs(common.share("tokens.txt", id)) do
    bodies[k] = '{"token":"' .. token .. '"}'
  end
  device = "wd" .. common.env("WRK_RUN") .. "t" .. id .. "n"
  i, n = 0, 0
end

function request()
  i = i % #bodies + 1
  n = n + 1
  return wrk.format("POST", "/api/v1/playback", {
    ["Content-Type"] = "application/json",
    ["X-Usher-Device"] = device .. n,
  }, bodies[i])
end

function response(status)
  common.count(status)
end

done = common.done("admit", true)
