package redisstore

import "github.com/redis/go-redis/v9"

// The store's atomic steps, each one Lua script (one round trip). Keys:
// KEYS[1] an entry (a hash: h = header hash, o = owner, l = lease end in
// the store's ms, r = sealed reply once answered, "" when not kept, n =
// resends taken), KEYS[2] the generation ("id:created_ms:run_id").

// claimScript: ARGV = header hash, owner, T, Z, lease ms, ttl ms, max
// resends, mode ("c" claim, "l" lookup), new generation id, worker now ms.
// Returns {state, reply or lease left}.
var claimScript = redis.NewScript(`
local g = redis.call('GET', KEYS[2])
if not g then
  g = ARGV[9] .. ':' .. ARGV[10] .. ':'
  redis.call('SET', KEYS[2], g)
end
local created = tonumber(string.match(g, '^[^:]*:(%d+):'))
if tonumber(ARGV[3]) <= created + tonumber(ARGV[4]) then return {'Q'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local e = redis.call('HMGET', KEYS[1], 'h', 'o', 'l', 'r', 'n')
if not e[1] then
  if ARGV[8] ~= 'c' then return {'D'} end
  redis.call('HSET', KEYS[1], 'h', ARGV[1], 'o', ARGV[2], 'l', now + tonumber(ARGV[5]))
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return {'C'}
end
if e[1] ~= ARGV[1] then return {'X'} end
if e[4] then
  local n = tonumber(e[5] or '0')
  if e[4] == '' or n >= tonumber(ARGV[7]) then return {'R'} end
  redis.call('HINCRBY', KEYS[1], 'n', 1)
  return {'S', e[4]}
end
if ARGV[8] == 'c' and e[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'l', now + tonumber(ARGV[5]))
  return {'C'}
end
local left = tonumber(e[3]) - now
if left > 0 then return {'P', tostring(left)} end
return {'D'}
`)

// replyScript: ARGV = header hash, sealed reply ("" not kept). Only the
// first reply of an entry that still exists is stored.
var replyScript = redis.NewScript(`
local e = redis.call('HMGET', KEYS[1], 'h', 'r')
if e[1] == ARGV[1] and not e[2] then redis.call('HSET', KEYS[1], 'r', ARGV[2]) end
return 1
`)

// generationScript runs on every new connection, on that connection:
// ARGV = the server's run_id, a new generation id, worker now ms. A
// generation made by another server process (a restart, a failover to a
// replica) is replaced by a new one, created now; one made by a claim
// (the store was emptied under a live connection) gets the run_id.
var generationScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if g then
  local id, created, run = string.match(g, '^([^:]*):(%d+):(.*)$')
  if run == ARGV[1] then return g end
  if run == '' then
    g = id .. ':' .. created .. ':' .. ARGV[1]
    redis.call('SET', KEYS[1], g)
    return g
  end
end
g = ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], g)
return g
`)
