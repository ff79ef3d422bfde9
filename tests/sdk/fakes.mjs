// Small stand-ins for the browser APIs the SDK's pure modules touch.

// The SDK's store interface over a plain object.
export const memStore = (m = {}) => {
  const s = {
    m,
    load: (k) => m[k],
    save: (k, v) => ((m[k] = '' + v), 1),
    del: (k) => delete m[k],
    list: () => Object.keys(m),
  };
  return s;
};

// A clock with timers that run only when the test advances time.
export const fakeClock = (start = 1e12) => {
  let t = start;
  let timers = [];
  const clock = {
    now: () => t,
    timer: (fn, ms) => timers.push({ at: t + ms, fn }),
    pending: () => timers.length,
    async advance(ms) {
      const end = t + ms;
      for (;;) {
        await settle();
        const due = timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((x) => x != due);
        t = Math.max(t, due.at);
        due.fn();
      }
      t = end;
      await settle();
    },
  };
  return clock;
};

// Lets promise callbacks (fetch answers, finally blocks) run.
export const settle = () => new Promise((r) => setImmediate(r));

let n = 0;
export const msg = (extra = {}) => ({ type: 'track', event: 'E', messageId: 'm' + ++n, ...extra });
