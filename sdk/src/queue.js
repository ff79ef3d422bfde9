import { parse } from './util.js';

// The unsent queue lives in storage, shared by the site's tabs, so a crash, a redirect or a closed
// tab loses nothing and the next page load resumes it.
export const LEASE = 1e4;

export const queue = (store, tab, max, now = Date.now) => {
  const all = () => parse(store.get('bond_q')) || [];
  const owner = () => parse(store.get('bond_lock')) || {};
  const locked = () => owner().o == tab;
  return {
    all,
    // Returns how many of the oldest events were dropped to stay within max.
    // A full disk sheds more of the oldest, until the queue fits.
    add(m) {
      const q = [...all(), m];
      let over = Math.max(0, q.length - max);
      while (!store.set('bond_q', JSON.stringify(q.slice(over))) && over < q.length) over++;
      return over;
    },
    drop(ids) {
      store.set('bond_q', JSON.stringify(all().filter((m) => !ids.includes(m.messageId))));
    },
    // A lease on the whole queue: only its holder reads, sends and removes events, so two tabs
    // never send the same event. It lapses by itself when the holder dies mid-send.
    lock() {
      const l = owner();
      return (l.o == tab || !(l.t > now())) && store.set('bond_lock', JSON.stringify({ o: tab, t: now() + LEASE }));
    },
    locked,
    unlock() {
      if (locked()) store.del('bond_lock');
    },
  };
};
