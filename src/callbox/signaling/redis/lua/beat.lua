-- A node's heartbeat, in one round trip (a node busy enough to starve its event loop must
-- still land a beat). ARGV[2] the node, ARGV[3] seconds of silence after which a node is
-- dead, ARGV[4] the epoch to set when Redis has none (it is new, or it lost its data).
-- The clock is Redis's, so the nodes' clocks need not agree.
-- Returns {epoch, 1 if the node was still in the set (0: another node declared it dead),
-- then every dead node this call claimed: removed from the set, so no other node takes it}.
local node, dead_after, fresh = ARGV[2], tonumber(ARGV[3]), ARGV[4]
redis.call('SET', k('epoch'), fresh, 'NX')
local epoch = redis.call('GET', k('epoch'))
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local known = redis.call('ZSCORE', k('nodes'), node) and 1 or 0
redis.call('ZADD', k('nodes'), string.format('%.6f', now), node)
local result = {epoch, known}
local cutoff = string.format('%.6f', now - dead_after)
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', k('nodes'), '-inf', cutoff)) do
  redis.call('ZREM', k('nodes'), dead)
  result[#result + 1] = dead
end
return result
