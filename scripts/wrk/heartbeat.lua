-- Heartbeats (`POST /api/v1/playback/{id}/heartbeat` with `X-Usher-Session-Secret`) of the prepared
-- sessions (sessions.txt: id, secret, grant), each thread cycling over its own share of them, as an app
-- does: every answer hands the session's next secret, which the next heartbeat of that session sends (a
-- secret two renewals old would be refused as a copy, 409 `session_cloned`).
--
-- wrk does not say which request an answer belongs to; the answer names its session through its fresh
-- origin grant, whose text starts with base64url("2|" session id): 48 characters that are the same in
-- every grant of the session, so the prepared grant's first 48 characters find the session. An answer
-- 200 that names no known session counts as `unmatched` and fails the run. A session whose heartbeat was
-- answered otherwise stays out of the cycle (the answer names no session), and the answer fails the run.
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

setup = common.setup

local paths, secrets, by_grant, busy, i
unmatched = 0

function init(args)
  paths, secrets, by_grant, busy = {}, {}, {}, {}
  for k, line in ipairs(common.share("sessions.txt", id)) do
    local sid, secret, grant = line:match("^(%S+) (%S+) (%S+)$")
    assert(sid, "sessions.txt: a line is not `id secret grant`")
    paths[k] = "/api/v1/playback/" .. sid .. "/heartbeat"
    secrets[k] = secret
    by_grant[grant:sub(1, 48)] = k
  end
  i = 0
end

-- the next session whose last heartbeat has been answered: a second heartbeat with the same secret
-- while the first is under way would be taken for a retry, and whichever answer came second would
-- carry a secret the first one's successor retires (409 `session_cloned`), so a session is never
-- renewed twice at once (an app does not either). Each thread holds many more sessions than connections.
function request()
  for _ = 1, #paths do
    i = i % #paths + 1
    if not busy[i] then
      busy[i] = true
      return wrk.format("POST", paths[i], { ["X-Usher-Session-Secret"] = secrets[i] }, "")
    end
  end
  error("heartbeat.lua: every session of this thread is waiting for an answer; prepare more sessions")
end

function response(status, headers, body)
  common.count(status)
  if status == 200 then
    local secret = body:match('"session_secret":"([%w_-]+)"')
    local grant = body:match('"token":"([%w_-]+)')
    local k = grant and by_grant[grant:sub(1, 48)]
    if k and secret then
      secrets[k] = secret
      busy[k] = false
    else
      unmatched = unmatched + 1
    end
  end
end

done = common.done("heartbeat", true, function(threads)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("unmatched") or 0)
  end
  return { unmatched = n }, n
end)
