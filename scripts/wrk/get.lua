-- GET of the URL given to wrk, every answer counted by status: the ceiling nginx `return 200` and
-- Usher's /livez.
--   wrk -t2 -c256 -d10s --latency -s scripts/wrk/get.lua http://127.0.0.1:18081/ok
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = common.setup

function response(status)
  common.count(status)
end

done = common.done("get", true)
