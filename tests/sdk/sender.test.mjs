import assert from 'node:assert/strict';
import { test } from 'node:test';
import { queue } from '../../sdk/src/queue.js';
import { sender } from '../../sdk/src/sender.js';
import { fakeClock, memStore, msg } from './fakes.mjs';

// One tab: a queue and a sender over a shared store, a fake collector and a fake clock.
const tab = (name, { S = memStore(), clock = fakeClock(), answers = [], at = 3, every = 1000, post } = {}) => {
  const t = { S, clock, posts: [], beacons: [], logs: [], online: true };
  t.Q = queue(S, name, 500, clock.now);
  t.out = sender({
    Q: t.Q,
    S,
    log: (...a) => t.logs.push(a.join(' ')),
    ready: () => t.online,
    wrap: (batch) => JSON.stringify({ writeKey: 'wk', sentAt: 'now', batch }),
    post: post || (async (body) => {
      t.posts.push(JSON.parse(body).batch.map((m) => m.messageId));
      const a = answers.shift() || { s: 200 };
      if (a.s == null) throw new TypeError('Failed to fetch');
      return a;
    }),
    // Like browsers, it refuses a body over 64 KB.
    beacon: (body) => body.length <= 65536 && t.beacons.push(JSON.parse(body).batch.map((m) => m.messageId)) > 0,
  }, at, every, clock.timer, clock.now, () => 0.5);
  t.add = (m = msg()) => (t.Q.add(m), t.out.added(), m.messageId);
  return t;
};

test('a batch goes out once flushAt events wait', async () => {
  const t = tab('A', { at: 3 });
  const ids = [t.add(), t.add(), t.add()];
  await t.clock.advance(60);
  assert.deepEqual(t.posts, [ids]);
  assert.deepEqual(t.Q.all(), []);
});

test('fewer events go out after flushInterval', async () => {
  const t = tab('A', { at: 10, every: 1000 });
  const id = t.add();
  await t.clock.advance(900);
  assert.deepEqual(t.posts, []);
  await t.clock.advance(200);
  assert.deepEqual(t.posts, [[id]]);
});

test('network errors and 5xx retry with growing backoff, then deliver', async () => {
  const t = tab('A', { at: 1, every: 100, answers: [{ s: null }, { s: 500 }, { s: 408 }] });
  const id = t.add();
  await t.clock.advance(50);
  assert.equal(t.posts.length, 1);
  await t.clock.advance(740); // first backoff is 750 ms with this jitter
  assert.equal(t.posts.length, 1);
  await t.clock.advance(100);
  assert.equal(t.posts.length, 2);
  await t.clock.advance(1600);
  assert.equal(t.posts.length, 3, 'second backoff is 1.5 s');
  await t.clock.advance(3100);
  assert.deepEqual(t.posts, [[id], [id], [id], [id]]);
  assert.deepEqual(t.Q.all(), []);
});

test('429 with Retry-After holds sending, in every tab, for that long', async () => {
  const S = memStore();
  const clock = fakeClock();
  const a = tab('A', { S, clock, at: 1, answers: [{ s: 429, h: '30' }] });
  const b = tab('B', { S, clock, at: 1 });
  const id = a.add();
  await clock.advance(50);
  assert.equal(a.posts.length, 1);
  b.add();
  await clock.advance(29000);
  assert.equal(a.posts.length + b.posts.length, 1, 'nobody sends during Retry-After');
  await clock.advance(2000);
  assert.deepEqual([...a.posts, ...b.posts].flat().filter((x) => x == id).length, 2);
  assert.deepEqual(a.Q.all(), []);
});

test('4xx refusals and 200 with rejected events are final', async () => {
  const t = tab('A', { at: 1, answers: [{ s: 401, t: '{"error":"unknown write key"}' }, { s: 200, t: '{"accepted":0,"rejected":[{"index":0,"reason":"bad"}]}' }] });
  t.add();
  await t.clock.advance(50);
  t.add();
  await t.clock.advance(5000);
  assert.equal(t.posts.length, 2);
  assert.deepEqual(t.Q.all(), []);
  assert.match(t.logs[0], /drop 1 401 .*unknown write key/);
  assert.match(t.logs[1], /ok 1 200 .*"reason":"bad"/);
});

test('nothing is sent while not ready (offline or before consent); run() resumes', async () => {
  const t = tab('A', { at: 1 });
  t.online = false;
  const id = t.add();
  await t.clock.advance(10000);
  assert.deepEqual(t.posts, []);
  t.online = true;
  t.out.run();
  await t.clock.advance(60);
  assert.deepEqual(t.posts, [[id]]);
});

test('two tabs sharing the queue never send the same event twice', async () => {
  const S = memStore();
  const clock = fakeClock();
  let gate;
  const slow = { s: 200 };
  const tabs = ['A', 'B', 'C'].map((n) => tab(n, { S, clock, at: 1 }));
  // A's request hangs until we release it, while the other tabs keep adding and flushing.
  tabs[0].out = sender({
    Q: tabs[0].Q, S, log() {}, ready: () => true,
    wrap: (batch) => JSON.stringify({ batch }),
    post: (body) => (tabs[0].posts.push(JSON.parse(body).batch.map((m) => m.messageId)), new Promise((r) => (gate = () => r(slow)))),
    beacon: () => false,
  }, 1, 1000, clock.timer, clock.now, () => 0.5);
  const ids = [];
  for (let i = 0; i < 30; i++) {
    ids.push(tabs[i % 3].add());
    await clock.advance(i % 4 ? 20 : 70);
    if (i == 10) gate();
  }
  gate();
  await clock.advance(20000);
  gate();
  await clock.advance(20000);
  const sent = tabs.flatMap((t) => t.posts.flat());
  assert.deepEqual([...sent].sort(), [...ids].sort(), 'every event sent exactly once');
});

test('unload sends everything by beacon in chunks of at most 60 KB', () => {
  const t = tab('A', { at: 1000 });
  const big = 'x'.repeat(20000);
  const ids = Array.from({ length: 7 }, () => t.add(msg({ properties: { big } })));
  t.out.unload();
  assert.ok(t.beacons.length >= 3);
  for (const b of t.beacons) assert.ok(b.length <= 2, 'three 20 KB events do not fit in 60 KB');
  assert.deepEqual(t.beacons.flat(), ids);
  assert.deepEqual(t.Q.all().map((m) => m.messageId), ids, 'kept until a request is answered');
  assert.equal(t.S.m.bond_lock, undefined, 'the lock is released for the next page');
});

test('what a beacon carried stays queued until a request is answered: an outage loses nothing', async () => {
  // The collector is down at unload: the beacon is accepted by the browser and lost on the way.
  const S = memStore();
  const leaving = tab('A', { S, at: 1000 });
  const ids = [leaving.add(), leaving.add()];
  leaving.out.unload();
  assert.deepEqual(leaving.beacons.flat(), ids);
  // The next page (its own clock: the timers of the page that left never fire), once the
  // collector is back, sends them with its own events.
  const next = tab('B', { S, clock: fakeClock(1e12 + 2000), at: 1000 });
  const own = next.add();
  await next.clock.advance(5000);
  assert.deepEqual(next.posts.flat(), [...ids, own]);
  assert.deepEqual(next.Q.all(), []);
});

test('unload keeps what the beacon refused, for the next page', () => {
  const t = tab('A', { at: 1000 });
  t.out = sender({ Q: t.Q, S: t.S, log() {}, ready: () => true, wrap: JSON.stringify, post: async () => ({ s: 200 }), beacon: () => false }, 1000, 1000, t.clock.timer, t.clock.now);
  const id = t.add();
  t.out.unload();
  assert.deepEqual(t.Q.all().map((m) => m.messageId), [id]);
});

test('unload sends nothing while offline, held back, or another tab is sending', async () => {
  const S = memStore();
  const clock = fakeClock();
  const t = tab('A', { S, clock, at: 1000 });
  t.add();
  t.online = false;
  t.out.unload();
  t.online = true;
  S.m.bond_hold = clock.now() + 5000;
  t.out.unload();
  delete S.m.bond_hold;
  const other = queue(S, 'B', 500, clock.now);
  other.lock();
  t.out.unload();
  assert.deepEqual(t.beacons, []);
  assert.equal(t.Q.all().length, 1);
  other.unlock();
  t.out.unload();
  assert.equal(t.beacons.length, 1);
});

test('coming back online sends at once, whatever the backoff', async () => {
  const t = tab('A', { at: 1, answers: [{ s: null }, { s: null }, { s: null }] });
  const id = t.add();
  await t.clock.advance(2650);
  assert.equal(t.posts.length, 3);
  assert.ok(t.S.m.bond_hold - t.clock.now() > 2000, 'held back for seconds');
  t.out.run({ type: 'online' });
  await t.clock.advance(60);
  assert.deepEqual(t.posts, [[id], [id], [id], [id]]);
  assert.deepEqual(t.Q.all(), []);
});

test('a network error is logged with its reason', async () => {
  const t = tab('A', { at: 1, answers: [{ s: null }] });
  t.add();
  await t.clock.advance(50);
  assert.match(t.logs[0], /^retry 1 0 TypeError: Failed to fetch$/);
});

test('hidden, then closed: the second unload sends only what the browser refused the first', () => {
  // The browser takes beacons until 64 KB are in flight; none completes during the test.
  let inFlight = 0;
  const t = tab('A', { at: 1000 });
  const beacons = [];
  t.out = sender({
    Q: t.Q, S: t.S, log() {}, ready: () => true, wrap: JSON.stringify, post: async () => ({ s: 200 }),
    beacon(body) {
      if (inFlight + body.length > 65536) return false;
      inFlight += body.length;
      return beacons.push(JSON.parse(body).map((m) => m.messageId));
    },
  }, 1000, 1000, t.clock.timer, t.clock.now);
  const big = 'x'.repeat(20000);
  const ids = Array.from({ length: 7 }, () => t.add(msg({ properties: { big } })));
  t.out.unload();
  assert.deepEqual(beacons, [ids.slice(0, 2)], 'one chunk fits in 64 KB, the next is refused');
  t.out.unload();
  assert.equal(beacons.length, 1, 'nothing is sent twice, and no room was made');
  inFlight = 0; // the first beacon arrived
  t.out.unload();
  assert.deepEqual(beacons, [ids.slice(0, 2), ids.slice(2, 4)]);
  assert.equal(t.Q.all().length, 7, 'all stays queued for the next page');
});

test('an event too big for any request is dropped with its reason, and the rest still leaves', async () => {
  const huge = { properties: { notes: 'x'.repeat(70000) } };
  // By beacon, as the page is hidden: the browser would refuse the huge one, and everything after.
  const leaving = tab('A', { at: 1000 });
  const big = leaving.add(msg(huge));
  const ids = [leaving.add(), leaving.add()];
  leaving.out.unload();
  assert.deepEqual(leaving.beacons, [ids]);
  assert.deepEqual(leaving.Q.all().map((m) => m.messageId), ids, 'the others stay queued until answered');
  assert.deepEqual(leaving.logs, ['skipped track: over 60 KB']);
  // By fetch: it is never posted.
  const t = tab('B', { at: 3 });
  const first = t.add();
  t.add(msg(huge));
  const last = t.add();
  await t.clock.advance(60);
  assert.deepEqual(t.posts, [[first, last]]);
  assert.deepEqual(t.Q.all(), []);
  assert.ok(!t.posts.flat().includes(big));
  assert.equal(t.logs[0], 'skipped track: over 60 KB');
});

test('a request the page abandons as it leaves holds back no later page', async () => {
  const S = memStore();
  const clock = fakeClock();
  let abort;
  const a = tab('A', { S, clock, at: 1, post: () => new Promise((_, no) => (abort = no)) });
  const id = a.add();
  await clock.advance(60); // its request is in flight
  a.out.unload(); // the visitor moves on: the beacon carries the event
  abort(new TypeError('Failed to fetch')); // and the navigation aborts the request
  await clock.advance(10);
  assert.equal(S.load('bond_hold'), undefined, 'no backoff from a request cut by leaving');
  const b = tab('B', { S, clock });
  const next = b.add();
  b.out.unload();
  assert.deepEqual(b.beacons, [[id, next]], 'the next page still sends on its way out');
});
