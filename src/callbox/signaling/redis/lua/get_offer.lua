-- ARGV: prefix, id
return encode_offer(offer_table(ARGV[2]))
