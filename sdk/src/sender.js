import { backoff, verdict } from './backoff.js';
import { chunk } from './chunk.js';

// Moves events from the stored queue to the collector, one request per round: a round starts
// when `at` events wait (the flushAt option, 20 by default) or `every` ms have passed
// (flushInterval, 1 s). A failure holds every tab back for a backoff, or for the collector's
// Retry-After; the hold is stored so the next page respects it too.
// io: {Q, S, log, ready(), wrap(batch) -> body, post(body) -> Promise<{s, h, t}>, beacon(body) -> bool}
export const sender = (io, at = 20, every = 1e3, timer = setTimeout, now = Date.now, rand = Math.random) => {
  const { Q, S, log } = io;
  let pending;
  let busy;
  let tries = 0;
  // The bodies of this page's beacons, run together: the messageIds they carried (UUIDs, so a
  // substring test is exact; Q.drop takes a body too).
  let gone = '';
  const held = () => S.load('bond_hold') - now();
  const later = (ms) => (pending ||= timer(() => run((pending = 0)), ms));
  // An event no request can carry (see chunk) would stop every beacon at page hide while it led
  // the queue: it is dropped instead, with its reason, like an event the SDK skips.
  const big = (m) => {
    Q.drop(m.messageId);
    log('skipped', m.type + ':', 'over 60 KB');
  };

  const send = async () => {
    const c = chunk(Q.all(), big);
    if (!Q.locked() || !c[0]) return;
    const body = io.wrap(c);
    const sent = gone;
    const r = await io.post(body).catch((e) => ({ s: 0, t: e }));
    const v = verdict(r.s);
    // A 200 may still list rejected events: they are final, their reasons are in r.t.
    log(v, c.length, r.s, r.t);
    if (v != 'retry') return Q.drop(body), (tries = 0);
    // A request the page's beacons overtook (it was left, and leaving aborts the request) is no
    // sign of a collector in trouble: a hold then would stop the next page's beacons too, and
    // an order placed on it would wait in the browser for a next visit.
    gone == sent && S.save('bond_hold', now() + (r.h > 0 ? r.h * 1e3 : backoff(tries++, rand)));
  };

  // Coming back online (the online event is an argument) is no reason to wait out the backoff.
  const run = (online) => {
    if (busy || !io.ready()) return;
    if (held() > 0 && !online) return later(held());
    if (!Q.lock()) return later(every);
    busy = 1;
    // Check the lock a moment later, once a competing tab's write has landed.
    timer(() => send().finally(() => {
      Q.unlock();
      busy = 0;
      if (Q.all()[0]) later(every);
    }), 50);
  };

  return {
    run,
    added: () => (Q.all().length < at ? later(every) : run()),
    // The page is going away: beacons outlive it, timers and pending requests may not, so what is
    // queued leaves now, as far as the browser takes it: it refuses a beacon once 64 KB are in
    // flight, and then the rest waits. A tab that is hidden, then closed, calls this twice; the
    // second call sends only what the first could not, if room was made meanwhile. Nobody learns
    // whether a beacon arrived (the collector may be restarting), so its events stay queued and
    // the next page sends them again; the collector stores each messageId once.
    unload() {
      if (!(held() > 0) && io.ready() && Q.lock())
        for (let c, body; (c = chunk(Q.all().filter((m) => !gone.includes(m.messageId)), big))[0] && io.beacon((body = io.wrap(c))); )
          gone += body;
      Q.unlock();
    },
  };
};
