-- ARGV: prefix, sid, offer id ('' : whatever the session has). Removes the session's offer
-- or call and returns it (JSON), or an error.
local bound = redis.call('GET', k('b', ARGV[2]))
if not bound then return fail('not_in_call', 'cannot hang up: no offer or call') end
if ARGV[3] ~= '' and ARGV[3] ~= bound then
  return fail('not_found', 'cannot hang up: ' .. ARGV[3] .. ' is not your call')
end
return encode_offer(remove_offer(bound))
