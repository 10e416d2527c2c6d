// Talking to the gateway: JSON requests under /api with the session's CSRF token on every
// change, errors turned into ApiError with the server's own words, and the live feed
// (/api/stream) that keeps the snapshot current, reconnecting with backoff and checking
// the gateway itself when the stream has been quiet, so a stale screen is never taken
// for a calm building.

const REQUEST_TIMEOUT_MS = 20000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const QUIET_CHECK_MS = 30000;

let csrfToken = null;
let authLost = () => {};

export function setCsrf(token) {
  csrfToken = token || null;
}

// fn() is called when a request finds the session gone (401), except on login and setup.
export function onAuthLost(fn) {
  authLost = fn;
}

export class ApiError extends Error {
  constructor(status, data, retryAfter) {
    super((data && data.error) || 'HTTP ' + status);
    this.status = status;
    this.data = data || {};
    this.retryAfter = retryAfter;
  }
}

// method, path under the site (e.g. '/api/state'), optional JSON body -> parsed JSON (or
// null for an empty answer); throws ApiError (status 0 when the gateway cannot be reached).
export async function api(method, path, body, opts) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), (opts && opts.timeoutMs) || REQUEST_TIMEOUT_MS);
  init.signal = ctl.signal;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: e.name === 'AbortError' ? 'timeout' : String(e.message || e) });
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (e) {
      data = res.ok ? null : { error: text.slice(0, 300) };
    }
  }
  if (!res.ok) {
    const retry = parseInt(res.headers.get('Retry-After') || '', 10);
    const err = new ApiError(res.status, data, isFinite(retry) ? retry : null);
    if (res.status === 401 && !(opts && opts.noAuthRedirect)) authLost();
    throw err;
  }
  return data;
}

// The live snapshot and events. Callbacks: onState(snapshot), onEvent(event),
// onStatus('connecting' | 'live' | 'offline'), onUnauthorized().
export class LiveFeed {
  constructor(cb) {
    this.cb = cb;
    this.es = null;
    this.timer = null;
    this.watch = null;
    this.attempt = 0;
    this.lastHeard = 0;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.setStatus('connecting');
    this.refresh().then((ok) => {
      if (!this.stopped && ok !== 'unauthorized') this.open();
    });
    this.watch = setInterval(() => this.checkQuiet(), 5000);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watch);
    if (this.es) this.es.close();
    this.es = null;
  }

  setStatus(s) {
    if (this.status === s) return;
    this.status = s;
    if (this.cb.onStatus) this.cb.onStatus(s);
  }

  // One GET /api/state: true when it came, 'unauthorized' when the session is gone.
  async refresh() {
    try {
      const snap = await api('GET', '/api/state', undefined, { noAuthRedirect: true });
      this.lastHeard = Date.now();
      if (!this.stopped) this.cb.onState(snap);
      return true;
    } catch (e) {
      if (e.status === 401) {
        this.stop();
        if (this.cb.onUnauthorized) this.cb.onUnauthorized();
        return 'unauthorized';
      }
      return false;
    }
  }

  open() {
    if (this.es) this.es.close();
    const es = new EventSource('/api/stream');
    this.es = es;
    es.addEventListener('open', () => {
      this.lastHeard = Date.now();
      this.setStatus('live');
    });
    es.addEventListener('state', (e) => {
      this.lastHeard = Date.now();
      this.attempt = 0;
      this.setStatus('live');
      let snap;
      try {
        snap = JSON.parse(e.data);
      } catch (err) {
        return; // a broken message is skipped; the next snapshot replaces it
      }
      this.cb.onState(snap);
    });
    es.addEventListener('event', (e) => {
      this.lastHeard = Date.now();
      try {
        if (this.cb.onEvent) this.cb.onEvent(JSON.parse(e.data));
      } catch (err) {
        // skipped like a broken snapshot
      }
    });
    es.addEventListener('error', () => {
      if (this.es !== es) return;
      es.close();
      this.es = null;
      this.retry();
    });
  }

  // Reconnect after 1 s, 2 s, 4 s ... 30 s (with some jitter, so many screens do not come
  // back at the same instant), fetching the snapshot first so the screen is current.
  retry() {
    if (this.stopped) return;
    this.setStatus('offline');
    clearTimeout(this.timer);
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    const delay = base * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(async () => {
      const ok = await this.refresh();
      if (this.stopped || ok === 'unauthorized') return;
      if (ok) this.open();
      else this.retry();
    }, delay);
  }

  // The stream is silent while nothing changes; after QUIET_CHECK_MS of silence ask for the
  // snapshot, and treat a failure as a lost connection.
  async checkQuiet() {
    if (this.stopped || !this.es || Date.now() - this.lastHeard < QUIET_CHECK_MS) return;
    const ok = await this.refresh();
    if (!ok && !this.stopped && this.es) {
      this.es.close();
      this.es = null;
      this.retry();
    }
  }
}
