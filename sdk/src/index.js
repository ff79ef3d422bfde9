import { autotrack } from './autotrack.js';
import { cookieJar } from './cookie.js';
import { anonId, sessionId } from './id.js';
import { queue } from './queue.js';
import { sender } from './sender.js';
import { cleanId, uuid } from './util.js';

const w = window;
const d = document;
const n = navigator;
const tab = uuid();
let cfg, Q, out, pageUrl;
let jar = { get() {}, set() {} };

// Memory until persist(): with requireConsent nothing touches the disk before consent(). The
// opt-out and consent flags (disk = 1) always live on disk. localStorage takes plain property
// access like the memory object; blocked or full storage throws, and then a write returns
// undefined instead of 1 and the queue sheds its oldest events.
const m = {};
let ls;
const io = (f) => (k, v, disk) => {
  try {
    return f(disk || ls ? localStorage : m, k, v);
  } catch (e) {}
};
const S = {
  get: io((s, k) => s[k]),
  set: io((s, k, v) => ((s[k] = v), 1)),
  del: io((s, k) => delete s[k]),
  keys: io(Object.keys),
};

const log = (...a) => cfg?.debug && console.log('[bond]', ...a);
const skip = (type, why) => log('skipped', type + ':', why);
const guard = (f) => (...a) => {
  try {
    return f(...a);
  } catch (e) {
    log(e);
  }
};
const on = (el, type, f) => el.addEventListener(type, guard(f), true);

// Why nothing may be stored or sent right now, if so.
const blocked = () =>
  S.get('bond_optout', 0, 1) ? 'opted out'
  : /bot|crawl|spider/i.test(n.userAgent) ? 'bot'
  : cfg.respectDNT !== false && (n.doNotTrack == 1 ? 'DNT' : n.globalPrivacyControl && 'GPC');

const pageInfo = () => ({
  url: location.href,
  path: location.pathname,
  referrer: d.referrer,
  title: d.title,
  search: location.search,
});

// null or undefined means "no id given"; anything else must be a real id, never a placeholder.
const ID_FIELDS = ['userId', 'previousId', 'groupId'];

// sig: the site server's signature of the identity this event claims (see identify).
const send = (type, fields, sig) => {
  const bad = ID_FIELDS.find((k) => fields[k] != null && !cleanId(fields[k]));
  const why = blocked() || (bad && 'placeholder ' + bad);
  if (why) return skip(type, why);
  const now = new Date();
  const msg = {
    ...fields,
    type,
    messageId: uuid(),
    anonymousId: anonId(jar, S),
    timestamp: now.toISOString(),
    context: {
      page: pageInfo(),
      userAgent: n.userAgent,
      locale: n.language,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      screen: { width: screen.width, height: screen.height },
      library: { name: 'bond.js', version: __VERSION__ },
      sessionId: sessionId(S, +now),
    },
  };
  msg.userId ??= S.get('bond_uid');
  // Later events carry the user id, and with it its signature (bond_us), so a site that requires
  // signed identities keeps them too.
  if (fields.userId) S.set('bond_uid', fields.userId), S.set('bond_us', sig || '');
  if (sig ||= S.get('bond_us')) msg.context.bond = { signature: sig };
  if (type == 'alias') msg.previousId ??= msg.anonymousId;
  const lost = Q.add(msg);
  if (lost) log('queue full, dropped', lost);
  out.added();
};

// From here on ids and queue live on disk and may be sent; before (requireConsent) they lived
// in memory only.
const persist = () => {
  ls = 1;
  for (const k in m) S.set(k, m[k]);
  jar = cookieJar(d);
  if (m.bond_id) jar.set(m.bond_id);
};

// Deletes the id cookie and the stored keys that match.
const forget = (keys) => {
  jar.set('');
  for (const k of S.keys()) if (keys.test(k)) S.del(k);
};

const api = {
  init(key, o) {
    if (cfg) return;
    cfg = {
      flushAt: 20,
      flushInterval: 1e3,
      ...o,
    };
    const url = cfg.host + '/v1/batch';
    const post = (body) => fetch(url, { method: 'POST', body, keepalive: true })
      .then(async (r) => ({ s: r.status, h: r.headers.get('Retry-After'), t: await r.text() }));
    Q = queue(S, tab, 500);
    if (!cfg.requireConsent || S.get('bond_consent', 0, 1)) persist();
    out = sender({
      Q,
      S,
      log,
      ready: () => ls && n.onLine && !blocked(),
      wrap: (batch) => JSON.stringify({ writeKey: key, sentAt: new Date().toISOString(), batch }),
      post,
      // Without sendBeacon (or when it refuses) a keepalive fetch carries the batch; its answer
      // arrives too late to dequeue the events, so the next page resends them (stored once).
      beacon: (body) => n.sendBeacon?.(url, new Blob([body], { type: 'text/plain' })) || void post(body),
    }, cfg.flushAt, cfg.flushInterval);
    on(w, 'pagehide', out.unload);
    on(d, 'visibilitychange', () => d.hidden && out.unload());
    on(w, 'online', out.run);
    autotrack(api, cfg, on, guard(() => location.href != pageUrl && api.page()));
    out.run();
  },
  identify(userId, traits, opts) {
    traits = { ...traits };
    if (!cleanId(traits.email)) delete traits.email;
    send('identify', { userId, traits }, opts?.signature);
  },
  track(event, properties = {}) {
    if (!cleanId(event)) return skip('track', 'no event name');
    send('track', { event, properties });
  },
  page(name, properties) {
    pageUrl = location.href;
    send('page', { name, properties: { ...pageInfo(), ...properties } });
  },
  group: (groupId, traits = {}) => send('group', { groupId: groupId ?? '', traits }),
  alias: (userId, previousId) => send('alias', { userId: userId ?? '', previousId: previousId ?? S.get('bond_uid') }),
  // Forgets who this browser is (but still sends what they did): the next person on a shared
  // computer starts with a new id and a new session.
  reset: () => forget(/^bond_(u?id|u?s)$/),
  // Forgets everything, unsent events included.
  optOut() {
    forget(/^bond_/);
    S.set('bond_optout', 1, 1);
  },
  optIn: () => S.del('bond_optout', 0, 1),
  consent() {
    S.set('bond_consent', 1, 1);
    if (!ls) persist(), out.run();
  },
};

// The stub's calls replay in order; the snippet calls init first, and calls before init are
// ignored. No call throws into the page.
const call = guard((m, ...a) => (cfg || m == 'init') && api[m]?.(...a));

if (!w.bond?.version) {
  const q = w.bond?.q || [];
  for (const k in api) call[k] = (...a) => call(k, ...a);
  call.version = __VERSION__;
  w.bond = call;
  for (const a of q) call(...a);
}
