-- ARGV: prefix, sid, seq, ack json, size, max entries, max bytes, ttl
local sid, seq, size = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[5])
local m = k('m', sid)
if redis.call('EXISTS', m) == 0 then return 0 end
local acks, order = k('ma', sid), k('mq', sid)
local old = redis.call('HGET', acks, ARGV[3])
if old then
  redis.call('HINCRBY', m, 'abytes', -#old)
else
  redis.call('RPUSH', order, ARGV[3])
end
redis.call('HSET', acks, ARGV[3], ARGV[4])
local bytes = redis.call('HINCRBY', m, 'abytes', #ARGV[4])
if seq > tonumber(redis.call('HGET', m, 'ahigh')) then redis.call('HSET', m, 'ahigh', seq) end
local n = redis.call('LLEN', order)
while n > tonumber(ARGV[6]) or (bytes > tonumber(ARGV[7]) and n > 1) do
  local first = redis.call('LPOP', order)
  local gone = redis.call('HGET', acks, first)
  redis.call('HDEL', acks, first)
  if gone then bytes = redis.call('HINCRBY', m, 'abytes', -#gone) end
  n = n - 1
end
redis.call('EXPIRE', acks, tonumber(ARGV[8]))
redis.call('EXPIRE', order, tonumber(ARGV[8]))
return 1
