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

test('the full SDK is at most 3 KB gzipped', () => {
  const size = gzipSync(built, { level: 9 }).length;
  assert.ok(size <= 3072, `${size} bytes gzipped`);
});

test('rebuilding from source reproduces the committed sdk/dist byte for byte', () => {
  const out = mkdtempSync(join(tmpdir(), 'bond-sdk-'));
  try {
    execFileSync(process.execPath, [join(root, 'sdk', 'build.mjs'), out]);
    assert.deepEqual(readdirSync(out).sort(), readdirSync(dist).sort());
    for (const f of readdirSync(dist)) assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(dist, f))), f);
  } finally {
    rmSync(out, { recursive: true });
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
