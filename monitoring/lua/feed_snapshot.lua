local found = redis.call('HMGET', KEYS[1], 'epoch', 'snapshot_seq', 'snapshot')
if (not found[1]) or (not found[2]) then return nil end
local out = {found[1], found[2], found[3]}
local after = tonumber(found[2]) + 1
local entries = redis.call('XRANGE', KEYS[2], after .. '-0', '+')
if #entries > 0 and entries[1][1] == after .. '-0' then
  for _, entry in ipairs(entries) do
    out[#out + 1] = entry[1]
    out[#out + 1] = entry[2][2]
  end
end
return out
