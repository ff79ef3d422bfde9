import { autotrack } from './autotrack.js';
import { cookieJar } from './cookie.js';
import { d, n, w } from './dom.js';
import { anonId, sessionId } from './id.js';
import { queue } from './queue.js';
import { sender } from './sender.js';
import { BOT, cleanId, json, uuid } from './util.js';

const tab = uuid();
let cfg, Q, out, pageUrl;
let jar = { load() {}, save() {} };

// Keys live in localStorage once ls is set (with requireConsent, after consent); the opt-out and
// consent flags (flag = 1) always try it. Blocked storage throws on access, full storage on writes:
// then the key lives in memory for this page instead (reads look there first), so events are
// still sent, though no other tab or later page sees them.
const m = {};
let ls;
const disk = (f, flag) => {
  try {
    return (flag || ls) && f(localStorage);
  } catch (e) {}
};
const S = {
  load: (k, flag) => m[k] ?? disk((s) => s[k], flag),
  save: (k, v, flag) => disk((s) => ((s[k] = v), delete m[k]), flag) || (m[k] = v),
  del: (k, flag) => (disk((s) => delete s[k], flag), delete m[k]),
  list: () => Object.keys({ ...m, ...disk((s) => s) }),
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
// Listens in the capture phase (1), before a site's handler can stop the event.
const on = (el, type, f) => el.addEventListener(type, guard(f), 1);

// Why nothing may be stored or sent right now, if so.
const blocked = () =>
  S.load('bond_optout', 1) ? 'opted out'
  : BOT.test(n.userAgent) ? 'bot'
  : cfg.respectDNT !== false && (n.doNotTrack == 1 ? 'DNT' : n.globalPrivacyControl && 'GPC');

// The page, for telling a new page view: a hash change is one only for hash routers (#/cart,
// #!/cart), not for an in-page anchor such as #reviews.
const here = () => location.href.replace(/#(?![/!]).*/, '');

const pageInfo = () => ({
  url: location.href,
  path: location.pathname,
  referrer: d.referrer,
  title: d.title,
  search: location.search,
});

// null or undefined means "no id given"; anything else must be a real id, never a placeholder.
// Where one is required (an event name, a group id, alias's user id) the call passes '' for none.
const ID_FIELDS = ['userId', 'previousId', 'groupId', 'event'];

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
  const u = fields.userId;
  msg.userId ??= S.load('bond_uid');
  // Later events carry the user id, and with it its signature (bond_us), so a site that requires
  // signed identities keeps them too. An unsigned call for the same user (a trait update) keeps
  // the signature; a new user id without one drops it.
  if (u) (sig || u != S.load('bond_uid')) && S.save('bond_us', sig || ''), S.save('bond_uid', u);
  if (sig ||= S.load('bond_us')) msg.context.bond = { signature: sig };
  if (type == 'alias') msg.previousId ??= msg.anonymousId;
  const lost = Q.add(msg);
  if (lost) log('dropped', lost);
  out.added();
};

// From here on ids and queue live on disk and may be sent; before (requireConsent) they lived
// in memory only. Returns 1 for ready().
const persist = () => {
  // A sandboxed frame (Shopify's custom pixels, say) throws on any use of document.cookie: the
  // id then lives without a cookie, and events are sent all the same.
  try {
    d.cookie;
    jar = cookieJar(d);
  } catch (e) {}
  if (m.bond_id) jar.save(m.bond_id);
  for (const k in m) S.save(k, m[k], 1);
  return (ls = 1);
};

// Deletes the id cookie and the stored keys that match.
const forget = (keys) => {
  jar.save('');
  for (const k of S.list()) if (keys.test(k)) S.del(k);
};

const api = {
  init(key, o) {
    if (cfg) return;
    const url = (cfg = o).host + '/v1/batch';
    Q = queue(S, tab, 500);
    cfg.requireConsent || persist();
    out = sender({
      Q,
      S,
      log,
      // Consent may have come from another tab: it is on disk then.
      ready: () => (ls || (S.load('bond_consent', 1) && persist())) && n.onLine && !blocked(),
      wrap: (batch) => json({ writeKey: key, sentAt: new Date().toISOString(), batch }),
      // No keepalive: Chromium fails a keepalive body over 64 KB at once (an oversized event would
      // be retried forever), and keepalive requests take from the 64 KB in flight that unload's
      // beacons need. A request cut off by the page leaving loses nothing: its events are still
      // queued, and unload sends them by beacon.
      // Async, so that a site's fetch wrapper that throws instead of rejecting is a network
      // error all the same, retried later, not an exception in the page.
      post: async (body, r) => (
        (r = await fetch(url, { method: 'POST', body })),
        { s: r.status, h: r.headers.get('Retry-After'), t: await r.text() }
      ),
      beacon: (body) => n.sendBeacon(url, body),
    }, o.flushAt, o.flushInterval);
    on(w, 'pagehide', out.unload);
    on(d, 'visibilitychange', () => d.hidden && out.unload());
    on(w, 'online', out.run);
    // First, so that consent given on an earlier visit (ready() finds it on disk) moves the ids to
    // disk before anything is forgotten or tracked.
    out.run();
    // A visitor who turned on DNT or GPC since an earlier visit leaves no id behind.
    if (blocked()) forget(/^bond_(?!optout|consent)/);
    autotrack(api, cfg, on, guard(() => here() != pageUrl && api.page()));
  },
  identify(userId, traits, opts) {
    traits = { ...traits };
    if (!cleanId(traits.email)) delete traits.email;
    send('identify', { userId, traits }, opts?.signature);
  },
  track: (event, properties = {}) => send('track', { event: event ?? '', properties }),
  page(name, properties) {
    pageUrl = here();
    send('page', { name, properties: { ...pageInfo(), ...properties } });
  },
  group: (groupId, traits = {}) => send('group', { groupId: groupId ?? '', traits }),
  alias: (userId, previousId) => send('alias', { userId: userId ?? '', previousId: previousId ?? S.load('bond_uid') }),
  // Forgets who this browser is (but still sends what they did): the next person on a shared
  // computer starts with a new id and a new session.
  reset: () => forget(/^bond_(u?id|u?s)$/),
  // Forgets everything, unsent events included.
  optOut() {
    forget(/^bond_/);
    S.save('bond_optout', 1, 1);
  },
  optIn: () => S.del('bond_optout', 1),
  consent() {
    S.save('bond_consent', 1, 1);
    out.run();
  },
};

// The stub's calls replay in order; the snippet calls init first, and calls before init are
// ignored. A mistyped call (bond('trak')) is skipped with its reason. No call throws into the page.
const call = guard((m, ...a) => (cfg || m == 'init') && (api[m] ? api[m](...a) : skip(m, 'unknown')));

// A page prerendered by speculation rules may never be seen: the SDK starts when the visitor opens
// it. Until then it stores, sends and tracks nothing, and the snippet's stub keeps queueing calls.
const boot = () => {
  if (!w.bond?.version) {
    const q = w.bond?.q || [];
    for (const k in api) call[k] = call.bind(0, k);
    call.version = __VERSION__;
    w.bond = call;
    for (const a of q) call(...a);
  }
};
d.prerendering ? on(d, 'prerenderingchange', boot) : boot();
