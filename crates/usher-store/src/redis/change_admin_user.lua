-- KEYS[1] the user's record; ARGV: new role or '', new password hash or '', '1'/'0' must change it (with
-- a hash), the change's time (ms) -> the record as changed (JSON), or false when there is no such user.
-- The change is applied to the record as stored, so a concurrent change of another field survives.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return false
end
local user = cjson.decode(raw)
if ARGV[1] ~= '' then
  user.role = ARGV[1]
end
if ARGV[2] ~= '' then
  user.password_hash = ARGV[2]
  user.must_change_password = ARGV[3] == '1'
end
user.updated_at = tonumber(ARGV[4])
local out = cjson.encode(user)
redis.call('SET', KEYS[1], out, 'XX')
return out
