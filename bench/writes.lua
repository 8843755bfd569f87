-- wrk script: one of the workload's write phases, chosen by env PHASE, with a client that
-- costs the node's two cores far less than examples/workload does:
--   create:    POST /api/internal/community with a fresh slug per request (201)
--   set_lucky: POST /api/internal/action/randomness.set-lucky-number on community "bench" (200)
--   start:     POST /api/internal/process/randomness.delayed-stochastic-vote on "bench" (202),
--              calling back to $SINK (examples/sink); each thread appends the Locations it
--              gets to $LOCS-<thread>.txt
--   close:     DELETE those Locations, each once, in order (200); run `start` first
-- Counts non-2xx answers in `errors`, printed at the end. See BENCHMARKS.md, issue 14.
local threads = {}
local phase = os.getenv("PHASE") or "create"
local run = os.getenv("RUN") or tostring(os.time())
local locs_prefix = os.getenv("LOCS") or "/tmp/agora-locs"
local sink = os.getenv("SINK") or "http://127.0.0.1:19997/callback"

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  n = 0
  errors = 0
  prefix = "w" .. run .. "-" .. tid .. "-"
  local locs_file = locs_prefix .. "-" .. tid .. ".txt"
  if phase == "start" then
    out = io.open(locs_file, "a")
  elseif phase == "close" then
    locs = {}
    for l in io.lines(locs_file) do locs[#locs + 1] = l end
  end
end

function request()
  n = n + 1
  if phase == "create" then
    local body = '{"slug":"' .. prefix .. n .. '","readable_name":"Bench ' .. n .. '"}'
    return wrk.format("POST", "/api/internal/community", {["Content-Type"] = "application/json"}, body)
  elseif phase == "start" then
    return wrk.format("POST", "/api/internal/process/randomness.delayed-stochastic-vote",
      {["Content-Type"] = "application/json", ["X-Metagov-Community"] = "bench"},
      '{"callback_url":"' .. sink .. '","options":["yes","no","abstain"],"delay":600}')
  elseif phase == "close" then
    -- Past the end of the list, closing the first one again is refused (counted as non-2xx).
    return wrk.format("DELETE", locs[n] or locs[1], {["X-Metagov-Community"] = "bench"})
  end
  local body = '{"parameters":{"lucky_number":' .. (n % 50) .. '}}'
  return wrk.format("POST", "/api/internal/action/randomness.set-lucky-number",
    {["Content-Type"] = "application/json", ["X-Metagov-Community"] = "bench"}, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    errors = errors + 1
  end
  local loc = headers["location"] or headers["Location"]
  if phase == "start" and loc then
    out:write(loc .. "\n")
    out:flush()
  end
end

function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + t:get("errors") end
  io.write(string.format("non-2xx: %d\n", e))
end
