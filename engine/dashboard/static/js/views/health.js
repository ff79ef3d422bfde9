// Health: is Bond keeping up? Ingest rate, worker lag, the alert outbox and the collector's
// counts, each as a small live chart of the last few minutes.

import { get } from '../api.js';
import { el, replace, errorBanner } from '../dom.js';
import { chartName, lineKey, lines, sparkline } from '../charts.js';
import { duration, number } from '../format.js';
import { when } from '../times.js';

const KEEP = 300;
// The collector's counts, each drawn as a line of its own colour and dash (solid, dashed,
// dotted), so the lines read apart without their colours too; every legend and count shows
// the same line. Accepted is more than the log head above: a resent event is accepted again
// but kept once.
const COUNTS = [
  { name: 'accepted', label: 'Accepted', color: '#12b76a', dash: null, note: ', resent events included' },
  { name: 'rejected', label: 'Rejected', color: '#f04438', dash: '7 5', note: '' },
  { name: 'deduplicated', label: 'Deduplicated', color: '#98a2b3', dash: '0.5 5', note: ': resent events the log already had' },
];

function tile(id, label, unit, color) {
  const value = el('span', { class: 'stat-value' });
  const note = el('span', { class: 'stat-note' });
  const chart = el('div');
  const node = el('div', { class: 'card stat', id }, el('span', { class: 'stat-label' }, label), value, note, chart);
  return {
    node,
    update(current, series, text) {
      value.classList.toggle('unknown', current == null);
      // The space keeps the unit a word of its own when read aloud ("0 events behind").
      replace(value, current == null ? 'unknown' : [number(current), el('span', { class: 'unit' }, ' ', unit)]);
      note.textContent = text;
      const said = (v) => (v == null ? 'unknown' : `${number(v)} ${unit}`);
      const peak = Math.max(...series.map((v) => v ?? -Infinity));
      const name = chartName(label, [`${said(current)} now`, `peak ${said(Number.isFinite(peak) ? peak : null)}`]);
      replace(chart, sparkline(series, { color, label: name }));
    },
  };
}

// Lag alone looks the same whether the worker is catching up or has stopped: say which.
function workerNote(now) {
  const waited = duration(now.waiting_s * 1000);
  if (now.worker === 'stopped') return `Stopped? Nothing applied while events wait (the oldest for ${waited}): is bond worker running?`;
  if (now.worker === 'behind') return `Behind: the oldest waiting event arrived ${waited} ago`;
  return `worker applied through seq ${number(now.offset)}`;
}

function deltas(history, key) {
  const out = [];
  for (let i = 1; i < history.length; i += 1) {
    const a = history[i - 1].collector;
    const b = history[i].collector;
    const seconds = Math.max((history[i].at - history[i - 1].at) / 1000, 0.001);
    out.push(a && b ? Math.max(b[key] - a[key], 0) / seconds : null);
  }
  return out;
}

export function render(main, { feed }) {
  let history = [];
  const ingest = tile('health-ingest', 'Ingest rate', 'events/s', '#4f46e5');
  const lag = tile('health-lag', 'Worker lag', 'events behind', '#f79009');
  const outbox = tile('health-outbox', 'Alert outbox', 'pending', '#0ea5e9');
  const counts = el('div', { class: 'grid cols-3', id: 'health-counts' });
  const chart = el('div', { class: 'card-body', id: 'health-chart' });

  const count = (series, value) => el('div', { class: 'card stat' },
    el('span', { class: 'stat-label' }, lineKey(series.color, series.dash), ' ', series.label),
    el('span', { class: `stat-value${value == null ? ' unknown' : ''}`, 'data-count': series.name }, value == null ? 'unknown' : number(value)),
    el('span', { class: 'stat-note' }, value == null ? 'the collector cannot be reached' : `since the collector started${series.note}`));

  const draw = () => {
    if (!history.length) return;
    const now = history[history.length - 1];
    ingest.update(now.ingest_rate, history.map((h) => h.ingest_rate), `log head at seq ${number(now.log_head)}`);
    lag.update(now.lag, history.map((h) => h.lag), workerNote(now));
    lag.node.dataset.worker = now.worker || 'ok';
    outbox.update(now.outbox_pending, history.map((h) => h.outbox_pending), 'alerts waiting for Discord');
    const c = now.collector;
    replace(counts, COUNTS.map((s) => count(s, c && c[s.name])));
    const series = COUNTS.map((s) => {
      const values = deltas(history, s.name);
      const newest = values.at(-1);
      return { ...s, values, said: `${s.label} ${newest == null ? 'unknown' : `${number(newest)} events/s`} now` };
    });
    const peak = Math.max(0, ...series.flatMap((s) => s.values.map((v) => v || 0)));
    const span = Math.round((now.at - history[0].at) / 1000);
    replace(chart, history.length < 3 ? el('p', { class: 'faint' }, 'Collecting the first seconds…') : [
      lines(series, { label: 'Collector events per second' }),
      el('div', { class: 'axis' }, when('span', null, history[0].at, span < 120 ? `${span} s ago` : `${Math.round(span / 60)} min ago`),
        el('span', null, `peak ${number(peak)} events/s`), when('span', null, now.at, 'now')),
    ]);
  };

  replace(main,
    el('div', { class: 'page-head' }, el('div', null, el('h1', null, 'Health'),
      el('p', null, 'Whether Bond keeps up: what comes in, how far the worker is behind the event log, and what waits to be sent. The last five minutes, live.'))),
    el('div', { class: 'stack' },
      el('div', { class: 'grid cols-3' }, ingest.node, lag.node, outbox.node),
      counts,
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h2', null, 'Collector, events per second'),
          el('div', { class: 'legend' }, COUNTS.map((s) => el('span', { 'data-series': s.name }, lineKey(s.color, s.dash), s.name)))),
        chart)));

  get('health').then((body) => {
    history = body.history.concat(history.filter((h) => h.at > (body.history.at(-1) || { at: 0 }).at)).slice(-KEEP);
    draw();
  }).catch((error) => replace(counts, errorBanner(error)));

  return feed.on('health', (sample) => {
    if (history.length && history[history.length - 1].at === sample.at) return;
    history = history.concat([sample]).slice(-KEEP);
    draw();
  });
}
