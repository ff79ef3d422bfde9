import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunk } from '../../sdk/src/chunk.js';
import { msg } from './fakes.mjs';

const body = (c) => Buffer.byteLength(JSON.stringify({ writeKey: 'wk_0123456789abcdef', sentAt: new Date().toISOString(), batch: c }));

// Splits msgs the way the SDK does: each request takes the longest prefix that fits.
const split = (msgs) => {
  const out = [];
  for (let rest = msgs, c; (c = chunk(rest))[0]; rest = rest.slice(c.length)) out.push(c);
  return out;
};

test('small queues go in one request', () => {
  const ms = [msg(), msg(), msg()];
  assert.deepEqual(chunk(ms), ms);
  assert.deepEqual(chunk([]), []);
});

test('every request body stays within 60 KB and order is kept', () => {
  // Multi-byte text: the limit is on bytes, not characters.
  const ms = Array.from({ length: 120 }, (_, i) => msg({ properties: { i, text: 'é'.repeat(500 + i * 7) } }));
  const parts = split(ms);
  assert.ok(parts.length > 1);
  for (const c of parts) assert.ok(body(c) <= 60000, `body of ${body(c)} bytes`);
  assert.deepEqual(parts.flat(), ms);
});

test("no request can hold more than the collector's 2,500 events", () => {
  // The smallest message the SDK could send: a messageId and nothing else.
  const ms = Array.from({ length: 5000 }, () => ({ messageId: crypto.randomUUID() }));
  assert.ok(chunk(ms).length <= 2500);
});

test('an oversized event goes alone rather than blocking the queue', () => {
  const big = msg({ properties: { blob: 'x'.repeat(70000) } });
  const parts = split([big, msg(), msg()]);
  assert.equal(parts[0].length, 1);
  assert.equal(parts[0][0], big);
  assert.equal(parts[1].length, 2);
});

test('sizes are those of the JSON sent, even where arrays have a toJSON (Prototype.js 1.6)', () => {
  // Pre-serialized arrays, quotes escaped, would count several times their size.
  const ms = Array.from({ length: 10 }, () => msg({ properties: { list: Array(1000).fill('"') } }));
  Array.prototype.toJSON = function () {
    return '[' + this.map((x) => JSON.stringify(x)).join(', ') + ']';
  };
  try {
    assert.deepEqual(chunk(ms), ms);
  } finally {
    delete Array.prototype.toJSON;
  }
});
