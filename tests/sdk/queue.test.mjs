import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LEASE, queue } from '../../sdk/src/queue.js';
import { fakeClock, memStore, msg } from './fakes.mjs';

test('events persist in order and are removed by messageId', async () => {
  const s = memStore();
  const clock = fakeClock();
  const q = queue(s, 'tab', 10, clock.now);
  const [a, b, c] = [msg(), msg(), msg()];
  for (const m of [a, b, c]) {
    assert.equal(q.add(m), 0);
    await clock.advance(1);
  }
  assert.deepEqual(queue(s, 'other tab', 10).all(), [a, b, c], 'stored, so visible after a reload');
  q.drop([a.messageId, c.messageId]);
  assert.deepEqual(q.all(), [b]);
});

test('each event has a key of its own, so tabs adding and removing at once lose nothing', () => {
  const s = memStore();
  const a = queue(s, 'A', 10);
  const b = queue(s, 'B', 10);
  const [x, y] = [msg(), msg()];
  a.add(x);
  const seenByB = b.all();
  a.add(y);
  // B sends what it saw and removes it; A's newer event stays.
  b.drop(seenByB.map((m) => m.messageId));
  assert.deepEqual(a.all(), [y]);
  assert.equal(Object.keys(s.m).filter((k) => k.startsWith('bond_e')).length, 1);
});

test('a full queue drops the oldest events and counts them', async () => {
  const clock = fakeClock();
  const q = queue(memStore(), 'tab', 3, clock.now);
  const ms = [msg(), msg(), msg(), msg(), msg()];
  const dropped = [];
  for (const m of ms) {
    dropped.push(q.add(m));
    await clock.advance(1);
  }
  assert.deepEqual(dropped, [0, 0, 0, 1, 1]);
  assert.deepEqual(q.all(), ms.slice(2));
});

test('a corrupt or vanished event is skipped', () => {
  const s = memStore({ bond_e1_x: '{nope' });
  const q = queue(s, 'tab', 10);
  const m = msg();
  q.add(m);
  assert.deepEqual(q.all(), [m]);
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
  await clock.advance(LEASE + 1);
  assert.ok(a.lock());
});

test('arrays in properties stay arrays on a page with Prototype.js 1.6', () => {
  const q = queue(memStore(), 'tab', 10);
  const m = msg({ properties: { products: [{ sku: 'a' }, { sku: 'b' }] } });
  Array.prototype.toJSON = function () {
    return '[' + this.map((x) => JSON.stringify(x)).join(', ') + ']';
  };
  try {
    q.add(m);
  } finally {
    delete Array.prototype.toJSON;
  }
  assert.deepEqual(q.all(), [m]);
});
