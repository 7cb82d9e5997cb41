-- ARGV: prefix, sid, seq. Returns '' (not handled), 'gone' (handled, answer forgotten) or
-- 'ack:<json>'.
local m = k('m', ARGV[2])
local high = redis.call('HGET', m, 'ahigh')
if not high or tonumber(ARGV[3]) > tonumber(high) then return '' end
local ack = redis.call('HGET', k('ma', ARGV[2]), ARGV[3])
if ack then return 'ack:' .. ack end
return 'gone'
