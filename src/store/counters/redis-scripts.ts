// Lua scripts that make each Redis counter operation one atomic step (they mirror memory.ts and arguments.ts).
import { TAT_TOLERANCE_MS } from './arguments.js';

/**
 * Keys outlive their window by this much. Expiry runs on Redis's clock while windows follow the callers' clocks, so a
 * replica whose clock lags must still find the state; stale state is harmless because each script checks the time.
 */
const SKEW_GRACE_MS = 60_000;

/**
 * Shared by the fixed-window scripts: loads the window, or starts the one containing `now` if it has ended (an ended
 * window leaves nothing behind in any of KEYS: a token counter's reservations and holds end with it).
 */
const LOAD_WINDOW = `
local now = tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'c', 'e')
local count = tonumber(state[1]) or 0
local e = tonumber(state[2])
local function start_window(win)
  if e == nil or now >= e then
    if e ~= nil then redis.call('DEL', unpack(KEYS)) end
    count = 0
    e = now - (now % win) + win
  end
end
local function save()
  redis.call('HSET', KEYS[1], 'c', count, 'e', e)
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, math.ceil(e - now) + ${SKEW_GRACE_MS}) end
end
`;

/** KEYS: window hash. ARGV: now, amount, limit, windowMs. Returns {allowed, count, windowEnd}. */
const CONSUME_FIXED = `${LOAD_WINDOW}
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
start_window(tonumber(ARGV[4]))
if count + amount > limit then return {0, count, e} end
count = count + amount
save()
return {1, count, e}
`;

/**
 * KEYS: window hash (also holding `h`, the tokens held, and `r:<id>`, each reservation's amount until settled), holds
 * (a sorted set of reservation ids by when their hold lapses). ARGV: now, amount, limit, windowMs, id, holdUntil.
 * Returns {allowed, count, windowEnd, held}.
 */
const RESERVE_FIXED = `${LOAD_WINDOW}
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
start_window(tonumber(ARGV[4]))
local held = tonumber(redis.call('HGET', KEYS[1], 'h')) or 0
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #lapsed > 0 then
  for i = 1, #lapsed do held = held - (tonumber(redis.call('HGET', KEYS[1], 'r:' .. lapsed[i])) or 0) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HSET', KEYS[1], 'h', held)
end
if count + amount > limit then return {0, count, e, held} end
count = count + amount
held = held + amount
redis.call('HSET', KEYS[1], 'h', held, 'r:' .. ARGV[5], amount)
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
save()
return {1, count, e, held}
`;

/**
 * KEYS: window hash, holds (as RESERVE_FIXED). ARGV: id, delta. Applies delta and ends the hold only while the
 * reservation is recorded, and forgets it: a settlement runs once, however often it is sent. Returns 1 if applied.
 */
const SETTLE_FIXED = `
local field = 'r:' .. ARGV[1]
local amount = tonumber(redis.call('HGET', KEYS[1], field))
if amount == nil then return 0 end
local count = math.max(0, (tonumber(redis.call('HGET', KEYS[1], 'c')) or 0) + tonumber(ARGV[2]))
redis.call('HDEL', KEYS[1], field)
redis.call('HSET', KEYS[1], 'c', count)
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'h', -amount) end
return 1
`;

/** KEYS: window hash. ARGV: now, delta, windowMs. Returns the new count (never below 0). */
const ADJUST_FIXED = `${LOAD_WINDOW}
start_window(tonumber(ARGV[3]))
count = math.max(0, count + tonumber(ARGV[2]))
save()
return count
`;

/**
 * KEYS: slot log (list of "start:amount", oldest first), running total. ARGV: now, amount, limit, windowMs, slotMs.
 * Returns {allowed, total, resetAt}.
 */
const CONSUME_ROLLING = `
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local win = tonumber(ARGV[4])
local slot = tonumber(ARGV[5])
local function parse(entry)
  local sep = string.find(entry, ':', 1, true)
  return tonumber(string.sub(entry, 1, sep - 1)), tonumber(string.sub(entry, sep + 1))
end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local cutoff = now - win + 1
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head then break end
  local start, n = parse(head)
  if start + slot > cutoff then break end
  total = total - n
  redis.call('LPOP', KEYS[1])
end
-- When the oldest slots holding need have left (all of them if they hold less; now if there are none), read a few
-- at a time: a call of 1 refused by a full window needs only the first.
local function reset_at(need)
  local freed, last, from = 0, now, 0
  repeat
    local chunk = redis.call('LRANGE', KEYS[1], from, from + 31)
    for i = 1, #chunk do
      local start, n = parse(chunk[i])
      freed = freed + n
      last = start + slot + win - 1
      if freed >= need then return last end
    end
    from = from + 32
  until #chunk < 32
  return last
end
local function save()
  if redis.call('LLEN', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
    return
  end
  redis.call('SET', KEYS[2], total, 'PX', win + slot + ${SKEW_GRACE_MS})
  redis.call('PEXPIRE', KEYS[1], win + slot + ${SKEW_GRACE_MS})
end
local allowed = total + amount <= limit
if not allowed or amount == 0 then
  save()
  return {allowed and 1 or 0, total, reset_at(total + amount - limit)}
end
local start = now - (now % slot)
local tail = redis.call('LINDEX', KEYS[1], -1)
local tail_start, tail_n
if tail then tail_start, tail_n = parse(tail) end
if tail and tail_start >= start then
  redis.call('LSET', KEYS[1], -1, string.format('%d:%d', tail_start, tail_n + amount))
else
  redis.call('RPUSH', KEYS[1], string.format('%d:%d', start, amount))
end
total = total + amount
save()
return {1, total, reset_at(0)}
`;

/** KEYS: theoretical arrival time. ARGV: now, intervalMs, burst, weight. Returns {allowed, retryAfterMs}. */
const CONSUME_SMOOTHED = `
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local weight = tonumber(ARGV[4])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local next_tat = tat + interval * weight
local allow_at = next_tat - interval * burst
if now < allow_at - ${TAT_TOLERANCE_MS} then return {0, math.ceil(allow_at - now)} end
redis.call('SET', KEYS[1], string.format('%.3f', next_tat), 'PX', math.ceil(next_tat - now) + ${SKEW_GRACE_MS})
return {1, 0}
`;

/** KEYS: window hash. ARGV: now. Returns the fixed-window count, 0 once its window has ended. */
const GET_FIXED = `
local state = redis.call('HMGET', KEYS[1], 'c', 'e')
local count, e = tonumber(state[1]), tonumber(state[2])
if count == nil or e == nil or tonumber(ARGV[1]) >= e then return 0 end
return count
`;

/** The scripts by the name each is registered under (redis.ts), in the order BATCH numbers them. */
export const SCRIPTS = {
  tgConsumeFixed: { keys: 1, lua: CONSUME_FIXED },
  tgAdjustFixed: { keys: 1, lua: ADJUST_FIXED },
  tgReserveFixed: { keys: 2, lua: RESERVE_FIXED },
  tgSettleFixed: { keys: 2, lua: SETTLE_FIXED },
  tgConsumeRolling: { keys: 2, lua: CONSUME_ROLLING },
  tgConsumeSmoothed: { keys: 1, lua: CONSUME_SMOOTHED },
  tgGetFixed: { keys: 1, lua: GET_FIXED },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** A script's number in BATCH. */
export const SCRIPT_CODES = Object.fromEntries(Object.keys(SCRIPTS).map((name, i) => [name, i + 1])) as Record<ScriptName, number>;

/**
 * Several operations in one call, each the script above it names, run in order (each sees what the one before wrote,
 * as separate calls would). KEYS: every operation's keys, one after another. ARGV: the count of operations, then per
 * operation its script number, its count of keys, its count of arguments and the arguments. Returns one entry per
 * operation: {1, reply}, or {0, message} for one that failed (a wrong-type key, say), which fails alone.
 */
export const BATCH = `
local scripts = {}
${Object.values(SCRIPTS)
  .map((s, i) => `scripts[${i + 1}] = function(KEYS, ARGV)\n${s.lua}\nend`)
  .join('\n')}
local out = {}
local k, a = 1, 2
for i = 1, tonumber(ARGV[1]) do
  local script, nk, na = scripts[tonumber(ARGV[a])], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local keys, argv = {}, {}
  for j = 1, nk do keys[j] = KEYS[k + j - 1] end
  for j = 1, na do argv[j] = ARGV[a + 2 + j] end
  k = k + nk
  a = a + 3 + na
  local ok, reply = pcall(script, keys, argv)
  if ok then
    out[i] = {1, reply}
  else
    local message = type(reply) == 'table' and reply.err or tostring(reply)
    -- A replica (a demoted primary) fails the whole call, so the client sees READONLY and reconnects to the primary;
    -- no operation before this one can have written there.
    if string.find(message, '^READONLY') then return redis.error_reply(message) end
    out[i] = {0, message}
  end
end
return out
`;
