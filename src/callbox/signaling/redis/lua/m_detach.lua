-- ARGV: prefix, sid, node, socket, hold until ('' : end now), rate ('' : none), grace ttl
-- Returns 1 when (node, socket) held the session (and now it is held or gone), else 0.
local sid = ARGV[2]
local m = k('m', sid)
local f = redis.call('HMGET', m, 'node', 'socket', 'resumable', 'address', 'token', 'seq')
if not f[1] or f[1] ~= ARGV[3] or f[2] ~= ARGV[4] then return 0 end
redis.call('SREM', k('node', f[1]), sid)
if ARGV[5] == '' or f[3] ~= '1' then
  redis.call('DEL', m, k('ml', sid), k('ma', sid), k('mq', sid))
  if f[5] ~= '' then redis.call('DEL', k('tok', f[5])) end
  return 1
end
redis.call('HSET', m, 'node', '', 'socket', '', 'away', tonumber(f[6]) + 1, 'held', ARGV[5],
  'rate', ARGV[6])
redis.call('ZADD', k('holds'), ARGV[5], sid)
redis.call('INCR', k('heldfrom', f[4]))
redis.call('EXPIRE', k('heldfrom', f[4]), tonumber(ARGV[7]))
return 1
