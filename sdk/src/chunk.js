import { json } from './util.js';

// The longest prefix of msgs that fits one request: browsers allow 64 KB in flight for beacons
// and keepalive requests together. (The collector's 2,500 events per batch is never reached:
// the context alone makes every event several hundred bytes.) The first 1 KB is left for the
// envelope around the events. The first event always goes, so an oversized one reaches the
// collector (by fetch: a beacon refuses it), which rejects it with a reason, instead of blocking
// the queue.
export const chunk = (msgs, max = 6e4, size = 1e3) =>
  msgs.filter((m, i) => (size += new Blob([json(m)]).size + 1) <= max || !i);
