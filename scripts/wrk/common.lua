-- Shared by the wrk scripts of scripts/bench.sh: threads' ids, the prepared files, answers counted by
-- status, and a done() that writes one JSON report.
--
-- Settings come from the environment (wrk hands script arguments to the threads only, not to done()):
--   WRK_THREADS  the -t given to wrk (threads take disjoint shares of the prepared lines)
--   WRK_DATA     the folder `usher-load prepare` wrote (tokens.txt, sessions.txt, playlists.txt, ...)
--   WRK_REPORT   where done() writes the JSON report (default: stdout)
--   WRK_RUN      a tag unique to this run (register and admit build unique tokens and devices from it)
--   WRK_EXPECT   the status every answer must have (default 200; register and admit expect 201)
--
-- The report: requests, duration_s, rate_per_s, bytes, bytes_per_request, latency_ms {mean, p50, p90,
-- p99, p999, max}, errors (wrk's connect/read/write/timeout and status > 399), statuses {code: count}
-- (when the script reads answers), unexpected (answers of another status than WRK_EXPECT, or, for a
-- script that does not read answers, status > 399 and answers shorter than WRK_MIN_BYTES), and ok.

local M = {}

local threads = {}
local counter = 0

-- main state: number the threads 0..n-1 (setup runs before each thread's init)
function M.setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      error("wrk script: " .. name .. " is not set")
    end
    return default
  end
  return v
end

-- The lines of a prepared file this thread takes: line i (from 0) goes to thread i % WRK_THREADS. With
-- `all_if_few`, a file of fewer lines than threads is every thread's (for GETs, which keep no state).
function M.share(file, id, all_if_few)
  local n = tonumber(M.env("WRK_THREADS"))
  local path = M.env("WRK_DATA") .. "/" .. file
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  local out, i = {}, 0
  for line in f:lines() do
    if line ~= "" then
      if i % n == id then
        out[#out + 1] = line
      end
      i = i + 1
    end
  end
  f:close()
  if all_if_few and i < n then
    return M.share_all(path)
  end
  assert(#out > 0, path .. " has no line for thread " .. id .. " of " .. n)
  return out
end

function M.share_all(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

-- thread state: answers by status (read by done() through thread:get)
statuses = {}
-- init() and request() of a script that GETs the paths of a prepared file (WRK_PATHS, else `file`)
-- in turn, each request the next line's: this thread's share of the lines, or every line when there
-- are fewer lines than threads.
function M.cycle_gets(file)
  local requests, i
  local function init(args)
    requests = {}
    for k, path in ipairs(M.share(M.env("WRK_PATHS", file), id, true)) do
      requests[k] = wrk.format("GET", path)
    end
    i = 0
  end
  local function request()
    i = i % #requests + 1
    return requests[i]
  end
  return init, request
end

function M.count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json(v)
  local t = type(v)
  if t == "table" then
    local parts, keys = {}, {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local val = v[k]
      if val == nil then val = v[tonumber(k)] end
      parts[#parts + 1] = json_string(k) .. ":" .. json(val)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.4f", v)
  elseif t == "boolean" then
    return tostring(v)
  elseif v == nil then
    return "null"
  end
  return json_string(v)
end

-- main state: `name` names the script; `reads` says whether it counts answers by status (its threads
-- call M.count); `extra(threads)` may return a table of more fields and a count of failures to add.
function M.done(name, reads, extra)
  return function(summary, latency, requests)
    local expect = tonumber(M.env("WRK_EXPECT", "200"))
    local min_bytes = tonumber(M.env("WRK_MIN_BYTES", "0"))
    local e = summary.errors
    local by_status, unexpected = {}, 0
    if reads then
      for _, t in ipairs(threads) do
        for code, n in pairs(t:get("statuses") or {}) do
          by_status[tostring(code)] = (by_status[tostring(code)] or 0) + n
          if tonumber(code) ~= expect then unexpected = unexpected + n end
        end
      end
    else
      unexpected = e.status
    end
    local s = summary.duration / 1e6
    local per_request = summary.requests > 0 and summary.bytes / summary.requests or 0
    local short = not reads and summary.requests > 0 and per_request < min_bytes
    local ms = function(us) return us / 1000 end
    local report = {
      script = name,
      requests = summary.requests,
      duration_s = s,
      rate_per_s = summary.requests / s,
      bytes = summary.bytes,
      bytes_per_request = per_request,
      mb_per_s = summary.bytes / s / 1e6,
      errors = {
        connect = e.connect, read = e.read, write = e.write, timeout = e.timeout, status = e.status,
      },
      statuses = reads and by_status or nil,
      expect = expect,
      unexpected = unexpected,
      short_answers = short,
      latency_ms = {
        mean = ms(latency.mean),
        p50 = ms(latency:percentile(50)),
        p90 = ms(latency:percentile(90)),
        p99 = ms(latency:percentile(99)),
        p999 = ms(latency:percentile(99.9)),
        max = ms(latency.max),
      },
    }
    local bad = e.connect + e.read + e.write + e.timeout + unexpected
    if extra then
      local fields, failures = extra(threads)
      for k, v in pairs(fields) do report[k] = v end
      bad = bad + (failures or 0)
    end
    report.ok = bad == 0 and not short and summary.requests > 0
    local text = json(report)
    local path = os.getenv("WRK_REPORT")
    if path and path ~= "" then
      local f = assert(io.open(path, "w"))
      f:write(text, "\n")
      f:close()
    end
    io.write(text, "\n")
  end
end

return M
