/**
 * One atomic step for a batch of changes and the offsets that follow them.
 *
 * Layout (prefix = sinks.redis.keyPrefix, T = schema.table, K = canonical JSON of the key):
 *   <prefix>row:T:K      hash: one field per column, each value JSON; the read model
 *   <prefix>ver:T        hash: K -> version of the last change applied (kept after a
 *                        delete, so an older change replayed later cannot bring a row back)
 *   <prefix>keys:T       set of the row keys of T (what a truncate clears)
 *   <prefix>trunc:T      version of the last truncate: older changes of T are ignored
 *   <prefix>offsets:G    hash: topic:partition -> next offset, for consumer group G
 *   <prefix>gen:G        hash: topic:partition -> generation marker, set by the deliverer
 *                        (never by this script) when it starts or rebuilds a partition;
 *                        gone after a flush or an empty restart, which is how a lost
 *                        read model is told from a new one (delivery/sink-state.ts)
 *   <prefix>moved:T:K    hash: the whole row of old key K of a primary-key change, kept
 *                        aside by the delete of K until the new key's update takes its
 *                        unchanged columns (that update always removes it)
 *   <prefix>pend:T:K     set: columns new key K still lacks because its update came before
 *                        the old key's delete; that delete fills them from the old row
 *   <prefix>aux:T        set of the moved/pend keys of T (what a truncate clears too)
 *
 * Versions are fixed-width text (eventVersion) so Lua compares them as strings.
 * ARGV: prefix, group, generation, nOffsets, (tp, offset)*, then per op:
 *   'u', T, K, version, nCols, (col, json)*, nKeep, keep*   upsert; `keep` = unchanged columns
 *   'd', T, K, version                                       delete
 *   'm', T, K, version, NK                                   delete of old key K, moved to NK
 *   'U', T, K, version, OK, OKv, nCols, (col, json)*, nKeep, keep*
 *                                                            upsert of new key K moved from OK,
 *                                                            whose delete has version OKv
 *   't', T, version                                          truncate
 * Returns one integer per op: 1 applied, 0 ignored as older. The offsets are stored only
 * once every op ran; a failure part way leaves some ops applied (harmless: the batch is
 * written again, and each op is idempotent under the version check) but no offset moved.
 * generation '-' skips the marker check (tests, replay); otherwise every offset's
 * partition must carry that marker, or the script writes nothing and fails with
 * STREAMCTL_STATE_LOST: a batch written into an emptied Redis would hide the loss.
 * Keys are built inside the script, so this needs a single Redis (not Redis Cluster).
 */
export const APPLY_BATCH_LUA = `
local prefix = ARGV[1]
local group = ARGV[2]
local generation = ARGV[3]
local i = 4
local nOffsets = tonumber(ARGV[i]); i = i + 1
-- Offsets are written last: Redis does not undo a script that fails half way, so
-- offsets written first would survive a failed batch and skip its events on restart.
local offsetsAt = i
i = i + 2 * nOffsets
if generation ~= '-' then
  for j = 0, nOffsets - 1 do
    local tp = ARGV[offsetsAt + 2 * j]
    if redis.call('HGET', prefix .. 'gen:' .. group, tp) ~= generation then
      return redis.error_reply('STREAMCTL_STATE_LOST ' .. tp .. ' has no generation marker ' .. generation .. ' (the read model was emptied or rebuilt)')
    end
  end
end
local results = {}
local function newer(t, k, v)
  local floor = redis.call('GET', prefix .. 'trunc:' .. t)
  if floor and floor >= v then return false end
  if k then
    local cur = redis.call('HGET', prefix .. 'ver:' .. t, k)
    if cur and cur >= v then return false end
  end
  return true
end
-- The upsert shared by 'u' and 'U'; returns the row's hash key.
local function upsert(t, k, v, nCols, colsAt, nKeep, keepAt)
  local rowKey = prefix .. 'row:' .. t .. ':' .. k
  local pendKey = prefix .. 'pend:' .. t .. ':' .. k
  local wanted = {}
  local args = {}
  for c = 0, nCols - 1 do
    local name = ARGV[colsAt + 2 * c]
    wanted[name] = true
    args[#args + 1] = name
    args[#args + 1] = ARGV[colsAt + 2 * c + 1]
    -- A newer value ends a wait for the old key's delete to supply this column.
    redis.call('SREM', pendKey, name)
  end
  for c = 0, nKeep - 1 do wanted[ARGV[keepAt + c]] = true end
  -- Columns that no longer exist (dropped, renamed) go; unchanged ones stay as they are.
  for _, field in ipairs(redis.call('HKEYS', rowKey)) do
    if not wanted[field] then redis.call('HDEL', rowKey, field) end
  end
  if #args > 0 then redis.call('HSET', rowKey, unpack(args)) end
  redis.call('HSET', prefix .. 'ver:' .. t, k, v)
  redis.call('SADD', prefix .. 'keys:' .. t, rowKey)
  return rowKey
end
local function removeRow(t, k, v)
  local rowKey = prefix .. 'row:' .. t .. ':' .. k
  redis.call('DEL', rowKey, prefix .. 'pend:' .. t .. ':' .. k)
  redis.call('SREM', prefix .. 'keys:' .. t, rowKey)
  redis.call('HSET', prefix .. 'ver:' .. t, k, v)
end
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'U' then
    local t, k, v, ok, okv = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
    local nCols = tonumber(ARGV[i + 6])
    local colsAt = i + 7
    local nKeep = tonumber(ARGV[colsAt + 2 * nCols])
    local keepAt = colsAt + 2 * nCols + 1
    i = keepAt + nKeep
    local movedKey = prefix .. 'moved:' .. t .. ':' .. ok
    if newer(t, k, v) then
      local rowKey = upsert(t, k, v, nCols, colsAt, nKeep, keepAt)
      local stashed = redis.call('EXISTS', movedKey) == 1
      local oldVer = redis.call('HGET', prefix .. 'ver:' .. t, ok)
      local oldDone = oldVer and oldVer >= okv
      local pendKey = prefix .. 'pend:' .. t .. ':' .. k
      for c = 0, nKeep - 1 do
        local col = ARGV[keepAt + c]
        if redis.call('HEXISTS', rowKey, col) == 0 then
          if stashed then
            local value = redis.call('HGET', movedKey, col)
            if value then redis.call('HSET', rowKey, col, value) end
          elseif not oldDone then
            -- The old key's delete is still to come: it fills this column from the old row.
            redis.call('SADD', pendKey, col)
            redis.call('SADD', prefix .. 'aux:' .. t, pendKey)
          end
        end
      end
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
    -- Whatever the verdict, the row kept aside has served: a newer image of K exists.
    redis.call('DEL', movedKey)
    redis.call('SREM', prefix .. 'aux:' .. t, movedKey)
  elseif op == 'm' then
    local t, k, v, nk = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    i = i + 5
    if newer(t, k, v) then
      local rowKey = prefix .. 'row:' .. t .. ':' .. k
      local newRow = prefix .. 'row:' .. t .. ':' .. nk
      local pendKey = prefix .. 'pend:' .. t .. ':' .. nk
      local newVer = redis.call('HGET', prefix .. 'ver:' .. t, nk)
      if newVer and newVer > v then
        -- The new key's update came first: give it the columns it is waiting for.
        for _, col in ipairs(redis.call('SMEMBERS', pendKey)) do
          local value = redis.call('HGET', rowKey, col)
          if value then redis.call('HSET', newRow, col, value) end
        end
        redis.call('DEL', pendKey)
        redis.call('SREM', prefix .. 'aux:' .. t, pendKey)
      elseif redis.call('EXISTS', rowKey) == 1 then
        -- The update is still to come: keep the whole old row aside for it.
        local movedKey = prefix .. 'moved:' .. t .. ':' .. k
        redis.call('DEL', movedKey)
        redis.call('RENAME', rowKey, movedKey)
        redis.call('SADD', prefix .. 'aux:' .. t, movedKey)
      end
      removeRow(t, k, v)
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
  elseif op == 'u' then
    local t, k, v = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local nCols = tonumber(ARGV[i + 4])
    local colsAt = i + 5
    local nKeep = tonumber(ARGV[colsAt + 2 * nCols])
    local keepAt = colsAt + 2 * nCols + 1
    i = keepAt + nKeep
    if newer(t, k, v) then
      upsert(t, k, v, nCols, colsAt, nKeep, keepAt)
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
  elseif op == 'd' then
    local t, k, v = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    i = i + 4
    if newer(t, k, v) then
      removeRow(t, k, v)
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
  elseif op == 't' then
    local t, v = ARGV[i + 1], ARGV[i + 2]
    i = i + 3
    if newer(t, nil, v) then
      local keysKey = prefix .. 'keys:' .. t
      local members = redis.call('SMEMBERS', keysKey)
      for start = 1, #members, 500 do
        redis.call('DEL', unpack(members, start, math.min(start + 499, #members)))
      end
      local auxKey = prefix .. 'aux:' .. t
      local aux = redis.call('SMEMBERS', auxKey)
      for start = 1, #aux, 500 do
        redis.call('DEL', unpack(aux, start, math.min(start + 499, #aux)))
      end
      redis.call('DEL', keysKey, auxKey, prefix .. 'ver:' .. t)
      redis.call('SET', prefix .. 'trunc:' .. t, v)
      results[#results + 1] = 1
    else
      results[#results + 1] = 0
    end
  else
    return redis.error_reply('unknown op ' .. tostring(op) .. ' at ARGV[' .. i .. ']')
  end
end
local offsetsKey = prefix .. 'offsets:' .. group
for j = 0, nOffsets - 1 do
  local tp, off = ARGV[offsetsAt + 2 * j], ARGV[offsetsAt + 2 * j + 1]
  local cur = redis.call('HGET', offsetsKey, tp)
  if (not cur) or tonumber(cur) < tonumber(off) then redis.call('HSET', offsetsKey, tp, off) end
end
return results
`;
