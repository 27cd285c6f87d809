-- POSTs the platform's example call-state callback, with a new call uuid per request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("CALLSTREAM_BENCH_BODY"), "rb")
local template = f:read("*a")
f:close()
local counter = 0
local thread_id = math.random(1, 2147483647)
request = function()
  counter = counter + 1
  local id = string.format("%08x-0000-11ea-a849-%012x", thread_id, counter)
  local body = template:gsub("526d637c%-e8fe%-11ea%-a849%-cf6e45e88543", id)
  return wrk.format(nil, nil, nil, body)
end
