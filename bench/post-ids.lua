-- wrk script: POST the JSON body in the file named by $BODY, with a new
-- customer id on every request (so sampling by customer samples requests).
local f = assert(io.open(os.getenv("BODY"), "r"))
local template = f:read("*a")
f:close()
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local body = template:gsub('"customerID":"[^"]*"', '"customerID":"C' .. counter .. '"', 1)
  return wrk.format(nil, nil, nil, body)
end
