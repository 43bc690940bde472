-- A show's door (doors-open capacity), one ask. KEYS[1] the line (zset: ticket -> arrival number),
-- KEYS[2] last seen (zset: ticket -> ms), KEYS[3] passes (zset: ticket -> lapse ms), KEYS[4] the door's
-- state (hash: arrivals, tokens, refilled, window start w, in window n, last window p), KEYS[5] the
-- show's live leases (zset: session -> lease expiry ms; none on a Redis Cluster, where they are on the
-- slots of the tickets' shards).
-- ARGV: ticket, now ms, capacity (-1: none), rate per second (-1: none), pass ms, abandon ms, window ms,
-- the seats taken as the node counted them ('' to count KEYS[5]: redis.rs `live_count`).
-- -> {'enter'} or {'wait', position, entered in the last window}
local ticket, now = ARGV[1], tonumber(ARGV[2])
local cap, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
local pass_ms, abandon_ms, window_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local keep = tostring(math.max(abandon_ms, pass_ms) * 4 + window_ms * 2)
local function ms(x) return string.format('%d', x) end

-- waiters who stopped asking have left; passes not used in time lapse
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ms(now - abandon_ms), 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ms(now))

local st = redis.call('HMGET', KEYS[4], 'tokens', 'refilled', 'w', 'n', 'p')
local w, n, p = tonumber(st[3]) or now, tonumber(st[4]) or 0, tonumber(st[5]) or 0
if now - w >= window_ms then
  if now - w >= 2 * window_ms then p = 0 else p = n end
  n = 0
  w = now - ((now - w) % window_ms)
end
local tokens = tonumber(st[1])
if rate > 0 then
  local refilled = tonumber(st[2])
  if not tokens or not refilled then tokens = rate
  else tokens = math.min(rate, tokens + math.max(0, now - refilled) * rate / 1000) end
end

local function save()
  redis.call('HSET', KEYS[4], 'w', ms(w), 'n', n, 'p', p, 'refilled', ms(now))
  if rate > 0 then redis.call('HSET', KEYS[4], 'tokens', tostring(tokens)) end
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], keep) end
end
local function enter()
  redis.call('ZADD', KEYS[3], ms(now + pass_ms), ticket)
  n = n + 1
  if rate > 0 then tokens = tokens - 1 end
  save()
  return {'enter'}
end
local function wait(position)
  save()
  return {'wait', position, p}
end

if redis.call('ZSCORE', KEYS[3], ticket) then
  save()
  return {'enter'}
end
local live = tonumber(ARGV[8] or '')
if not live then
  if KEYS[5] then live = redis.call('ZCOUNT', KEYS[5], '(' .. ms(now), '+inf') else live = 0 end
end
local occupied = live + redis.call('ZCARD', KEYS[3])
local free = 1e15
if cap >= 0 then free = cap - occupied end
if rate > 0 then free = math.min(free, math.floor(tokens)) end

local rank = redis.call('ZRANK', KEYS[1], ticket)
if rank then
  redis.call('ZADD', KEYS[2], ms(now), ticket)
  if rank < free then
    redis.call('ZREM', KEYS[1], ticket)
    redis.call('ZREM', KEYS[2], ticket)
    return enter()
  end
  return wait(rank + 1)
end
if redis.call('ZCARD', KEYS[1]) == 0 and free >= 1 then
  return enter()
end
local arrival = redis.call('HINCRBY', KEYS[4], 'arrivals', 1)
redis.call('ZADD', KEYS[1], arrival, ticket)
redis.call('ZADD', KEYS[2], ms(now), ticket)
return wait(redis.call('ZCARD', KEYS[1]))
