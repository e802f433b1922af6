-- wrk script: POST one watch event per request, every request a NEW event.
--
-- Each request gets a fresh random (version-4 shaped) requestId, userId and movieId, so the
-- service stores every request as a new raw event (no idempotent duplicates).
--
-- Usage: wrk -t1 -c32 -d15s --latency -s bench/wrk_event.lua URL -- SEED
-- SEED (an integer) seeds math.random; each thread adds its own index, so threads and runs
-- with different seeds never replay the same id sequence.
-- done() prints one machine-readable line (bench/wrk_done.lua).

local random = math.random
local format = string.format

local thread_index = 0
local threads = {}

function setup(thread)
  thread_index = thread_index + 1
  thread:set("index", thread_index)
  table.insert(threads, thread)
end

local function uuid4()
  return format(
    "%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    random(0, 0xffff), random(0, 0xffff),
    random(0, 0xffff),
    random(0, 0xfff),
    random(0x8000, 0xbfff),
    random(0, 0xffff), random(0, 0xffff), random(0, 0xffff)
  )
end

function init(args)
  local seed = tonumber(args[1]) or os.time()
  math.randomseed(seed + 7919 * (index or 1))
  -- LuaJIT's first values after seeding are weakly mixed: discard a few.
  for _ = 1, 16 do random() end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local body_format = '{"requestId":"%s","userId":"%s","movieId":"%s",'
  .. '"clientTimestamp":"2024-05-01T12:00:00Z",'
  .. '"metadata":{"watchDuration":1200,"device":"web","quality":"1080p",'
  .. '"sessionId":null,"progressPercent":42.5}}'

function request()
  return wrk.format(nil, nil, nil, format(body_format, uuid4(), uuid4(), uuid4()))
end

-- done(): the BENCH_RESULT line, shared with the other scripts (the file beside this one).
dofile(debug.getinfo(1, "S").source:sub(2):match("^(.*/)") .. "wrk_done.lua")
