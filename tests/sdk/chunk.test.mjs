import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunk } from '../../sdk/src/chunk.js';
import { msg } from './fakes.mjs';

const body = (c) => Buffer.byteLength(JSON.stringify({ writeKey: 'wk_0123456789abcdef', sentAt: new Date().toISOString(), batch: c }));

// What chunk hands over as too big for any request.
const skipped = [];
const skip = (m) => {
  skipped.push(m);
};

// Splits msgs the way the SDK does: each request takes the longest prefix that fits.
const split = (msgs) => {
  const out = [];
  for (let rest = msgs, c; (c = chunk(rest, skip))[0]; rest = rest.slice(c.length)) out.push(c);
  return out;
};

test('small queues go in one request', () => {
  const ms = [msg(), msg(), msg()];
  assert.deepEqual(chunk(ms, skip), ms);
  assert.deepEqual(chunk([], skip), []);
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
  assert.ok(chunk(ms, skip).length <= 2500);
});

test('an event too big for a request of its own is skipped, and never holds back the others', () => {
  skipped.length = 0;
  // An event of JSON this many bytes long.
  const sized = (n) => {
    const m = msg({ properties: { text: '' } });
    m.properties.text = 'x'.repeat(n - Buffer.byteLength(JSON.stringify(m)));
    return m;
  };
  // With the 1 KB envelope and its comma, 59,000 bytes are over a 60 KB request; a byte less fits.
  const [big, largest, small] = [sized(59000), sized(58999), msg()];
  // Bytes, not characters: 30,000 of them, 60,000 bytes.
  const wide = msg({ properties: { text: 'é'.repeat(30000) } });
  assert.deepEqual(chunk([big, small, wide, small], skip), [small, small]);
  assert.deepEqual(skipped, [big, wide]);
  assert.deepEqual(chunk([largest], skip), [largest]);
  assert.deepEqual(chunk([small, largest], skip), [small], 'the largest event goes alone');
  assert.equal(skipped.length, 2);
});

test('sizes are those of the JSON sent, even where arrays have a toJSON (Prototype.js 1.6)', () => {
  // Pre-serialized arrays, quotes escaped, would count several times their size.
  const ms = Array.from({ length: 10 }, () => msg({ properties: { list: Array(1000).fill('"') } }));
  Array.prototype.toJSON = function () {
    return '[' + this.map((x) => JSON.stringify(x)).join(', ') + ']';
  };
  try {
    assert.deepEqual(chunk(ms, skip), ms);
  } finally {
    delete Array.prototype.toJSON;
  }
});
