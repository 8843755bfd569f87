-- wrk script: one of the workload's single-write phases, chosen by env PHASE, with a client
-- that costs the node's two cores far less than examples/workload does:
--   create:    POST /api/internal/community with a fresh slug per request (201)
--   set_lucky: POST /api/internal/action/randomness.set-lucky-number on community "bench" (200)
-- Counts non-2xx answers in `errors`, printed at the end. See BENCHMARKS.md, issue 14.
local threads = {}
local phase = os.getenv("PHASE") or "create"
local run = os.getenv("RUN") or tostring(os.time())

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  n = 0
  errors = 0
  prefix = "w" .. run .. "-" .. tid .. "-"
end

function request()
  n = n + 1
  if phase == "create" then
    local body = '{"slug":"' .. prefix .. n .. '","readable_name":"Bench ' .. n .. '"}'
    return wrk.format("POST", "/api/internal/community", {["Content-Type"] = "application/json"}, body)
  end
  local body = '{"parameters":{"lucky_number":' .. (n % 50) .. '}}'
  return wrk.format("POST", "/api/internal/action/randomness.set-lucky-number",
    {["Content-Type"] = "application/json", ["X-Metagov-Community"] = "bench"}, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local e = 0
  for _, t in ipairs(threads) do e = e + t:get("errors") end
  io.write(string.format("non-2xx: %d\n", e))
end
