-- wrk script: POSTs ballots with distinct voter ids into the votes listed one per line in
-- the file named by env VOTES_FILE (process Locations), round-robin. See BENCHMARKS.md.
local threads = {}
local votes = {}
for line in io.lines(os.getenv("VOTES_FILE")) do
  if #line > 0 then votes[#votes + 1] = line end
end

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  n = 0
  prefix = "t" .. tid .. "-"
end

function request()
  n = n + 1
  local path = votes[(n % #votes) + 1] .. "/ballots"
  local body = '{"voter":"' .. prefix .. n .. '","choice":["a"]}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    errors = (errors or 0) + 1
  end
end
