import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';
import { gzipSync } from 'node:zlib';

const root = new URL('../../', import.meta.url).pathname;
const dist = join(root, 'sdk', 'dist');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const built = readFileSync(join(dist, `bond-${version}.min.js`));

// About 3 KB: 3,072 bytes held until 1.4.0, whose refusal of consent(false) took the last few.
test('the full SDK is at most 3,100 bytes gzipped', () => {
  const size = gzipSync(built, { level: 9 }).length;
  assert.ok(size <= 3100, `${size} bytes gzipped`);
});

test('rebuilding from source reproduces the committed sdk/dist byte for byte', () => {
  const out = mkdtempSync(join(tmpdir(), 'bond-sdk-'));
  try {
    execFileSync(process.execPath, [join(root, 'sdk', 'build.mjs'), out]);
    assert.deepEqual(readdirSync(out).sort(), ['manifest.json', `bond-${version}.min.js`].sort());
    for (const f of readdirSync(out)) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(dist, f))), f);
  } finally {
    rmSync(out, { recursive: true });
  }
});

// Pinned files are served as immutable for a year and pages pin them with SRI: once released a
// file never changes. A source change without a version bump fails here, not in users' browsers.
test('every released SDK file is still served byte for byte, and every served file is a release', async () => {
  const { createHash } = await import('node:crypto');
  const releases = JSON.parse(readFileSync(join(root, 'sdk', 'releases.json'), 'utf8'));
  const served = Object.fromEntries(
    readdirSync(dist)
      .filter((f) => f.endsWith('.min.js'))
      .map((f) => [f.slice('bond-'.length, -'.min.js'.length), readFileSync(join(dist, f))]),
  );
  assert.deepEqual(Object.keys(served).sort(), Object.keys(releases).sort());
  for (const [v, body] of Object.entries(served)) {
    const sri = 'sha384-' + createHash('sha384').update(body).digest('base64');
    assert.equal(sri, releases[v], `bond-${v}.min.js changed after its release: bump the version in package.json`);
  }
});

test('the manifest names the file, its version and its SRI hash', async () => {
  const manifest = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'));
  const { createHash } = await import('node:crypto');
  assert.deepEqual(manifest, {
    version,
    file: `bond-${version}.min.js`,
    sri: 'sha384-' + createHash('sha384').update(built).digest('base64'),
  });
});

// The snippet site owners paste is the first html block of sdk/README.md.
const snippet = readFileSync(join(root, 'sdk', 'README.md'), 'utf8').match(/```html\n<script>\n([\s\S]*?)<\/script>/)[1];

test('the snippet is under 1 KB', () => {
  assert.ok(Buffer.byteLength(snippet) < 1024, `${Buffer.byteLength(snippet)} bytes`);
});

test('the snippet defines window.bond, queues calls in order and loads the SDK async', () => {
  const appended = [];
  const page = { document: { createElement: (tag) => ({ tag }), head: { appendChild: (el) => appended.push(el) } } };
  page.window = page;
  vm.runInNewContext(snippet + "bond.track('Signup', {plan: 'pro'}); bond('page');", page);
  const q = JSON.parse(JSON.stringify(page.bond.q.map((a) => [...a])));
  assert.deepEqual(q, [
    ['init', 'YOUR_WRITE_KEY', { host: 'https://bond.example.com' }],
    ['track', 'Signup', { plan: 'pro' }],
    ['page'],
  ]);
  assert.deepEqual(appended, [{ tag: 'script', async: true, src: 'https://bond.example.com/sdk/v1/bond.js' }]);
});
