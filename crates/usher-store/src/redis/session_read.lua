-- KEYS[1] session key; ARGV: prefix, session id -> false (no such session)
--  | {ticket id, 'hash', show_id or false, the lease's l: field or false, its h: field or false} (layout 2)
--  | {ticket id, 'doc', the seats JSON or false} (layout 1)
-- The origin's lease check for a session the node does not know yet (it keeps the ticket this answers)
-- and for seats kept as one JSON document; a known session's is one HMGET (redis.rs `live_session`).
-- One round trip and no JSON in Redis: the fields are read by the node.
local ticket_id = redis.call('GET', KEYS[1])
if not ticket_id then return false end
local key = ARGV[1] .. 'seats:' .. ticket_id
local f = redis.pcall('HMGET', key, 'show_id', 'l:' .. ARGV[2], 'h:' .. ARGV[2])
if f.err then return { ticket_id, 'doc', redis.call('GET', key) } end
return { ticket_id, 'hash', f[1] or false, f[2] or false, f[3] or false }
