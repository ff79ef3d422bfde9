import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BOT, cleanId, json, parse, uuid } from '../../sdk/src/util.js';

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

// User agents as sent by crawlers that run JavaScript or may, and by real browsers.
const CRAWLERS = [
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.116 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36',
  'AdsBot-Google (+http://www.google.com/adsbot.html)',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)',
  'Twitterbot/1.0',
  'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
  'DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)',
  'Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)',
  'Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)',
  'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
  'Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)',
  'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)',
  'Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)',
  'Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)',
  'Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)',
  'CCBot/2.0 (https://commoncrawl.org/faq/)',
  'meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)',
  'Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)',
  'Screaming Frog SEO Spider/19.0',
];
const PEOPLE = [
  'Mozilla/5.0 (Linux; Android 11; CUBOT P50) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 13; CUBOT KINGKONG 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.105 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 9; CUBOT_X19 Build/PPR1.180610.011; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/74.0.3729.136 Mobile Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36',
];

test('crawlers are told by their user agent', () => {
  for (const ua of CRAWLERS) assert.ok(BOT.test(ua), ua);
});

test('phones whose brand contains "bot" (Cubot) and other browsers are people', () => {
  for (const ua of PEOPLE) assert.ok(!BOT.test(ua), ua);
});

// What Prototype.js up to 1.6 (still on old shops) puts on every array: JSON, pre-serialized.
const prototypeJs = (f) => {
  Array.prototype.toJSON = function () {
    return '[' + this.map((x) => JSON.stringify(x)).join(', ') + ']';
  };
  try {
    return f();
  } finally {
    delete Array.prototype.toJSON;
  }
};

test('json keeps arrays arrays on a page that gives them a toJSON, and Dates their own', () => {
  const value = { batch: [{ items: [1, [2, 'x']], at: new Date(0) }] };
  const text = prototypeJs(() => json(value));
  assert.deepEqual(JSON.parse(text), { batch: [{ items: [1, [2, 'x']], at: '1970-01-01T00:00:00.000Z' }] });
  assert.equal(prototypeJs(() => json([])), '[]');
  assert.equal(json(value), JSON.stringify(value), 'elsewhere it is JSON.stringify');
});
