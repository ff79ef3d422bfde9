import { autotrack } from './autotrack.js';
import { cookieJar } from './cookie.js';
import { d, n, w } from './dom.js';
import { anonId, sessionId } from './id.js';
import { queue } from './queue.js';
import { sender } from './sender.js';
import { BOT, cleanId, json, uuid } from './util.js';

const tab = uuid();
let cfg, Q, out, pageUrl;
// The page before this one: the document's referrer until a single-page app moves on, then the
// address of its previous page view.
let ref = d.referrer;
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
  referrer: ref,
  title: d.title,
  search: location.search,
});

// sig: the site server's signature of the identity this event claims (see identify).
const send = (type, fields, sig) => {
  // null or undefined means "no id given"; anything else must be a real id, never a placeholder.
  // Where one is required (an event name, a group id, alias's user id) the call passes '' for none.
  const bad = ['userId', 'previousId', 'groupId', 'event'].find((k) => fields[k] != null && !cleanId(fields[k]));
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
  const lost = Q.add(msg);
  if (lost) log('dropped', lost);
  out.added();
};

// From here on ids and queue live on disk and may be sent; before (requireConsent) they lived
// in memory only. Returns 1 for ready().
const persist = (mine = m.bond_id) => {
  // A sandboxed frame (Shopify's custom pixels, say) throws on any use of document.cookie: the
  // id then lives without a cookie, and events are sent all the same.
  try {
    d.cookie;
    jar = cookieJar(d);
  } catch (e) {}
  ls = 1;
  // The id this page made up in memory gives way to the stored one (another tab's, whose visitor
  // consented there meanwhile, or an earlier visit's), and the events held here are rewritten to
  // it: one browser stays one visitor. anonId runs only when something was held, so a visitor
  // with Do Not Track gets no id by consenting.
  delete m.bond_id;
  for (const k in m) S.save(k, ('' + m[k]).split(mine).join(anonId(jar, S)), 1);
  return 1;
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
    out = sender({
      Q,
      S,
      log,
      // Without requireConsent, the first run moves to disk; with it, consent may have come
      // from another tab: it is on disk then.
      ready: () => (ls || ((!cfg.requireConsent || S.load('bond_consent', 1)) && persist())) && n.onLine && !blocked(),
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
    // First, so that the ids move to disk (ready() does it, with requireConsent once consent is
    // found there) before anything is forgotten or tracked.
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
    ref = (here() != pageUrl && pageUrl) || ref;
    pageUrl = here();
    send('page', { name, properties: { ...pageInfo(), ...properties } });
  },
  group: (groupId, traits = {}) => send('group', { groupId: groupId ?? '', traits }),
  // previousId defaults to the user id, else the anonymous id: anonId is not called for a visitor
  // nothing may be stored for (the reason stands in, and send skips the call with it).
  alias: (userId, previousId) =>
    send('alias', { userId: userId ?? '', previousId: previousId ?? S.load('bond_uid') ?? (blocked() || anonId(jar, S)) }),
  // Forgets who this browser is (but still sends what they did): the next person on a shared
  // computer starts with a new id and a new session.
  reset: () => forget(/^bond_u?(id|s)$/),
  // Forgets everything, unsent events included.
  optOut() {
    forget(/^bond_/);
    S.save('bond_optout', 1, 1);
  },
  optIn: () => S.del('bond_optout', 1),
  // A banner's callback often passes the visitor's answer: a refusal (false, or 0) is no
  // consent, and what the page holds in memory stays there, unsent.
  consent: (given) => given != 0 && (S.save('bond_consent', 1, 1), out.run()),
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
