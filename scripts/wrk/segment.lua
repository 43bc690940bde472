-- GETs of a ~1 MiB segment under each session's grant on Usher's origin (segments.txt of
-- `usher-load prepare`), each request the next session's. The answers are not read into Lua (copying
-- 1 MiB bodies would spend the load tool's CPU): wrk counts status > 399, and an average answer shorter
-- than WRK_MIN_BYTES (a 3xx or an empty 200) fails the run. WRK_PATHS names another file of paths under
-- WRK_DATA: the ceiling runs the same script on nginx's static copy of the file.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = common.setup

init, request = common.cycle_gets("segments.txt")

done = common.done("segment", false)
