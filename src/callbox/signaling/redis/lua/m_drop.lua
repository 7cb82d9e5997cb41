-- ARGV: prefix, sid
local sid = ARGV[2]
local m = k('m', sid)
local f = redis.call('HMGET', m, 'node', 'address', 'token', 'held')
if not f[2] then return 0 end
if f[1] ~= '' then redis.call('SREM', k('node', f[1]), sid) end
if f[3] ~= '' then redis.call('DEL', k('tok', f[3])) end
if f[4] ~= '' and redis.call('ZREM', k('holds'), sid) == 1 then
  if redis.call('DECR', k('heldfrom', f[2])) <= 0 then redis.call('DEL', k('heldfrom', f[2])) end
end
redis.call('DEL', m, k('ml', sid), k('ma', sid), k('mq', sid))
return 1
