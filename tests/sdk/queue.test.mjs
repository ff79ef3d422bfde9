import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LEASE, queue } from '../../sdk/src/queue.js';
import { fakeClock, memStore, msg } from './fakes.mjs';

test('events persist in order and are removed by messageId', () => {
  const s = memStore();
  const q = queue(s, 'tab', 10);
  const [a, b, c] = [msg(), msg(), msg()];
  for (const m of [a, b, c]) assert.equal(q.add(m), 0);
  assert.deepEqual(queue(s, 'other tab', 10).all(), [a, b, c], 'stored, so visible after a reload');
  q.drop([a.messageId, c.messageId]);
  assert.deepEqual(q.all(), [b]);
});

test('a full queue drops the oldest events and counts them', () => {
  const q = queue(memStore(), 'tab', 3);
  const ms = [msg(), msg(), msg(), msg(), msg()];
  const dropped = ms.map((m) => q.add(m));
  assert.deepEqual(dropped, [0, 0, 0, 1, 1]);
  assert.deepEqual(q.all(), ms.slice(2));
});

test('a full disk sheds the oldest until the queue fits', () => {
  const s = memStore();
  const q = queue(s, 'tab', 100);
  q.add(msg());
  q.add(msg());
  const set = s.set;
  // This disk takes at most one event.
  s.set = (k, v) => (JSON.parse(v).length <= 1 ? set(k, v) : undefined);
  const last = msg();
  assert.equal(q.add(last), 2);
  assert.deepEqual(q.all(), [last]);
});

test('a corrupt stored queue reads as empty', () => {
  assert.deepEqual(queue(memStore({ bond_q: 'not json' }), 'tab', 10).all(), []);
});

test('only one tab holds the lock until it unlocks or its lease lapses', async () => {
  const s = memStore();
  const clock = fakeClock();
  const a = queue(s, 'A', 10, clock.now);
  const b = queue(s, 'B', 10, clock.now);
  assert.ok(a.lock());
  assert.ok(a.lock(), 'the holder may renew');
  assert.ok(!b.lock());
  assert.ok(a.locked() && !b.locked());
  b.unlock();
  assert.ok(a.locked(), 'only the holder can unlock');
  a.unlock();
  assert.ok(b.lock());
  assert.ok(!a.lock());
  // B dies while holding the lock: its lease lapses and A takes over.
  s.m.bond_lock = JSON.stringify({ o: 'B', t: clock.now() + LEASE });
  assert.ok(!a.lock());
  await clock.advance(LEASE + 1);
  assert.ok(a.lock());
});
