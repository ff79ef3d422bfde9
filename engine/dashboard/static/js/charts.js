// Charts drawn as plain SVG by us: sparklines, bars, activity curves and probability bars.

import { el, svg } from './dom.js';

const MEMBER_COLORS = ['#4f46e5', '#0ea5e9', '#f59e0b', '#10b981', '#ec4899', '#8b5cf6'];

export function memberClass(index) {
  return `c${(index % MEMBER_COLORS.length) + 1}`;
}

export function memberColor(index) {
  return MEMBER_COLORS[index % MEMBER_COLORS.length];
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
// series has a `color` and may have a `dash` (an SVG dash array) and a `name`.
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
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', height, role: 'img', 'aria-label': label },
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
// scaled by their share of the account's sessions, so the busiest member stands tallest.
// The hours are written under the drawing (as text, not SVG) so they keep their size.
export function activityCurves(members) {
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
  const curves = members.map((m, i) => {
    const pts = hours.map((h) => `${x(h).toFixed(1)},${y(density(m, h)).toFixed(1)}`);
    const color = memberColor(i);
    return [
      svg('path', { d: `M0,${height} L${pts.join(' L')} L${width},${height} Z`, fill: color, 'fill-opacity': '0.10' }),
      svg('path', { d: `M${pts.join(' L')}`, fill: 'none', stroke: color, 'stroke-width': '2', 'stroke-linejoin': 'round', 'vector-effect': 'non-scaling-stroke' }),
    ];
  });
  return el('div', null,
    svg('svg', { class: 'curves', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Activity by local hour of day' },
      grid, svg('line', { class: 'grid-line', x1: 0, x2: width, y1: height, y2: height, 'vector-effect': 'non-scaling-stroke' }), curves),
    el('div', { class: 'axis', 'aria-hidden': 'true' }, ['00:00', '06:00', '12:00', '18:00', '24:00'].map((t) => el('span', null, t))));
}

// One order's member probabilities as a stacked bar.
export function probabilityBar(parts) {
  let at = 0;
  const rects = parts.map((p) => {
    const rect = svg('rect', { x: at, y: 0, width: Math.max(0, p.value * 100), height: 12, fill: p.color });
    at += p.value * 100;
    return rect;
  });
  return svg('svg', { class: 'prob-bar', viewBox: '0 0 100 12', preserveAspectRatio: 'none', role: 'img', 'aria-label': 'Member probabilities' },
    svg('rect', { x: 0, y: 0, width: 100, height: 12, rx: 3, fill: '#f2f4f7' }), rects);
}
