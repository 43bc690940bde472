-- KEYS[1] seats key -> the ticket's seats document as JSON (either layout, seats.lua), or false
local st = load_seats(KEYS[1], nil)
if not st then return false end
return enc(st)
