import assert from 'node:assert/strict';
import { test } from 'node:test';
import { anonId, sessionId } from '../../sdk/src/id.js';
import { memStore } from './fakes.mjs';

const jar = (value) => ({ value, load() { return this.value; }, save(v) { this.value = v; } });
const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

test('first event creates one id and stores it in cookie and localStorage', () => {
  const c = jar(undefined);
  const s = memStore();
  const id = anonId(c, s);
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(c.value, id);
  assert.equal(s.m.bond_id, id);
  assert.equal(anonId(c, s), id);
});

test('cookie wins over localStorage and repairs it', () => {
  const c = jar(A);
  const s = memStore({ bond_id: B });
  assert.equal(anonId(c, s), A);
  assert.equal(s.m.bond_id, A);
  assert.equal(c.value, A);
});

test('a lost cookie is restored from localStorage', () => {
  const c = jar(undefined);
  const s = memStore({ bond_id: A });
  assert.equal(anonId(c, s), A);
  assert.equal(c.value, A);
});

test('a placeholder in the cookie does not count as an id', () => {
  const c = jar('undefined');
  const s = memStore({ bond_id: A });
  assert.equal(anonId(c, s), A);
  assert.equal(c.value, A);
});

test('session id lasts while events keep coming within 30 minutes', () => {
  const s = memStore();
  const t0 = 1_700_000_000_000;
  const first = sessionId(s, t0);
  assert.equal(first, t0);
  assert.equal(sessionId(s, t0 + 29 * 60e3), first);
  assert.equal(sessionId(s, t0 + 58 * 60e3), first, 'each event extends the session');
});

test('30 minutes without events starts a new session', () => {
  const s = memStore();
  const t0 = 1_700_000_000_000;
  sessionId(s, t0);
  const later = t0 + 30 * 60e3 + 1;
  assert.equal(sessionId(s, later), later);
});

test('a corrupt session record starts a new session', () => {
  const s = memStore({ bond_s: '{nope' });
  assert.equal(sessionId(s, 5), 5);
});
