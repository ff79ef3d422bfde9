import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoff, verdict } from '../../sdk/src/backoff.js';

test('backoff doubles from 1 s, with jitter between half and all of it', () => {
  assert.equal(backoff(0, () => 0), 500);
  assert.equal(backoff(0, () => 1), 1000);
  assert.equal(backoff(3, () => 0), 4000);
  assert.equal(backoff(3, () => 1), 8000);
  const d = backoff(2, Math.random);
  assert.ok(d >= 2000 && d <= 4000);
});

test('backoff stops growing at 5 minutes', () => {
  assert.equal(backoff(30, () => 1), 300000);
  assert.equal(backoff(1000, () => 1), 300000);
});

test('verdict: success, retryable failures and final refusals', () => {
  for (const s of [200, 202, 204]) assert.equal(verdict(s), 'ok');
  for (const s of [0, undefined, 408, 429, 500, 502, 503, 504]) assert.equal(verdict(s), 'retry');
  for (const s of [400, 401, 403, 404, 413, 422]) assert.equal(verdict(s), 'drop');
});
