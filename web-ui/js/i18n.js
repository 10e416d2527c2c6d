// Words on the screen: every visible string comes from i18n/LANG.json. Vietnamese is the
// default; the choice is kept in this browser's localStorage. Also the formatting of
// times, floors and readings, which differs by language.

const LANGS = ['vi', 'en'];
const STORE_KEY = 'firegw.lang';
const dicts = {};
let lang = 'vi';

export function languages() {
  return LANGS;
}

export function currentLang() {
  return lang;
}

// The language to start in: this browser's earlier choice, else the account's, else Vietnamese.
export function preferredLang(sessionLang) {
  let stored = null;
  try {
    stored = localStorage.getItem(STORE_KEY);
  } catch (e) {
    stored = null; // storage blocked: the default is fine
  }
  if (LANGS.includes(stored)) return stored;
  if (LANGS.includes(sessionLang)) return sessionLang;
  return 'vi';
}

async function load(l) {
  if (dicts[l]) return dicts[l];
  const res = await fetch('i18n/' + l + '.json', { credentials: 'same-origin', cache: 'no-cache' });
  if (!res.ok) throw new Error('i18n/' + l + '.json: HTTP ' + res.status);
  dicts[l] = await res.json();
  return dicts[l];
}

// Switch to language l (loading its file once); remembered when remember is true.
export async function setLang(l, remember) {
  if (!LANGS.includes(l)) l = 'vi';
  await load(l);
  lang = l;
  document.documentElement.lang = l;
  if (remember) {
    try {
      localStorage.setItem(STORE_KEY, l);
    } catch (e) {
      // storage blocked: the choice lasts until the page is reloaded
    }
  }
}

// The text for key with {name} placeholders filled from vars; the key itself when missing,
// so a missing translation shows up on screen instead of an empty space.
export function t(key, vars) {
  const d = dicts[lang] || {};
  let s = Object.prototype.hasOwnProperty.call(d, key) ? d[key] : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return s;
}

// Whether the current language has a text for key (for optional hints).
export function has(key) {
  return Object.prototype.hasOwnProperty.call(dicts[lang] || {}, key);
}

// For words that come from the gateway (state, kind, fault codes): the translation when
// there is one, else the word as the gateway sent it.
export function tWord(prefix, word) {
  if (word === undefined || word === null || word === '') return '';
  const key = prefix + '.' + word;
  const d = dicts[lang] || {};
  return Object.prototype.hasOwnProperty.call(d, key) ? d[key] : String(word);
}

function locale() {
  return lang === 'vi' ? 'vi-VN' : 'en-GB';
}

// An ISO time as local date and time; times of today without the date.
export function fmtTime(iso, withDate) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d.getTime())) return String(iso);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  const opts = { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
  if (withDate || !sameDay) Object.assign(opts, { day: '2-digit', month: '2-digit', year: 'numeric' });
  return new Intl.DateTimeFormat(locale(), opts).format(d);
}

// How long ago an ISO time was, in words ("3 min").
export function fmtAge(iso) {
  const d = new Date(iso);
  if (!iso || isNaN(d.getTime())) return '';
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return t('age.seconds', { n: s });
  if (s < 3600) return t('age.minutes', { n: Math.floor(s / 60) });
  if (s < 86400) return t('age.hours', { n: Math.floor(s / 3600) });
  return t('age.days', { n: Math.floor(s / 86400) });
}

export function fmtFloor(floor) {
  if (floor === undefined || floor === null || floor === '') return t('floor.unknown');
  const n = Number(floor);
  if (n < 0) return t('floor.basement', { n: -n });
  if (n === 0) return t('floor.ground');
  return t('floor.number', { n });
}

// A reading with its unit: smoke obscuration in %/m with two decimals, heat in °C with one.
export function fmtValue(value, unit) {
  if (value === undefined || value === null || value === '') return '';
  let v = value;
  let u = unit;
  if (typeof value === 'object') {
    v = value.value;
    u = value.unit;
  }
  if (v === undefined || v === null) return '';
  const n = Number(v);
  if (!isFinite(n)) return String(v);
  const nf = (digits) =>
    new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
  if (u === 'degC') return nf(1) + ' °C';
  if (u === '%/m') return nf(2) + ' %/m';
  return nf(2) + (u ? ' ' + u : '');
}
