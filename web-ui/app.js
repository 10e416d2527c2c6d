// The firegw web UI: finds out who is logged in (or that the gateway has no account yet),
// draws the page frame (header, navigation, alarm banner), keeps the live snapshot from
// the gateway, and shows one page at a time by the address's #/page.

import { api, setCsrf, onAuthLost, LiveFeed } from './js/api.js';
import { h, fill, icon, toast, ask } from './js/dom.js';
import { t, setLang, preferredLang, currentLang, languages } from './js/i18n.js';
import { renderBanner, clearBanner, alarmSummary } from './js/banner.js';
import { showLogin, showSetup } from './js/auth.js';
import { liveView } from './js/live.js';
import { healthView } from './js/health.js';
import { historyView } from './js/history.js';
import { installerView } from './js/installer.js';
import { accountsView } from './js/accounts.js';

const ROLES = ['viewer', 'manager', 'installer', 'admin'];

const PAGES = [
  { id: 'live', icon: 'building', role: 'viewer', view: liveView },
  { id: 'health', icon: 'health', role: 'viewer', view: healthView },
  { id: 'events', icon: 'list', role: 'viewer', view: historyView },
  { id: 'installer', icon: 'wrench', role: 'installer', view: installerView },
  { id: 'accounts', icon: 'users', role: 'viewer', view: accountsView },
];

const ctx = {
  session: null,
  snapshot: null,
  feedStatus: 'connecting',
  // Whether the logged-in user has at least this role.
  can(role) {
    return !!this.session && ROLES.indexOf(this.session.role) >= ROLES.indexOf(role);
  },
  // An operator action (acknowledge, silence, reset, disable, ...) with its outcome shown.
  async act(action, scope, id, extra) {
    const body = Object.assign({ action, scope }, id ? { id } : {}, extra || {});
    try {
      await api('POST', '/api/actions', body);
      toast(t('action.done', { action: t('action.' + action) }), 'ok');
      return true;
    } catch (e) {
      toast(t('action.failed', { action: t('action.' + action), error: e.message }), 'error');
      return false;
    }
  },
  // Ask first, then act: for reset, disable and test mode, which change what is reported.
  async confirmAct(question, action, scope, id, extra) {
    if (!(await ask(question, t('action.' + action), t('common.cancel'), action === 'reset'))) return false;
    return this.act(action, scope, id, extra);
  },
  zoneById(id) {
    return ((this.snapshot && this.snapshot.zones) || []).find((z) => z.id === id) || null;
  },
};

let feed = null;
let current = null; // { page, instance }

function el(id) {
  return document.getElementById(id);
}

function pageFromHash() {
  const m = /^#\/([a-z]+)/.exec(location.hash || '');
  return m ? m[1] : 'live';
}

function renderHeader() {
  const b = ctx.snapshot && ctx.snapshot.building;
  const other = languages().find((l) => l !== currentLang());
  fill(el('topbar'),
    h('div', { class: 'brand' }, icon('fire', 'brand-icon'),
      h('div', { class: 'brand-text' },
        h('div', { class: 'brand-name', text: (b && b.name) || t('app.name') }),
        h('div', { class: 'brand-sub', text: b ? [b.address, b.district].filter(Boolean).join(' · ') : t('app.tagline') }))),
    h('div', { class: 'top-actions' },
      h('button', { class: 'btn ghost', 'data-test': 'lang-switch', title: t('lang.switch'),
        onclick: () => switchLang(other) }, icon('globe'), h('span', { text: t('lang.name.' + other) })),
      ctx.session ? h('span', { class: 'who', 'data-test': 'who' },
        h('span', { class: 'who-name', text: ctx.session.user }),
        h('span', { class: 'who-role', text: t('role.' + ctx.session.role) })) : null,
      ctx.session ? h('button', { class: 'btn ghost', 'data-test': 'logout', onclick: logout },
        icon('logout'), h('span', { class: 'hide-narrow', text: t('nav.logout') })) : null));
}

function renderNav() {
  if (!ctx.session) {
    fill(el('nav'));
    el('nav').hidden = true;
    return;
  }
  el('nav').hidden = false;
  const page = current ? current.page : pageFromHash();
  fill(el('nav'), PAGES.filter((p) => ctx.can(p.role)).map((p) =>
    h('a', { href: '#/' + p.id, class: 'nav-link' + (p.id === page ? ' active' : ''),
      'data-test': 'nav-' + p.id, 'aria-current': p.id === page ? 'page' : null },
    icon(p.icon), h('span', { text: t('nav.' + p.id) }))));
}

function renderConn() {
  const c = el('conn');
  if (!ctx.session || ctx.feedStatus === 'live') {
    c.hidden = true;
    return;
  }
  c.hidden = false;
  c.className = 'conn ' + ctx.feedStatus;
  fill(c, icon('warn'), h('span', {
    text: ctx.feedStatus === 'offline' ? t('conn.offline') : t('conn.connecting') }));
}

function renderTitle() {
  const s = alarmSummary(ctx.snapshot);
  const name = (ctx.snapshot && ctx.snapshot.building && ctx.snapshot.building.name) || t('app.name');
  if (s.fire > 0) document.title = t('title.fire', { n: s.fire, name });
  else if (s.test > 0) document.title = t('title.test', { name });
  else document.title = name + ' — ' + t('app.name');
}

function renderBannerNow() {
  renderBanner(el('banner'), ctx);
  renderTitle();
}

function route() {
  if (!ctx.session) return;
  let page = pageFromHash();
  let def = PAGES.find((p) => p.id === page);
  if (!def || !ctx.can(def.role)) {
    def = PAGES[0];
    page = def.id;
    if (location.hash !== '#/live') history.replaceState(null, '', '#/live');
  }
  if (current && current.instance.unmount) current.instance.unmount();
  const main = fill(el('main'));
  main.className = 'page page-' + page;
  current = { page, instance: def.view(main, ctx) };
  renderNav();
  main.focus({ preventScroll: true });
}

async function switchLang(l) {
  await setLang(l, true);
  renderHeader();
  if (!ctx.session) {
    await start();
    return;
  }
  renderNav();
  renderConn();
  renderBannerNow();
  route();
}

async function logout() {
  try {
    await api('POST', '/api/logout', {}, { noAuthRedirect: true });
  } catch (e) {
    // the session may already be gone; the login page follows either way
  }
  signedOut();
}

function signedOut() {
  if (feed) feed.stop();
  feed = null;
  ctx.session = null;
  setCsrf(null);
  if (current && current.instance.unmount) current.instance.unmount();
  current = null;
  start();
}

// Called once a session exists (after login, setup, or a page load with a cookie).
function signedIn(session) {
  // The account's language applies unless this browser has a choice of its own.
  const want = preferredLang(session.lang);
  if (want !== currentLang()) {
    setLang(want, false).then(() => signedIn(session), () => signedIn(Object.assign({}, session, { lang: null })));
    return;
  }
  ctx.session = session;
  setCsrf(session.csrf);
  clearBanner(el('banner'));
  renderHeader();
  renderNav();
  feed = new LiveFeed({
    onState: (snap) => {
      const first = !ctx.snapshot;
      ctx.snapshot = snap;
      if (first) renderHeader();
      renderBannerNow();
      if (current && current.instance.update) current.instance.update(snap);
    },
    onEvent: (ev) => {
      if (current && current.instance.onEvent) current.instance.onEvent(ev);
    },
    onStatus: (s) => {
      ctx.feedStatus = s;
      renderConn();
    },
    onUnauthorized: signedOut,
  });
  feed.start();
  if (!location.hash || location.hash === '#/login' || location.hash === '#/setup') {
    history.replaceState(null, '', '#/live');
  }
  route();
}

async function start() {
  ctx.snapshot = null;
  clearBanner(el('banner'));
  renderHeader();
  renderNav();
  renderConn();
  const main = el('main');
  main.className = 'page page-auth';
  let session = null;
  try {
    session = await api('GET', '/api/session', undefined, { noAuthRedirect: true });
  } catch (e) {
    if (e.status === 401) {
      if (e.data && e.data.first_run) showSetup(main, signedIn);
      else showLogin(main, signedIn);
      return;
    }
    fill(main, h('div', { class: 'card narrow' },
      h('h1', { text: t('error.unreachable.title') }),
      h('p', { class: 'form-error', text: t('error.unreachable', { error: e.message }) }),
      h('button', { class: 'btn primary', onclick: start }, t('common.retry'))));
    return;
  }
  signedIn(session);
}

async function boot() {
  try {
    await setLang(preferredLang(null), false);
  } catch (e) {
    fill(el('main'), h('p', { class: 'form-error', text: String(e.message || e) }));
    return;
  }
  onAuthLost(() => {
    if (ctx.session) signedOut();
  });
  window.addEventListener('hashchange', () => {
    if (ctx.session) route();
  });
  await start();
}

boot();
