-- ARGV: prefix, sid, candidate json, candidate size, caller ('' | '1' | '0'), offer id hint,
--       max_pending, max_pending_bytes, max_buffered, max_buffered_bytes, max_room_bytes, ttl,
--       then, to post the relay in the same step: letter body ('' : do not), its size,
--       poster node, log max entries, log max bytes, log ttl.
-- Returns 'held', 'buffered', 'to:<sid>' (+ ' <seq node socket numbered>' when posted) or
-- an error.
local sid, cand, size, caller, hint = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local ttl = tonumber(ARGV[12])
local function relay(target)
  if ARGV[13] == '' then return 'to:' .. target end
  return 'to:' .. target .. ' ' .. post_letter(target, ARGV[13], tonumber(ARGV[14]), ARGV[15],
    tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18]))
end
if redis.call('EXISTS', k('s', sid)) == 0 then
  return fail('unauthorized', 'this connection has no session')
end
local bound = redis.call('GET', k('b', sid))
if not bound then
  if caller == '1' then return fail('forbidden', 'didIOffer is true but there is no offer') end
  local count = redis.call('LLEN', k('p', sid))
  local bytes = tonumber(redis.call('GET', k('pb', sid)) or '0')
  if count >= tonumber(ARGV[7]) or bytes + size > tonumber(ARGV[8]) then
    return fail('too_large|pending_candidates', 'already holding ' .. count ..
      ' candidates (' .. bytes .. ' characters) sent before an answer')
  end
  redis.call('RPUSH', k('p', sid), cand)
  redis.call('INCRBY', k('pb', sid), size)
  redis.call('EXPIRE', k('p', sid), ttl)
  redis.call('EXPIRE', k('pb', sid), ttl)
  return 'held'
end
if hint ~= '' and hint ~= bound then
  return fail('forbidden', 'offer ' .. hint .. " is not this session's call")
end
local f = redis.call('HMGET', k('o', bound), 'offerer', 'answerer', 'room', 'cbytes')
local offerer, answerer, room = f[1], f[2], f[3]
local is_offerer = offerer == sid
if caller ~= '' and (caller == '1') ~= is_offerer then
  return fail('forbidden', "didIOffer does not match this session's role")
end
if not is_offerer then return relay(offerer) end
if answerer ~= '' then return relay(answerer) end
local weight = tonumber(redis.call('GET', k('wb', room)) or '0')
if weight + size > tonumber(ARGV[11]) then
  return fail('too_large|room_offer_bytes',
    'room ' .. room .. ' is full (' .. weight .. ' characters of offers)')
end
local count = redis.call('LLEN', k('oc', bound))
local bytes = tonumber(f[4])
if count >= tonumber(ARGV[9]) or bytes + size > tonumber(ARGV[10]) then
  return fail('too_large|buffered_candidates', 'already holding ' .. count ..
    ' candidates (' .. bytes .. ' characters) on offer ' .. bound)
end
redis.call('RPUSH', k('oc', bound), cand)
redis.call('EXPIRE', k('oc', bound), ttl)
redis.call('HINCRBY', k('o', bound), 'size', size)
redis.call('HINCRBY', k('o', bound), 'cbytes', size)
redis.call('INCRBY', k('wb', room), size)
return 'buffered'
