// Exponential backoff from 1 s up to 5 minutes, with jitter so that many browsers recovering from
// the same outage do not retry in lockstep.
export const backoff = (attempt, rand) => {
  const d = Math.min(3e5, 1e3 * 2 ** attempt);
  return (d * (1 + rand())) / 2;
};

// What to do with a batch given the HTTP status (0 for a network error): 'ok' removes it,
// 'retry' keeps it for later, 'drop' removes it for good, since the collector would refuse it
// again however often it were sent.
export const verdict = (s) =>
  !s || s == 408 || s == 429 || s > 499 ? 'retry' : s < 300 ? 'ok' : 'drop';
