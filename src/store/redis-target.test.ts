import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisUrlError, parseRedisTarget } from './redis-target.js';
import { redactUrl } from './errors.js';

test('one server: the URL goes to ioredis as written', () => {
  assert.deepEqual(parseRedisTarget('redis://:pw@cache:6380/2'), { kind: 'single', url: 'redis://:pw@cache:6380/2' });
  assert.deepEqual(parseRedisTarget('rediss://cache'), { kind: 'single', url: 'rediss://cache' });
});

test('a cluster: every seed node, credentials, TLS, the default port', () => {
  assert.deepEqual(parseRedisTarget('redis+cluster://a:7000,b,[::1]:7002'), {
    kind: 'cluster',
    nodes: [
      { host: 'a', port: 7000 },
      { host: 'b', port: 6379 },
      { host: '::1', port: 7002 },
    ],
    tls: false,
  });
  assert.deepEqual(parseRedisTarget('REDISS+CLUSTER://app:p%40ss:w@a:7000/'), { kind: 'cluster', nodes: [{ host: 'a', port: 7000 }], username: 'app', password: 'p@ss:w', tls: true });
});

test('Sentinel: its nodes (port 26379 by default), the primary group, the database', () => {
  assert.deepEqual(parseRedisTarget('redis+sentinel://:secret@s1,s2:26380/mymaster'), {
    kind: 'sentinel',
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26380 },
    ],
    name: 'mymaster',
    db: 0,
    password: 'secret',
    tls: false,
  });
  assert.equal((parseRedisTarget('rediss+sentinel://s1/my%20primary/3') as { name: string }).name, 'my primary');
  assert.equal((parseRedisTarget('rediss+sentinel://s1/m/3') as { db: number }).db, 3);
});

test('Sentinels that ask for credentials of their own: sentinelUsername and sentinelPassword', () => {
  const target = parseRedisTarget('redis+sentinel://:pw@s1/m?sentinelPassword=s%26cret&sentinelUsername=watcher');
  assert.deepEqual(
    { password: (target as { password?: string }).password, sentinelPassword: (target as { sentinelPassword?: string }).sentinelPassword, sentinelUsername: (target as { sentinelUsername?: string }).sentinelUsername },
    { password: 'pw', sentinelPassword: 's&cret', sentinelUsername: 'watcher' },
  );
  assert.equal((parseRedisTarget('redis+sentinel://s1/m/2?sentinelPassword=x') as { db: number }).db, 2);
});

test('what is refused, and why', () => {
  const refused: Array<[string, RegExp]> = [
    ['http://cache:6379', /expected redis:\/\/, rediss:\/\//],
    ['cache:6379', /expected/],
    ['redis+cluster://', /at least one HOST:PORT/],
    ['redis+cluster://a:1,,b:2', /"" is no HOST:PORT/],
    ['redis+cluster://a:99999', /"a:99999" is no HOST:PORT/],
    ['redis+cluster://a:1/0', /takes no path/],
    ['redis+cluster://a:1?tls=true', /takes no query/],
    ['redis+cluster://a:1/?sentinelPassword=x', /takes no query/],
    ['redis+sentinel://s1', /primary group Sentinel watches is missing/],
    ['redis+sentinel://s1/', /primary group Sentinel watches is missing/],
    ['redis+sentinel://s1/m/x', /expected a database number/],
    ['redis+sentinel://s1/m/1/2', /expected a database number/],
    ['redis+sentinel://:%zz@s1/m', /not percent-encoded/],
    ['redis+sentinel://s1/m?password=x', /unknown parameter "password" \(it takes sentinelUsername and sentinelPassword\)/],
    ['redis+sentinel://s1/m?sentinelPassword=a&sentinelPassword=b', /sentinelPassword given twice/],
    ['redis+sentinel://s1/m#x', /takes no fragment/],
  ];
  for (const [url, message] of refused) assert.throws(() => parseRedisTarget(url), (err: Error) => err instanceof RedisUrlError && message.test(err.message), url);
});

test('a URL of several hosts loses its password in messages, as any other', () => {
  assert.equal(redactUrl('redis+cluster://app:s3cret@a:7000,b:7001'), 'redis+cluster://app:***@a:7000,b:7001');
  assert.equal(redactUrl('redis+sentinel://:s3cret@s1,s2/m'), 'redis+sentinel://:***@s1,s2/m');
  assert.equal(redactUrl('redis+cluster://a:7000,b:7001'), 'redis+cluster://a:7000,b:7001');
  assert.equal(redactUrl('redis://:s3cret@cache:6379'), 'redis://:***@cache:6379');
  assert.equal(redactUrl('redis+sentinel://:s3cret@s1,s2/m?sentinelPassword=s3cret2'), 'redis+sentinel://:***@s1,s2/m?sentinelPassword=***');
  assert.equal(redactUrl('redis+sentinel://s1/m?sentinelUsername=u&sentinelPassword=s3cret'), 'redis+sentinel://s1/m?sentinelUsername=u&sentinelPassword=***');
});
