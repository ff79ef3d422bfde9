import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanId, parse, uuid } from '../../sdk/src/util.js';

test('placeholder values are never ids', () => {
  for (const v of [null, undefined, '', '   ', 0, '0', -1, NaN, 'null', 'NULL', 'undefined', 'anonymous',
    'Anon', 'guest', 'none', 'nil', 'unknown', 'false', true, '[object Object]', {}, ' null '])
    assert.equal(cleanId(v), null, `${String(v)} must be rejected`);
});

test('real ids pass, trimmed; numbers become strings', () => {
  assert.equal(cleanId(' user-42 '), 'user-42');
  assert.equal(cleanId('ann@example.com'), 'ann@example.com');
  assert.equal(cleanId(42), '42');
  assert.equal(cleanId('nullable'), 'nullable');
});

test('uuid is a random version 4 UUID', () => {
  const ids = new Set(Array.from({ length: 1000 }, uuid));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test('parse returns undefined for garbage instead of throwing', () => {
  assert.equal(parse('{oops'), undefined);
  assert.deepEqual(parse('[1]'), [1]);
});
