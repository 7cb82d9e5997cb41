-- ARGV: prefix, sid, body ('"event",payload' as JSON text), size, poster node, max entries,
--       max bytes, ttl. Numbers the letter, keeps it, and when the session's socket is on
--       another node, publishes it to that node's channel. Returns 'seq node socket numbered'
--       ('' when the session is gone).
local sid, size = ARGV[2], tonumber(ARGV[4])
local m = k('m', sid)
local f = redis.call('HMGET', m, 'node', 'socket', 'resumable')
if not f[3] then return '' end
local seq = redis.call('HINCRBY', m, 'seq', 1)
local letter = '[' .. seq .. ',' .. ARGV[3] .. ']'
local log = k('ml', sid)
-- kept as '<size> <letter>': the size the caller weighed it at, which trimming gives back
redis.call('RPUSH', log, size .. ' ' .. letter)
local bytes = redis.call('HINCRBY', m, 'lbytes', size)
local n = redis.call('LLEN', log)
while n > tonumber(ARGV[6]) or (bytes > tonumber(ARGV[7]) and n > 1) do
  local old = redis.call('LPOP', log)
  bytes = redis.call('HINCRBY', m, 'lbytes', -tonumber(string.match(old, '^(%d+) ')))
  n = n - 1
end
redis.call('EXPIRE', log, tonumber(ARGV[8]))
if f[1] ~= '' and f[1] ~= ARGV[5] then
  redis.call('PUBLISH', k('to', f[1]), sid .. ' ' .. f[3] .. ' ' .. letter)
end
return seq .. ' ' .. f[1] .. ' ' .. f[2] .. ' ' .. f[3]
