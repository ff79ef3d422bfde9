// Values that sites pass by mistake when nobody is logged in. None of them names a person, so
// sending one as an id would merge every anonymous visitor into a single profile.
const PLACEHOLDER = /^(0|-1|null|undefined|nan|none|nil|anon(ymous)?|guest|unknown|false|true|\[object object\])?$/i;

// Crawlers name themselves: Googlebot/2.1, AdsBot-Google, Slackbot-LinkExpanding, a bot.html
// page, Baiduspider, "crawler". "bot" must start a word, or end one followed by - / ; ) or ., so
// that phones of the Cubot brand ("CUBOT P50", "CUBOT_X30") are not taken for crawlers.
// facebookexternalhit is not listed: it reads a page for a link preview and runs no script.
export const BOT = /\bbot|bot[-/;).]|crawl|spider/i;

export const cleanId = (v) => ((v = String(v ?? '').trim()), PLACEHOLDER.test(v) ? null : v);

// A random version 4 UUID, lowercase. crypto.randomUUID exists only in secure contexts; a blob URL
// ends in one everywhere, plain http and sandboxed frames included (File API: "blob:" origin "/"
// a random UUID), and takes far fewer bytes of SDK than building one from getRandomValues.
export const uuid = () => {
  const url = URL.createObjectURL(new Blob());
  URL.revokeObjectURL(url);
  return url.slice(-36);
};

// JSON as the collector reads it, even on pages that give arrays a toJSON (Prototype.js up to
// 1.6): JSON.stringify would turn every array, the batch itself included, into a string. The
// replacer sees the value before toJSON as this[k] and puts the array back; Dates keep theirs.
export const json = (v) => JSON.stringify(v, function (k, v) {
  return Array.isArray((k = this[k])) ? k : v;
});

export const parse = (s) => {
  try {
    return JSON.parse(s);
  } catch (e) {}
};

