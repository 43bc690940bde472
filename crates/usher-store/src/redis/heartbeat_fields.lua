-- The heartbeat's first part (heartbeat.lua has its keys and answers): run before the lease rules of
-- seats.lua are defined, so a renewal that ends here never pays for defining them (a third of its time).
local prefix, sid, presented, fresh = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local revive_since = tonumber(ARGV[5] or '')
local gen = config_generation(KEYS[2])
local ticket_id = redis.call('GET', KEYS[1])
if not ticket_id then return { 'unknown', gen } end
local key = prefix .. 'seats:' .. ticket_id

-- Layout 2's renewal (seats.lua): a few fields of the hash, read and written as text, no JSON. Anything
-- else (a lapsed or unknown lease, a clone, layout 1) takes the whole document below, which decides the
-- same. It reads no ticket: a lease it finds belongs to a ticket that was not revoked, since a revoke ends
-- the ticket's leases in its own step (revoke.lua) and an admit reads the status in its step; the node
-- keeps the ticket's bounds (redis/cache.rs BoundsCache), which never change. The chain's hashes are 64
-- hex digits (keyed hashes); the text steps below are SecretChain::renew's two common cases, and any
-- other shape of chain takes the table form.
local HASH_LEN = 64
-- a list of whole hashes, `len` bytes long: empty, or hashes separated by single spaces
local function hash_list(len) return len == 0 or (len + 1) % (HASH_LEN + 1) == 0 end

local function renew_fields()
  local f = redis.pcall('HMGET', key, 'show_id', 'h:' .. sid, 't:' .. sid, 'v')
  if f.err then return nil end
  local show_id, moving, touched, v = f[1], f[2], f[3], tonumber(f[4] or '0')
  if not show_id or not moving or not v then return nil end
  -- seats.lua hot_pack's six comma-separated fields (hot_fields: the retired hashes are left in place, at
  -- `r_at` to the end, and go into the new field as one piece)
  local _, expires_at, ttl_ms, prev, issued, r_at = hot_fields(moving)
  if not expires_at then return nil end
  local now = now_ms()
  if expires_at <= now and not (revive_since and expires_at > revive_since) then return nil end
  local r_len = #moving - r_at + 1
  if #presented ~= HASH_LEN or (fresh ~= '' and #fresh ~= HASH_LEN)
    or (prev ~= '' and #prev ~= HASH_LEN) or issued == ''
    or not hash_list(#issued) or not hash_list(r_len) then
    return nil
  end
  -- the retired hashes the new field keeps: all of them, or (when the previous secret retires) the newest
  -- RETIRED_MEMORY - 1, with the previous after them
  local retired
  -- SecretChain::check's order: issued, previous, retired
  if issued == presented then
    -- current, the only one issued: it becomes the previous, the previous retires
    if fresh ~= '' then
      if prev == '' then
        retired = string.sub(moving, r_at)
      else
        local keep = math.min(r_len, (RETIRED_MEMORY - 1) * (HASH_LEN + 1) - 1)
        if keep > 0 then
          retired = string.sub(moving, -keep) .. ' ' .. prev
        else
          retired = prev
        end
      end
      prev, issued = presented, fresh
    end
  elseif string.find(issued, presented, 1, true) then
    -- one of several issued: the table form retires the others in their order
    return nil
  elseif prev == presented then
    -- the previous: one more is issued beside the current ones
    if fresh ~= '' then
      if (#issued + 1) / (HASH_LEN + 1) >= ISSUED_MEMORY then return nil end
      issued = issued .. ' ' .. fresh
      retired = string.sub(moving, r_at)
    end
  elseif r_len > 0 and string.find(moving, presented, r_at, true) then
    -- a retired one (a clone): the table form records it
    return nil
  else
    return { 'wrong', gen, ticket_id, show_id }
  end
  if fresh ~= '' then
    -- on a Redis Cluster (a prefix with a hash tag) the live set is touched before any write: while its
    -- slot migrates, a step that meets it already moved then fails before writing anything
    if string.find(prefix, '{', 1, true) then redis.call('EXISTS', prefix .. 'live:' .. show_id) end
    -- times and counters are whole numbers far below 2^53, written with '%d' (an integer conversion;
    -- '%.0f' and Lua's own number to text take libc's multi-precision float path, a visible cost here)
    expires_at = now + ttl_ms
    local now_text, expires_text = string.format('%d', now), string.format('%d', expires_at)
    -- the version moves in the same HSET as the lease (read above: one write fewer than HINCRBY)
    local seq = string.format('%d', v + 1)
    -- the first renewal's time since the last whole write stays: the device it saw is remembered from
    -- then should the usage have forgotten it (seats.lua load_seats)
    local first = touched and select(3, touch_parts(touched)) or now_text
    redis.call('HSET', key,
      'h:' .. sid, now_text .. ',' .. expires_text .. ',' .. string.format('%d', ttl_ms) .. ',' .. prev .. ',' .. issued .. ',' .. retired,
      't:' .. sid, seq .. ',' .. now_text .. ',' .. first,
      'v', seq)
    redis.call('ZADD', prefix .. 'live:' .. show_id, expires_text, sid)
    index_session(prefix, sid, ticket_id, ttl_ms)
  end
  return { 'renewed', expires_at, ticket_id, show_id, gen, false }
end
local renewed = renew_fields()
if renewed then return renewed end
