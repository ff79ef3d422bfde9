import { json } from './util.js';

// The longest prefix of msgs that fits one request: browsers allow 64 KB in flight for beacons
// and keepalive requests together. (The collector's 2,500 events per batch is never reached:
// the context alone makes every event several hundred bytes.) The first 1 KB is left for the
// envelope around the events. An event too big for a request of its own (59 KB and more) can never
// be sent: a beacon refuses it, and so does the collector (over 32 KB by default). It goes to
// skip instead, which returns nothing, so that it never holds back the events after it.
export const chunk = (msgs, skip, size = 1e3) =>
  msgs.filter((m, s) => ((s = new Blob([json(m)]).size + 1) > 59e3 ? skip(m) : (size += s) <= 6e4));
