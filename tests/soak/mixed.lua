-- wrk script for the soak: a mix of what clients and staff do.
-- $BODY names a file with one score request; $KEY is an admin key.
local f = assert(io.open(os.getenv("BODY"), "r"))
local score_body = f:read("*a")
f:close()
local key = os.getenv("KEY")
local ids = {}
for id in (os.getenv("IDS") or "1"):gmatch("[^,]+") do ids[#ids + 1] = id end
local n = 0

request = function()
  n = n + 1
  local h = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }
  local k = n % 10
  if k < 5 then
    return wrk.format("POST", "/v1/score", h, score_body)
  elseif k < 7 then
    return wrk.format("GET", "/v1/risk-list?limit=50", h)
  elseif k == 7 then
    return wrk.format("GET", "/v1/customers/" .. ids[(n % #ids) + 1], h)
  elseif k == 8 then
    return wrk.format("GET", "/v1/interventions?status=open&limit=20", h)
  else
    return wrk.format("GET", "/readyz", h)
  end
end
