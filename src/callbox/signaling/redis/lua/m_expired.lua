-- ARGV: prefix, now. Claims the holds that ran out (each by one caller only).
local out = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', k('holds'), '-inf', ARGV[2])) do
  if redis.call('ZREM', k('holds'), sid) == 1 then
    local f = redis.call('HMGET', k('m', sid), 'address', 'token')
    if f[1] then
      if redis.call('DECR', k('heldfrom', f[1])) <= 0 then redis.call('DEL', k('heldfrom', f[1])) end
      if f[2] ~= '' then redis.call('DEL', k('tok', f[2])) end
      redis.call('HSET', k('m', sid), 'held', '', 'token', '')
    end
    out[#out + 1] = sid
  end
end
return out
