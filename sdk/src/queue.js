import { json, parse } from './util.js';

// The unsent queue lives in storage, shared by the site's tabs, so a crash, a redirect or a closed
// tab loses nothing and the next page load resumes it. Tabs may run in different processes, where
// a read-modify-write of one shared value would lose another tab's update; so each event has a
// key of its own, written once and deleted once: bond_e<ms><n>_<messageId>, which sorts in order
// of arrival (n is this page's counter, seven digits wide, for events within one millisecond).
export const LEASE = 1e4;

export const queue = (store, tab, max, now = Date.now) => {
  let n = 1e6;
  const keys = () => store.list().filter((k) => k.startsWith('bond_e')).sort();
  // The lock reads "<expiry ms> <tab>".
  const owner = () => (store.load('bond_lock') || '').split(' ');
  const locked = () => owner()[1] == tab;
  return {
    all: () => keys().map((k) => parse(store.load(k))).filter(Boolean),
    // Returns how many of the oldest events were dropped to stay within max. (A full disk drops
    // nothing: the store keeps the event in memory.)
    add(m) {
      const old = keys();
      let lost = 0;
      for (; old.length >= max; lost++) store.del(old.shift());
      store.save(`bond_e${now()}${n++}_${m.messageId}`, json(m));
      return lost;
    },
    // ids: the messageIds to remove, as a list or as the text of a request body carrying them.
    drop(ids) {
      for (const k of keys()) if (ids.includes(k.split('_')[2])) store.del(k);
    },
    // A lease on sending: only its holder sends and removes events, so two tabs never send the
    // same event. It lapses by itself when the holder dies mid-send.
    lock() {
      const [t, o] = owner();
      return (o == tab || !(t > now())) && store.save('bond_lock', now() + LEASE + ' ' + tab);
    },
    locked,
    unlock() {
      if (locked()) store.del('bond_lock');
    },
  };
};
