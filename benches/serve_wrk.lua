-- wrk script for benches/serve.sh: POST /v1/predict with one row per request, cycling through
-- the bodies in the file named by $BODIES (one JSON body per line). With $BAD_EVERY = n > 0,
-- every n-th request of a thread is a bad one instead, cycling through four kinds of bad input.
-- Every answer is checked: a good request must get 200 with "predictions", a bad one a 4xx
-- with a JSON "error"; anything else is counted as a failure and printed at the end.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local bad = {
  '{"row": ',                                  -- malformed JSON
  '{"rows": []}',                              -- empty batch
  '{"row": {"LIMIT_BAL": "a lot"}}',           -- wrong type (and missing columns)
  '{"row": {"NO_SUCH_COLUMN": 1}}',            -- unknown column
}

function init(args)
  bodies = {}
  for line in io.lines(os.getenv("BODIES")) do
    bodies[#bodies + 1] = line
  end
  bad_every = tonumber(os.getenv("BAD_EVERY") or "0")
  sent, sent_bad, ok, rejected, failed = 0, 0, 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  if bad_every > 0 and sent % bad_every == 0 then
    sent_bad = sent_bad + 1
    return wrk.format(nil, "/v1/predict", nil, bad[(sent_bad % #bad) + 1])
  end
  return wrk.format(nil, "/v1/predict", nil, bodies[(sent % #bodies) + 1])
end

function response(status, headers, body)
  if status == 200 and body:find('"predictions"', 1, true) then
    ok = ok + 1
  elseif status >= 400 and status < 500 and body:find('"error"', 1, true) then
    rejected = rejected + 1
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local t = { sent = 0, sent_bad = 0, ok = 0, rejected = 0, failed = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + thread:get(k)
    end
  end
  io.write(string.format(
    "checked: sent %d (%d bad), answered 200 %d, 4xx %d, other %d\n",
    t.sent, t.sent_bad, t.ok, t.rejected, t.failed))
end
