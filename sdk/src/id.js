import { cleanId, uuid } from './util.js';

// When cookie and localStorage disagree the cookie wins and localStorage is repaired: the cookie
// is what subdomains share, and letting the two drift apart splits one visitor in two.
export const anonId = (jar, store) => {
  const c = jar.load();
  const l = store.load('bond_id');
  const id = cleanId(c) || cleanId(l) || uuid();
  if (c != id) jar.save(id);
  if (l != id) store.save('bond_id', id);
  return id;
};

// A visit ends after 30 minutes without an event. Its id is the visit's start in epoch ms;
// bond_s reads "<start> <last event>".
export const sessionId = (store, now) => {
  let [start, last] = (store.load('bond_s') || '').split(' ');
  if (!(now - last <= 18e5)) start = now;
  store.save('bond_s', start + ' ' + now);
  return +start;
};
