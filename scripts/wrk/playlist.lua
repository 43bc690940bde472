-- GETs of the sessions' signed media playlists on Usher's origin (`/o/{grant}/demo/360p/index.m3u8`,
-- playlists.txt of `usher-load prepare`), each request the next session's; every answer counted by
-- status. WRK_PATHS names another file of paths under WRK_DATA: the ceiling runs the same script on
-- nginx's static copy of the playlist.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = common.setup

init, request = common.cycle_gets("playlists.txt")

function response(status)
  common.count(status)
end

done = common.done("playlist", true)
