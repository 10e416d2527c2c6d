// The installer's pages: the buses, devices and detectors of the site file as lists with
// add / edit / delete forms (the gateway validates the whole config and its errors are
// shown next to the field they are about), a live probe of one device's registers, a
// scan of a bus for answering unit ids, and the walk test of a zone, whose list ticks
// off each detector as it is triggered.

import { api } from './api.js';
import { h, fill, field, select, icon, toast, ask } from './dom.js';
import { t, has, fmtTime } from './i18n.js';

const TABS = ['detectors', 'devices', 'buses', 'probe', 'walktest'];
const KIND_OF_TAB = { buses: 'bus', devices: 'device', detectors: 'detector' };
const LIST_KEY = { bus: 'buses', device: 'devices', detector: 'detectors' };

const BAUDS = ['1200', '2400', '4800', '9600', '19200', '38400', '57600', '115200'];
const HEAT_CLASSES = ['A1', 'A1R', 'A1S', 'A2', 'A2R', 'A2S', 'B', 'BR', 'BS', 'C', 'CR', 'CS', 'D', 'DR', 'DS',
  'E', 'ER', 'ES', 'F', 'FR', 'FS', 'G', 'GR', 'GS'];
const YESNO = ['yes', 'no'];

// The form of each kind: key, input type, choices, and when it applies. Keys follow the
// site file (docs/config.md); a key the form does not know is kept as it is on edit.
function specs(cfg) {
  const ids = (list) => (cfg[list] || []).map((e) => e.id);
  const isTcp = (v) => v.type === 'tcp';
  const isRtu = (v) => v.type === 'rtu';
  return {
    bus: [
      { key: 'id', required: true },
      { key: 'type', choices: ['tcp', 'rtu'], required: true },
      { key: 'host', when: isTcp, required: true },
      { key: 'port', when: isTcp, input: 'number' },
      { key: 'device', when: isRtu, required: true },
      { key: 'baud', when: isRtu, choices: BAUDS },
      { key: 'parity', when: isRtu, choices: ['none', 'even', 'odd'] },
      { key: 'data_bits', when: isRtu, choices: ['7', '8'] },
      { key: 'stop_bits', when: isRtu, choices: ['1', '2'] },
      { key: 'rs485', when: isRtu, choices: YESNO },
      { key: 'poll_interval' },
      { key: 'timeout' },
      { key: 'retries', input: 'number' },
      { key: 'backoff_min', advanced: true },
      { key: 'backoff_max', advanced: true },
      { key: 'reconnect_min', advanced: true },
      { key: 'reconnect_max', advanced: true },
      { key: 'max_gap', advanced: true, input: 'number' },
      { key: 'max_in_flight', when: isTcp, advanced: true, input: 'number' },
    ],
    device: [
      { key: 'id', required: true },
      { key: 'bus', choices: ids('buses'), required: true },
      { key: 'unit', input: 'number', required: true },
      { key: 'profile', choices: cfg.profiles || [], required: true },
      { key: 'timeout', advanced: true },
      { key: 'retries', advanced: true, input: 'number' },
      { key: 'fail_after', advanced: true, input: 'number' },
    ],
    detector: [
      { key: 'id', required: true },
      { key: 'zone', choices: (cfg.zones || []).map((z) => [z.id, (z.name ? z.name + ' (' + z.id + ')' : z.id)]),
        required: true },
      { key: 'device', choices: ids('devices') },
      { key: 'bus', when: (v) => !v.device, choices: ids('buses') },
      { key: 'unit', when: (v) => !v.device, input: 'number' },
      { key: 'profile', when: (v) => !v.device, choices: cfg.profiles || [] },
      { key: 'channel', input: 'number' },
      { key: 'location' },
      { key: 'floor', input: 'number' },
      { key: 'prealarm', advanced: true },
      { key: 'alarm', advanced: true },
      { key: 'hysteresis', advanced: true },
      { key: 'no_response', advanced: true },
      { key: 'heat_class', advanced: true, choices: HEAT_CLASSES },
      { key: 'rate_of_rise', advanced: true, choices: YESNO },
      { key: 'stuck_after', advanced: true },
    ],
  };
}

// The form field a gateway error is about: "detector.F3-01.zone" -> "zone"; a plain
// request field name ("unit") as it is; anything else belongs to no field of this form.
function fieldKey(path, kind, id) {
  if (!path) return '';
  const prefix = kind + '.' + (id || '') + '.';
  if (id && path.startsWith(prefix)) return path.slice(prefix.length);
  return path.includes('.') ? '' : path;
}

// An add or edit form for one entity. done() after a successful save.
function entityForm(kind, cfg, entity, done, cancel) {
  const spec = specs(cfg)[kind];
  const editing = !!entity;
  const values = Object.assign({}, entity || {});
  const inputs = {};
  const fields = {};
  const general = h('div', { class: 'form-error', role: 'alert', 'data-test': 'form-error' });
  const basic = h('div', { class: 'form-grid' });
  const advanced = h('div', { class: 'form-grid' });
  const adv = h('details', { class: 'advanced' }, h('summary', { text: t('inst.advanced') }), advanced);

  // Fields of the other bus type, or bus/unit/profile once a device is chosen, are hidden.
  const refresh = () => {
    for (const s of spec) fields[s.key].hidden = !!(s.when && !s.when(values));
  };
  for (const s of spec) {
    let input;
    if (s.choices) {
      const opts = s.choices.map((c) => (Array.isArray(c) ? c : [c, c]));
      const cur = values[s.key];
      // A value the choices do not know (written by hand in the file) stays selectable.
      if (cur !== undefined && cur !== null && cur !== '' && !opts.some(([v]) => v === String(cur))) {
        opts.push([String(cur), String(cur)]);
      }
      input = select(s.key, [['', s.required ? t('inst.choose') : t('inst.default')]].concat(opts),
        cur === undefined || cur === null ? '' : String(cur));
    } else {
      input = h('input', { name: s.key, type: 'text', inputmode: s.input === 'number' ? 'numeric' : null,
        value: values[s.key] === undefined || values[s.key] === null ? '' : String(values[s.key]),
        autocapitalize: 'none', spellcheck: 'false' });
    }
    input.dataset.test = 'f-' + s.key;
    input.addEventListener('input', () => {
      values[s.key] = input.value;
      fields[s.key].setError('');
      refresh();
    });
    input.addEventListener('change', () => {
      values[s.key] = input.value;
      refresh();
    });
    inputs[s.key] = input;
    const label = t('key.' + s.key) + (s.required ? ' *' : '');
    const hint = 'inst.hint.' + kind + '.' + s.key;
    fields[s.key] = field(label, input, has(hint) ? t(hint) : has('inst.hint.' + s.key) ? t('inst.hint.' + s.key) : null);
    fields[s.key].dataset.key = s.key;
    (s.advanced ? advanced : basic).appendChild(fields[s.key]);
  }
  refresh();

  const save = h('button', { type: 'submit', class: 'btn primary', 'data-test': 'form-save' },
    editing ? t('inst.save') : t('inst.add'));
  const form = h('form', { class: 'card entity-form', novalidate: true, 'data-test': 'entity-form',
    onsubmit: async (e) => {
      e.preventDefault();
      general.textContent = '';
      for (const f of Object.values(fields)) f.setError('');
      const body = {};
      // Keys the form does not know are kept; known ones come from the inputs, and a
      // hidden or empty one is left out of the section.
      for (const [k, v] of Object.entries(entity || {})) if (!(k in inputs)) body[k] = v;
      for (const s of spec) {
        const v = inputs[s.key].value.trim();
        if (!fields[s.key].hidden && v !== '') body[s.key] = v;
      }
      for (const s of spec) {
        if (s.required && !fields[s.key].hidden && !body[s.key]) fields[s.key].setError(t('inst.required'));
      }
      if (form.querySelector('.field.invalid')) return;
      body.version = cfg.version;
      const id = editing ? entity.id : body.id;
      save.disabled = true;
      try {
        if (editing) await api('PUT', '/api/config/' + kind + '/' + encodeURIComponent(entity.id), body);
        else await api('POST', '/api/config/' + kind, body);
        toast(t(editing ? 'inst.saved' : 'inst.added', { id: body.id }), 'ok');
        done();
      } catch (ex) {
        showErrors(ex, kind, id, fields, general);
      } finally {
        save.disabled = false;
      }
    } },
  h('h3', { text: t(editing ? 'inst.edit.' + kind : 'inst.new.' + kind, { id: entity ? entity.id : '' }) }),
  basic, adv, general,
  h('div', { class: 'form-buttons' }, save,
    h('button', { type: 'button', class: 'btn', onclick: cancel, 'data-test': 'form-cancel' }, t('common.cancel'))));
  // Open the advanced part when an edited entity uses one of its keys.
  if (spec.some((s) => s.advanced && values[s.key])) adv.open = true;
  return form;
}

function showErrors(ex, kind, id, fields, general) {
  const lines = [];
  const place = (path, msg, line) => {
    const key = fieldKey(path, kind, id);
    const f = key && fields[key];
    if (f && !f.hidden) {
      f.setError(msg);
      const adv = f.closest('details');
      if (adv) adv.open = true;
    } else {
      lines.push((line ? t('inst.line', { n: line }) + ' ' : '') + (path ? path + ': ' : '') + msg);
    }
  };
  if (ex.status === 422 && Array.isArray(ex.data.errors) && ex.data.errors.length) {
    for (const e of ex.data.errors) place(e.field, e.message, e.line);
    if (lines.length) lines.unshift(ex.message);
  } else if (ex.data && ex.data.field) {
    place(ex.data.field, ex.message);
  } else if (ex.status === 409) {
    lines.push(ex.message, t('inst.stale'));
  } else {
    lines.push(ex.message);
  }
  fill(general, lines.map((l) => h('div', { text: l })));
  const first = general.textContent ? general : document.querySelector('.entity-form .field.invalid');
  if (first) first.scrollIntoView({ block: 'center' });
}

// The list and forms of one kind of entity.
function entityTab(body, kind, state, reload) {
  const list = state.cfg[LIST_KEY[kind]] || [];
  const area = h('div', { class: 'form-area' });
  const openForm = (entity) => {
    fill(area, entityForm(kind, state.cfg, entity, reload, () => fill(area)));
    area.scrollIntoView({ block: 'start' });
  };
  const cols = { bus: ['type', 'host', 'port', 'device'], device: ['bus', 'unit', 'profile'],
    detector: ['zone', 'device', 'bus', 'unit', 'channel', 'location'] }[kind];
  const rows = list.map((e) => h('tr', { 'data-id': e.id, 'data-test': kind + '-row' },
    h('td', { 'data-label': t('key.id') }, h('strong', { text: e.id })),
    cols.map((c) => h('td', { 'data-label': t('key.' + c), text: e[c] ?? '' })),
    h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' },
      h('button', { class: 'btn small', 'data-test': 'edit', onclick: () => openForm(e) }, t('inst.edit')),
      h('button', { class: 'btn small danger', 'data-test': 'delete', onclick: async () => {
        if (!(await ask(t('inst.delete.confirm', { id: e.id }), t('inst.delete'), t('common.cancel'), true))) return;
        try {
          const q = '?version=' + encodeURIComponent(state.cfg.version);
          await api('DELETE', '/api/config/' + kind + '/' + encodeURIComponent(e.id) + q, { version: state.cfg.version });
          toast(t('inst.deleted', { id: e.id }), 'ok');
          reload();
        } catch (ex) {
          toast(ex.message, 'error');
          if (ex.status === 409) reload();
        }
      } }, t('inst.delete'))))));
  fill(body,
    h('div', { class: 'list-head' },
      h('h2', { text: t('inst.tab.' + LIST_KEY[kind]) + ' (' + list.length + ')' }),
      h('button', { class: 'btn primary', 'data-test': 'add-' + kind, onclick: () => openForm(null) },
        t('inst.new.' + kind, { id: '' }))),
    list.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-test': kind + '-list' },
        h('thead', {}, h('tr', {}, h('th', { text: t('key.id') }), cols.map((c) => h('th', { text: t('key.' + c) })),
          h('th'))),
        h('tbody', {}, rows)))
      : h('p', { class: 'muted', text: t('inst.empty') }),
    area);
}

function probeTab(body, state) {
  const devs = (state.cfg.devices || []).map((d) => d.id);
  // Devices made by detector shorthand (bus/unit) are known only to the live snapshot.
  for (const d of state.snapshotDevices()) if (!devs.includes(d)) devs.push(d);
  const dev = select('device', devs.map((d) => [d, d]));
  dev.dataset.test = 'probe-device';
  const out = h('div', { 'aria-live': 'polite', 'data-test': 'probe-out' });
  const probeBtn = h('button', { type: 'submit', class: 'btn primary', 'data-test': 'probe-run' }, t('inst.probe.run'));
  const probe = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    probeBtn.disabled = true;
    fill(out, h('p', { class: 'muted', text: t('inst.probe.busy') }));
    try {
      const r = await api('POST', '/api/probe', { device: dev.value }, { timeoutMs: 30000 });
      const regs = r.registers || [];
      // text is the gateway's own reading of the register (value with unit, or bit words).
      const shown = (g) => g.error || g.text
        || (g.value === null || g.value === undefined ? '' : String(g.value) + (g.unit ? ' ' + g.unit : ''));
      fill(out, r.ok === false && r.error ? h('p', { class: 'form-error', text: r.error }) : null,
        h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-test': 'probe-table' },
        h('thead', {}, h('tr', {}, ['address', 'raw', 'name', 'value'].map((c) => h('th', { text: t('inst.probe.' + c) })))),
        h('tbody', {}, regs.map((g) => h('tr', { 'data-name': g.name || '', class: g.error ? 'probe-error' : null },
          h('td', { 'data-label': t('inst.probe.address'), class: 'mono',
            text: (g.table ? g.table + ' ' : '') + String(g.address ?? '') }),
          h('td', { 'data-label': t('inst.probe.raw'), class: 'mono', text: g.raw_hex || String(g.raw ?? '') }),
          h('td', { 'data-label': t('inst.probe.name'), text: (g.name || '') + (g.channel ? ' #' + g.channel : '') }),
          h('td', { 'data-label': t('inst.probe.value'), 'data-test': 'probe-value', text: shown(g) })))))));
    } catch (ex) {
      fill(out, h('p', { class: 'form-error', text: ex.message }));
    } finally {
      probeBtn.disabled = false;
    }
  } },
  h('h2', { text: t('inst.probe.title') }), h('p', { class: 'muted', text: t('inst.probe.intro') }),
  field(t('key.device'), dev), probeBtn, out);

  const bus = select('bus', (state.cfg.buses || []).map((b) => [b.id, b.id + ' (' + b.type + ')']));
  bus.dataset.test = 'scan-bus';
  const from = h('input', { type: 'number', min: 0, max: 255, value: '1', name: 'from', 'data-test': 'scan-from' });
  const to = h('input', { type: 'number', min: 0, max: 255, value: '247', name: 'to', 'data-test': 'scan-to' });
  const scanOut = h('div', { 'aria-live': 'polite', 'data-test': 'scan-out' });
  const scanBtn = h('button', { type: 'submit', class: 'btn primary', 'data-test': 'scan-run' }, t('inst.scan.run'));
  const scan = h('form', { class: 'card', onsubmit: async (e) => {
    e.preventDefault();
    scanBtn.disabled = true;
    fill(scanOut, h('p', { class: 'muted', text: t('inst.scan.busy') }));
    try {
      // A scan takes up to (to - from + 1) x the per-unit timeout; the gateway answers then.
      const r = await api('POST', '/api/scan', { bus: bus.value, from: Number(from.value), to: Number(to.value) },
        { timeoutMs: 300000 });
      const units = (r.units || []).map((u) => (typeof u === 'object' ? u.unit : u));
      if (r.ok === false && r.error) throw new Error(r.error);
      fill(scanOut, units.length
        ? h('p', {}, t('inst.scan.found', { n: units.length }), ' ',
          units.map((u) => h('span', { class: 'chip st-normal', 'data-test': 'scan-unit', text: String(u) })))
        : h('p', { class: 'muted', text: t('inst.scan.none') }));
    } catch (ex) {
      fill(scanOut, h('p', { class: 'form-error', text: ex.message }));
    } finally {
      scanBtn.disabled = false;
    }
  } },
  h('h2', { text: t('inst.scan.title') }), h('p', { class: 'muted', text: t('inst.scan.intro') }),
  h('div', { class: 'form-grid' }, field(t('key.bus'), bus), field(t('inst.scan.from'), from), field(t('inst.scan.to'), to)),
  scanBtn, scanOut);
  fill(body, probe, scan);
}

// Walk test: start on a zone, then GET /api/walktest every second while the tab is shown.
function walkTab(body, state, ctx) {
  const status = h('div', { 'data-test': 'walk-status' });
  let timer = null;
  let stopped = false;

  const startForm = () => {
    const zones = (state.cfg.zones || []).map((z) => [z.id, (z.name ? z.name + ' (' + z.id + ')' : z.id)]);
    const zone = select('zone', zones);
    zone.dataset.test = 'walk-zone';
    const dur = select('duration', ['15min', '30min', '1h', '2h'].map((d) => [d, t('duration.' + d)]), '30min');
    dur.dataset.test = 'walk-duration';
    const err = h('p', { class: 'form-error', role: 'alert' });
    return h('form', { class: 'card', onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      try {
        await api('POST', '/api/walktest', { zone: zone.value, duration: dur.value });
        toast(t('walk.started', { zone: zone.value }), 'ok');
        poll();
      } catch (ex) {
        err.textContent = ex.message;
      }
    } },
    h('h2', { text: t('walk.title') }), h('p', { class: 'muted', text: t('walk.intro') }),
    h('div', { class: 'form-grid' }, field(t('key.zone'), zone), field(t('walk.duration'), dur)), err,
    h('button', { type: 'submit', class: 'btn test', 'data-test': 'walk-start' }, icon('flask'), t('walk.start')));
  };

  const running = (w) => {
    const dets = w.detectors || [];
    const done = dets.filter((d) => d.tested_at).length;
    const z = ctx.zoneById(w.zone);
    return h('div', { class: 'card walk' },
      h('div', { class: 'walk-head' },
        h('span', { class: 'chip st-test test-mark', text: t('banner.test.mark') }),
        h('h2', { text: t('walk.running', { zone: z && z.name ? z.name + ' (' + w.zone + ')' : w.zone }) })),
      h('p', {}, t('walk.until', { time: fmtTime(w.until) }), ' · ',
        h('strong', { 'data-test': 'walk-progress', text: t('walk.progress', { done, n: dets.length }) })),
      h('ul', { class: 'walk-list', 'data-test': 'walk-list' }, dets.map((d) => h('li', {
        class: 'walk-item' + (d.tested_at ? ' done' : ''), 'data-test': 'walk-item', 'data-id': d.id,
        'data-done': d.tested_at ? 'yes' : 'no' },
      h('span', { class: 'walk-tick' }, d.tested_at ? icon('check') : null),
      h('span', { class: 'walk-name' }, h('strong', { text: d.id }), ' ',
        h('span', { class: 'muted', text: d.location || '' })),
      h('span', { class: 'walk-when',
        text: d.tested_at ? t('walk.tested', { time: fmtTime(d.tested_at) }) : t('walk.waiting') })))),
      h('button', { class: 'btn', 'data-test': 'walk-end', onclick: async () => {
        // A condition still present when test mode ends is judged for real: warn first.
        const still = ((ctx.snapshot && ctx.snapshot.detectors) || []).filter((d) => d.zone === w.zone && d.test_alarm);
        if (still.length && !(await ask(t('walk.end.still', { ids: still.map((d) => d.id).join(', ') }),
          t('walk.end'), t('common.cancel'), true))) return;
        try {
          await api('DELETE', '/api/walktest');
          toast(t('walk.ended'), 'ok');
        } catch (ex) {
          toast(ex.message, 'error');
        }
        poll();
      } }, t('walk.end')));
  };

  async function poll() {
    clearTimeout(timer);
    if (stopped) return;
    let w = null;
    try {
      w = await api('GET', '/api/walktest');
    } catch (ex) {
      if (ex.status !== 404) {
        fill(status, h('p', { class: 'form-error', text: ex.message }));
        timer = setTimeout(poll, 3000);
        return;
      }
    }
    if (stopped) return;
    if (w && w.zone && w.active !== false) {
      fill(status, running(w));
      timer = setTimeout(poll, 1000);
    } else if (!status.querySelector('form')) {
      fill(status, startForm());
    }
  }
  fill(body, status);
  poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export function installerView(main, ctx) {
  const m = /^#\/installer\/([a-z]+)/.exec(location.hash);
  const tab = m && TABS.includes(m[1]) ? m[1] : 'detectors';
  const body = h('div', { class: 'tab-body' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, TABS.map((x) => h('a', {
    href: '#/installer/' + x, role: 'tab', class: 'tab' + (x === tab ? ' active' : ''),
    'aria-selected': x === tab ? 'true' : 'false', 'data-test': 'tab-' + x, text: t('inst.tab.' + x) })));
  fill(main, h('div', { class: 'page-head' }, h('h1', { text: t('nav.installer') })), tabs, body);
  const state = {
    cfg: null,
    snapshotDevices: () => ((ctx.snapshot && ctx.snapshot.devices) || []).map((d) => d.id),
  };
  let cleanup = null;
  const reload = async () => {
    fill(body, h('p', { class: 'muted', text: t('common.loading') }));
    try {
      state.cfg = await api('GET', '/api/config');
    } catch (ex) {
      fill(body, h('p', { class: 'form-error', text: t('inst.load.error', { error: ex.message }) }));
      return;
    }
    if (cleanup) cleanup();
    cleanup = null;
    if (KIND_OF_TAB[tab]) entityTab(body, KIND_OF_TAB[tab], state, reload);
    else if (tab === 'probe') probeTab(body, state);
    else cleanup = walkTab(body, state, ctx);
  };
  reload();
  return {
    unmount() {
      if (cleanup) cleanup();
    },
  };
}
