-- ARGV: prefix, sid, body ('"event",payload' as JSON text), size, poster node, max entries,
--       max bytes, ttl. Numbers the letter, keeps it, and when the session's socket is on
--       another node, publishes it to that node's channel. Returns 'seq node socket numbered'
--       ('' when the session is gone).
return post_letter(ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]),
  tonumber(ARGV[7]), tonumber(ARGV[8]))
