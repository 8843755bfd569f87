-- wrk script: examples/workload's two process write phases, chosen by env PHASE, on community
-- "bench" with randomness enabled (bench/switches.sh sets it up):
--   start: POST /api/internal/process/randomness.delayed-stochastic-vote (202); each thread
--          appends the Locations it gets to $LOCS-<thread>.txt
--   close: DELETE those Locations, each once, in order (200); run `start` first
-- The callback goes to $SINK (examples/sink). Counts non-2xx answers in `errors`.
local threads = {}
local phase = os.getenv("PHASE") or "start"
local locs_prefix = os.getenv("LOCS") or "/tmp/agora-locs"
local sink = os.getenv("SINK") or "http://127.0.0.1:19997/callback"

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  n = 0
  errors = 0
  local path = locs_prefix .. "-" .. tid .. ".txt"
  if phase == "start" then
    out = io.open(path, "a")
  else
    locs = {}
    for l in io.lines(path) do locs[#locs + 1] = l end
  end
end

function request()
  n = n + 1
  if phase == "start" then
    return wrk.format("POST", "/api/internal/process/randomness.delayed-stochastic-vote",
      {["Content-Type"] = "application/json", ["X-Metagov-Community"] = "bench"},
      '{"callback_url":"' .. sink .. '","options":["yes","no","abstain"],"delay":600}')
  end
  -- Past the end of the list, closing the first one again is refused (counted as non-2xx).
  return wrk.format("DELETE", locs[n] or locs[1], {["X-Metagov-Community"] = "bench"})
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
  io.write("non-2xx: " .. e .. "\n")
end
