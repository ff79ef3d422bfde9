import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cookieJar } from '../../sdk/src/cookie.js';

const PUBLIC_SUFFIXES = ['com', 'uk', 'co.uk', 'localhost'];

// A browser's cookie store for one host, shared with other hosts through `store`: like real
// browsers, it refuses a domain that does not contain the host, or that is a public suffix other
// than the host itself (which makes a host-only cookie).
const fakeDocument = (hostname, store = []) => ({
  location: { hostname },
  store,
  get cookie() {
    return store
      .filter((c) => (c.domain ? hostname == c.domain || hostname.endsWith('.' + c.domain) : c.host == hostname))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  },
  set cookie(s) {
    const [pair, ...attrs] = s.split(';');
    const [name, value] = pair.split('=');
    const attr = Object.fromEntries(attrs.map((a) => a.split('=')));
    let domain = attr.domain || undefined;
    if (domain && !(hostname == domain || hostname.endsWith('.' + domain))) return;
    if (PUBLIC_SUFFIXES.includes(domain)) {
      if (domain != hostname) return;
      domain = undefined;
    }
    const i = store.findIndex((c) => c.name == name && c.domain == domain && c.host == (domain ? undefined : hostname));
    if (i >= 0) store.splice(i, 1);
    if (attr['max-age'] != '0') store.push({ name, value, domain, host: domain ? undefined : hostname, attr });
  },
});

test('the id cookie goes on the top-most domain the browser accepts', () => {
  const doc = fakeDocument('shop.example.co.uk');
  cookieJar(doc).save('abc');
  assert.deepEqual(doc.store.map((c) => c.domain), ['example.co.uk']);
  const { attr } = doc.store[0];
  assert.equal(attr.SameSite, 'Lax');
  assert.equal(attr['max-age'], '31536000');
  assert.equal(attr.path, '/');
});

test('subdomains share the visitor', () => {
  const store = [];
  cookieJar(fakeDocument('www.example.com', store)).save('abc');
  assert.equal(cookieJar(fakeDocument('checkout.example.com', store)).load(), 'abc');
  assert.equal(cookieJar(fakeDocument('other.com', store)).load(), undefined);
});

test('a host that is itself a public suffix gets a host-only cookie', () => {
  const doc = fakeDocument('localhost');
  cookieJar(doc).save('abc');
  assert.deepEqual(doc.store.map((c) => [c.domain, c.host]), [[undefined, 'localhost']]);
  assert.equal(cookieJar(doc).load(), 'abc');
});

test('an empty value deletes the cookie wherever it was set', () => {
  const doc = fakeDocument('a.b.example.com');
  cookieJar(doc).save('abc');
  cookieJar(doc).save('');
  assert.deepEqual(doc.store, []);
  assert.equal(cookieJar(doc).load(), undefined);
});
