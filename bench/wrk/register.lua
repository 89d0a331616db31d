-- wrk script: POST /v1/umkm with a unique, valid public registration per request.
--   wrk -s bench/wrk/register.lua URL -- <nonce> [delay_ms] [province] [capital_idr] [spread]
--       [bearer token of a signed-in owner, role umkm: registering needs one]
-- nonce (0-999) keeps NIBs unique across runs on the same database; each wrk thread adds
-- its own id, so NIB = nonce(3) thread(2) counter(8) never repeats (NIB is UNIQUE, and a
-- duplicate would be a 409, not a registration). delay_ms > 0 paces every connection (wrk
-- has no rate limiter): rate ~= connections / (delay + latency). spread=1 sends a varying
-- X-Forwarded-For, i.e. many clients behind one ingress (REGISTRATION_TRUSTED_PROXIES=1).

local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local counter = 0

function init(args)
  nonce = tonumber(args[1] or "0") % 1000
  pace = tonumber(args[2] or "0")
  province = args[3] or "31"
  capital = args[4] or "50000000"
  spread = (args[5] or "1") == "1"
  token = args[6]
  tid = tid or 0
end

-- A NIK that passes validate_nik: region 317101, a past birth date (19yy), serial 0001-9999.
local function nik(c)
  local serial = c % 9999 + 1
  local k = math.floor(c / 9999)
  local day = k % 28 + 1
  k = math.floor(k / 28)
  local month = k % 12 + 1
  local yy = 50 + math.floor(k / 12) % 50
  return string.format("317101%02d%02d%02d%04d", day, month, yy, serial)
end

function request()
  counter = counter + 1
  local c = counter
  local body = string.format(
    '{"business_name":"Warung Bench %d-%d-%d","owner_name":"Sri Rahayu","nik":"%s",' ..
    '"nib":"%03d%02d%08d","phone":"0812-3456-7890","email":"bench@example.id",' ..
    '"province_code":"%s","regency_code":"%s71","address":"Jl. Melati No. 1",' ..
    '"postal_code":"12110","kbli_code":"10792","capital_idr":%s,"platforms":["shopee"],' ..
    '"qris":true,"consent":{"given":true,"version":"2025-01"}}',
    nonce, tid, c, nik(c), nonce, tid, c, province, province, capital)
  local headers = {["Content-Type"] = "application/json"}
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  if spread then
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", tid % 250,
      math.floor(c / 250) % 250, c % 250 + 1)
  end
  return wrk.format("POST", "/v1/umkm", headers, body)
end

-- wrk decides whether a script paces before init() runs, so delay() always exists.
function delay()
  return pace
end

-- One machine-readable line for bench/registration_http.py (latencies in microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p95":%d,"p99":%d,"mean":%.1f,"max":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    latency.max))
end
