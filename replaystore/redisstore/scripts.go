package redisstore

import "github.com/redis/go-redis/v9"

// The store's atomic steps, each one Lua script (one round trip). KEYS[1]
// is an entry, a string (a small hash would grow past Redis's compact
// encoding with the reply in it):
//
//	header hash (32) ‖ owner (16) ‖ lease end, store ms (13 digits) ‖
//	resends taken (1 digit) ‖ state (1: c claimed, a answered, g answered
//	and the reply not kept) ‖ sealed reply
//
// or, for a request only refused UNKNOWN_EPOCH so far (state u), the
// same 63 bytes (owner and lease unused) followed by up to three more
// refused header hashes.
//
// KEYS[2] is the generation, "id:created_ms:run_id". Every claim compares
// the generation's run id with the server's own (INFO inside the script:
// atomic with the claim, whatever the connections or proxies between): a
// restart, or a failover to another server process, starts a new
// generation created now (SPEC.md §17.4).

// claimScript: ARGV = header hash, owner, T, Z, lease ms, ttl ms, max
// resends (at most 9), mode ("c" claim, "l" lookup, "u" refuse
// UNKNOWN_EPOCH), new generation id, worker now ms. Returns {state, reply
// or lease left}.
var claimScript = redis.NewScript(`
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
if not run then return redis.error_reply('no run_id in INFO') end
local g = redis.call('GET', KEYS[2])
local created
if g then
  local id, c, r = string.match(g, '^([^:]*):(%d+):(.*)$')
  if r == run then created = tonumber(c) end
end
if not created then
  created = tonumber(ARGV[10])
  redis.call('SET', KEYS[2], ARGV[9] .. ':' .. ARGV[10] .. ':' .. run)
end
if tonumber(ARGV[3]) <= created + 2 * tonumber(ARGV[4]) then return {'Q'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if not v and ARGV[8] == 'u' then
  redis.call('SET', KEYS[1], ARGV[1] .. string.rep('0', 30) .. 'u', 'PX', ARGV[6])
  return {'U'}
end
if v and string.sub(v, 63, 63) == 'u' then
  if string.sub(v, 1, 32) == ARGV[1] then return {'U'} end
  local i = 64
  while i <= #v do
    if string.sub(v, i, i + 31) == ARGV[1] then return {'U'} end
    i = i + 32
  end
  if ARGV[8] == 'u' then
    if #v < 63 + 32 * 3 then
      redis.call('SET', KEYS[1], v .. ARGV[1], 'KEEPTTL')
      return {'U'}
    end
    return {'X'}
  end
  if ARGV[8] ~= 'c' then return {'D'} end
  v = nil -- refused other headers only: a claim takes the entry over
end
if not v then
  if ARGV[8] ~= 'c' then return {'D'} end
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2] .. string.format('%013d', now + tonumber(ARGV[5])) .. '0c', 'PX', ARGV[6])
  return {'C'}
end
if string.sub(v, 1, 32) ~= ARGV[1] then return {'X'} end
local state = string.sub(v, 63, 63)
if state ~= 'c' then
  local answer = string.sub(v, 64)
  -- an application's authenticated refusal (19 bytes, kind 0x12) is resent
  -- to every copy: it says the request did not run, never REPLAYED
  if state == 'a' and #answer == 19 and string.byte(answer, 2) == 18 then return {'S', answer} end
  local n = tonumber(string.sub(v, 62, 62))
  if state == 'g' or n >= tonumber(ARGV[7]) then return {'R'} end
  redis.call('SET', KEYS[1], string.sub(v, 1, 61) .. tostring(n + 1) .. string.sub(v, 63), 'KEEPTTL')
  return {'S', string.sub(v, 64)}
end
local left = tonumber(string.sub(v, 49, 61)) - now
if ARGV[8] == 'c' and string.sub(v, 33, 48) == ARGV[2] and left > 0 then
  -- this owner's own live claim, whose answer it never got
  redis.call('SET', KEYS[1], string.sub(v, 1, 48) .. string.format('%013d', now + tonumber(ARGV[5])) .. string.sub(v, 62), 'KEEPTTL')
  return {'C'}
end
if left > 0 then return {'P', tostring(left)} end
return {'D'}
`)

// replyScript: ARGV = header hash, sealed reply ("" not kept). Only the
// first reply of a claimed entry that still exists is stored.
var replyScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 32) == ARGV[1] and string.sub(v, 63, 63) == 'c' then
  local state = 'a'
  if ARGV[2] == '' then state = 'g' end
  redis.call('SET', KEYS[1], string.sub(v, 1, 62) .. state .. ARGV[2], 'KEEPTTL')
end
return 1
`)

// renewScript: ARGV = header hash, owner, lease ms. Extends the owner's
// live claim (never a lapsed one).
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 63, 63) ~= 'c' or string.sub(v, 1, 32) ~= ARGV[1] or string.sub(v, 33, 48) ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(string.sub(v, 49, 61)) <= now then return 0 end
redis.call('SET', KEYS[1], string.sub(v, 1, 48) .. string.format('%013d', now + tonumber(ARGV[3])) .. string.sub(v, 62), 'KEEPTTL')
return 1
`)
