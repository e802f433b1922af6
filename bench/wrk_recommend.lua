-- wrk script: GET one user's recommendations per request, users taken in file order.
--
-- Usage: wrk -t1 -c32 -d20s --latency -s bench/wrk_recommend.lua URL -- USERS START PREFIX QUERY
--   USERS   a file with one user id per line
--   START   how many users of the file to skip first (a run continues where the last stopped)
--   PREFIX  the path before the user id (default /api/v1/recommend/)
--   QUERY   the query string after it (default ?context=home&k=20)
-- Request n (from 0) asks for user (START + n) mod (users in the file): with more users than
-- requests, no user repeats within a run (every request a cache miss); with a small file,
-- every user repeats (cache hits once their lists are stored).
-- done() prints one machine-readable line (bench/wrk_done.lua).

local ids = {}
local count = 0
local cursor = 0
local prefix = "/api/v1/recommend/"
local query = "?context=home&k=20"

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then
      count = count + 1
      ids[count] = line
    end
  end
  file:close()
  assert(count > 0, "no user ids in " .. args[1])
  cursor = tonumber(args[2]) or 0
  prefix = args[3] or prefix
  query = args[4] or query
end

function request()
  local id = ids[cursor % count + 1]
  cursor = cursor + 1
  return wrk.format("GET", prefix .. id .. query)
end

-- done(): the BENCH_RESULT line, shared with the other scripts (the file beside this one).
dofile(debug.getinfo(1, "S").source:sub(2):match("^(.*/)") .. "wrk_done.lua")
