-- ARGV: prefix, id
return encode_offer(remove_offer(ARGV[2]))
