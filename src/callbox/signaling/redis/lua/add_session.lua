-- ARGV: prefix, sid, name, room, identity, key1, key2, ttl
local sid, name, room, identity, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[8])
local names = k('n', room)
for i = 6, 7 do
  if redis.call('HEXISTS', names, ARGV[i]) == 1 then return 0 end
end
redis.call('HSET', names, ARGV[6], sid, ARGV[7], sid)
redis.call('EXPIRE', names, ttl)
redis.call('HSET', k('s', sid), 'name', name, 'room', room, 'identity', identity,
  'k1', ARGV[6], 'k2', ARGV[7])
redis.call('EXPIRE', k('s', sid), ttl)
redis.call('INCR', k('count', 'sessions'))
return 1
