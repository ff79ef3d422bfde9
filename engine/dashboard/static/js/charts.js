// Charts drawn as plain SVG by us: sparklines, bars, activity curves and probability bars.

import { el, svg } from './dom.js';

// Each household member's colour, the ink that reads on it at 4.5:1 or more, and the dash of
// their activity curve. A member is told apart by colour, by number and by line alike, so a
// colour-blind reader or a greyscale print reads the same page.
const MEMBERS = [
  { color: '#4f46e5', ink: '#ffffff', dash: null },
  { color: '#0ea5e9', ink: '#101828', dash: '8 5' },
  { color: '#f59e0b', ink: '#101828', dash: '0.5 5' },
  { color: '#10b981', ink: '#101828', dash: '8 4 0.5 4' },
  { color: '#ec4899', ink: '#101828', dash: '3 5' },
  { color: '#7c3aed', ink: '#ffffff', dash: '0.5 4 0.5 9' },
];
// A share of an order's bar that no current member holds: grey, and no number.
export const FORMER = { cls: 'former', color: '#98a2b3', ink: '#101828', dash: null, mark: '' };
// Under this share of an order's bar, a member's number no longer fits in their part of it.
const MARKED = 0.08;

export function memberClass(index) {
  return `c${(index % MEMBERS.length) + 1}`;
}

// How member `index` is drawn: class, colour, ink and dash, and `mark`, their number.
export function memberLook(index) {
  return { cls: memberClass(index), ...MEMBERS[index % MEMBERS.length], mark: String(index + 1) };
}

// A chart's accessible name: what it shows, then what a sighted reader takes from each series
// (its newest value, its share), so a screen reader hears the data and not only a title.
export function chartName(label, said) {
  return said.length ? `${label}: ${said.join('; ')}` : label;
}

// A small area chart of the newest values; None values leave a gap-free flat zero.
export function sparkline(values, { color = '#4f46e5', height = 56, label = '' } = {}) {
  const width = 300;
  const points = values.map((v) => (v == null ? 0 : v));
  const top = Math.max(1, ...points);
  const step = points.length > 1 ? width / (points.length - 1) : width;
  const y = (v) => height - 3 - (v / top) * (height - 8);
  const coords = points.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`);
  const line = coords.length ? `M${coords.join(' L')}` : '';
  const area = coords.length ? `${line} L${width},${height} L0,${height} Z` : '';
  return svg('svg', {
    class: 'spark', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none',
    role: 'img', 'aria-label': label,
  },
  svg('path', { d: area, fill: color, 'fill-opacity': '0.12' }),
  svg('path', { d: line, fill: 'none', stroke: color, 'stroke-width': '2', 'vector-effect': 'non-scaling-stroke', 'stroke-linejoin': 'round' }));
}

// Several series over the same time axis, with a light grid and the top value marked. Each
// series has a `color` and may have a `dash` (an SVG dash array), a `name`, and `said`: what
// its newest value reads as, for the chart's accessible name.
export function lines(series, { height = 160, label = '' } = {}) {
  const width = 600;
  const pad = { top: 10, bottom: 18, left: 0, right: 0 };
  const length = Math.max(2, ...series.map((s) => s.values.length));
  const top = Math.max(1, ...series.flatMap((s) => s.values.map((v) => v || 0)));
  const x = (i) => pad.left + (i / (length - 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (v || 0) / top) * (height - pad.top - pad.bottom);
  const grid = [0, 0.5, 1].map((f) => svg('line', {
    class: 'grid-line', x1: 0, x2: width, y1: y(top * f), y2: y(top * f), 'vector-effect': 'non-scaling-stroke',
  }));
  const paths = series.map((s) => {
    const offset = length - s.values.length;
    const d = s.values.map((v, i) => `${i ? 'L' : 'M'}${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    return svg('path', {
      d, fill: 'none', stroke: s.color, 'stroke-dasharray': s.dash, 'stroke-width': '2', 'vector-effect': 'non-scaling-stroke',
      'stroke-linejoin': 'round', 'stroke-linecap': 'round', 'data-series': s.name,
    });
  });
  const name = chartName(label, series.map((s) => s.said).filter(Boolean));
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', height, role: 'img', 'aria-label': name },
    grid, paths);
}

// A line's sample for a legend, in its colour and its dash: where lines differ in both, the
// legend is read without telling colours apart.
export function lineKey(color, dash) {
  return svg('svg', { class: 'key', viewBox: '0 0 24 10', 'aria-hidden': 'true' },
    svg('line', {
      x1: 2, y1: 5, x2: 22, y2: 5, stroke: color, 'stroke-dasharray': dash, 'stroke-width': '2', 'stroke-linecap': 'round',
    }));
}

// Horizontal bars for shares (0..1), one row per item.
export function bars(items, color = '#4f46e5') {
  return el('div', { class: 'bars' }, items.map((item) => el('div', { class: 'bar-row' },
    el('span', { class: 'bar-label', title: item.label }, item.label),
    svg('svg', { class: 'bar-track', viewBox: '0 0 100 8', preserveAspectRatio: 'none', role: 'img', 'aria-label': `${item.label} ${Math.round(item.value * 100)}%` },
      svg('rect', { x: 0, y: 0, width: 100, height: 8, rx: 4, fill: '#f2f4f7' }),
      svg('rect', { x: 0, y: 0, width: Math.max(1, item.value * 100), height: 8, rx: 4, fill: item.color || color })),
    el('span', { class: 'bar-value' }, `${Math.round(item.value * 100)}%`))));
}

// When a member is active over the day: a wrapped normal around their typical local hour,
// scaled by their share of the account's sessions, so the busiest member stands tallest. Each
// member comes with their look (memberLook), a `name` and `said`, for the chart's name.
// The hours are written under the drawing (as text, not SVG) so they keep their size.
export function activityCurves(members, label) {
  const width = 480;
  const height = 160;
  const density = (m, h) => {
    const spread = Math.max(0.75, m.hour_spread || 3);
    let sum = 0;
    for (const k of [-1, 0, 1]) sum += Math.exp(-((h - m.typical_hour + 24 * k) ** 2) / (2 * spread * spread));
    return (sum / spread) * (m.share ?? 1);
  };
  const hours = Array.from({ length: 97 }, (_, i) => i / 4);
  const top = Math.max(1e-6, ...members.flatMap((m) => hours.map((h) => density(m, h))));
  const x = (h) => (h / 24) * width;
  const y = (v) => 4 + (1 - v / top) * (height - 4);
  const grid = [6, 12, 18].map((h) => svg('line', {
    class: 'grid-line', x1: x(h), x2: x(h), y1: 0, y2: height, 'vector-effect': 'non-scaling-stroke',
  }));
  const curves = members.map((m) => {
    const pts = hours.map((h) => `${x(h).toFixed(1)},${y(density(m, h)).toFixed(1)}`);
    return [
      svg('path', { d: `M0,${height} L${pts.join(' L')} L${width},${height} Z`, fill: m.color, 'fill-opacity': '0.10' }),
      svg('path', {
        d: `M${pts.join(' L')}`, fill: 'none', stroke: m.color, 'stroke-dasharray': m.dash, 'stroke-width': '2', 'stroke-linejoin': 'round',
        'stroke-linecap': 'round', 'vector-effect': 'non-scaling-stroke', 'data-series': m.name,
      }),
    ];
  });
  return el('div', null,
    svg('svg', { class: 'curves', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': chartName(label, members.map((m) => m.said)) },
      grid, svg('line', { class: 'grid-line', x1: 0, x2: width, y1: height, y2: height, 'vector-effect': 'non-scaling-stroke' }), curves),
    el('div', { class: 'axis', 'aria-hidden': 'true' }, ['00:00', '06:00', '12:00', '18:00', '24:00'].map((t) => el('span', null, t))));
}

// One order's member probabilities as a stacked bar. Each part has a member's look, a `name`,
// its `value` and `said`. A part wide enough carries the member's number, as their key in the
// legend does, and white seams part neighbours whose colours a reader cannot tell apart. No
// viewBox: one stretched to the bar's width would stretch the numbers with it.
export function probabilityBar(parts, label) {
  let at = 0;
  const drawn = parts.map((p) => {
    const x = at * 100;
    const width = Math.max(0, p.value * 100);
    at += p.value;
    return [
      svg('rect', { x: `${x}%`, y: 0, width: `${width}%`, height: '100%', fill: p.color, stroke: '#fff', 'stroke-width': 1, 'data-member': p.name }),
      p.mark && p.value >= MARKED ? svg('text', {
        x: `${x + width / 2}%`, y: '50%', fill: p.ink, 'text-anchor': 'middle', 'dominant-baseline': 'central', 'data-member': p.name, 'aria-hidden': 'true',
      }, p.mark) : null,
    ];
  });
  return svg('svg', { class: 'prob-bar', role: 'img', 'aria-label': chartName(label, parts.map((p) => p.said)) },
    svg('rect', { x: 0, y: 0, width: '100%', height: '100%', rx: 3, fill: '#f2f4f7' }), drawn);
}
