-- ARGV: prefix, sid, dead node, hold until, grace ttl. Returns 'held', 'ended' or ''.
local sid = ARGV[2]
local m = k('m', sid)
local f = redis.call('HMGET', m, 'node', 'resumable', 'address', 'token', 'seq')
if not f[1] or f[1] ~= ARGV[3] then return '' end
redis.call('SREM', k('node', ARGV[3]), sid)
if f[2] ~= '1' then
  redis.call('DEL', m, k('ml', sid), k('ma', sid), k('mq', sid))
  if f[4] ~= '' then redis.call('DEL', k('tok', f[4])) end
  return 'ended'
end
redis.call('HSET', m, 'node', '', 'socket', '', 'away', tonumber(f[5]) + 1, 'held', ARGV[4])
redis.call('ZADD', k('holds'), ARGV[4], sid)
redis.call('INCR', k('heldfrom', f[3]))
redis.call('EXPIRE', k('heldfrom', f[3]), tonumber(ARGV[5]))
return 'held'
