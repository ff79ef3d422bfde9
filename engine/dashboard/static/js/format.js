// Numbers, money and times as people read them.

const numbers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function number(n) {
  return n == null ? '—' : numbers.format(n);
}

export function plural(n, one, many) {
  return `${number(n)} ${n === 1 ? one : many}`;
}

export function money(value, currency) {
  if (value == null) return '—';
  if (typeof currency === 'string' && /^[A-Za-z]{3}$/.test(currency)) {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() })
      .format(value);
  }
  return new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
    .format(value);
}

// A value from a browser as text: a string as sent, anything else (an order id sent as a number
// or an object) as JSON, the way every view and the Discord alerts show it.
export function text(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// A browser's anonymous id, shortened the same way wherever a page shows one.
export function browser(anonymousId) {
  return String(anonymousId).slice(0, 8);
}

export function percent(p) {
  return `${Math.round(p * 100)}%`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(ms) {
  if (ms == null) return '—';
  return new Date(ms).toLocaleString(undefined, {
    day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

// An instant in UTC to the second, as the logs give it.
export function utc(ms) {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// Every shown time's hover text: the full local time, and the same instant in UTC, since the
// page shows times in the browser's zone without naming one.
export function hover(ms) {
  if (ms == null) return null;
  return `${dateTime(ms)} (your time) · ${utc(ms)}`;
}

export function shortDate(ms) {
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? clock(ms)
    : d.toLocaleString(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

export function duration(ms) {
  if (ms == null) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 && h < 10 ? `${h} h ${m % 60} min` : `${h} h`;
  return `${Math.round(h / 24)} days`;
}

export function ago(ms) {
  const elapsed = Date.now() - ms;
  return elapsed < 5000 ? 'just now' : `${duration(elapsed)} ago`;
}
