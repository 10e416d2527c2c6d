// Accounts: everyone can change their own password here; an admin also sees every
// account, adds accounts, changes roles, sets new passwords and removes accounts (the
// gateway keeps at least one admin).

import { api } from './api.js';
import { h, fill, field, select, toast, ask } from './dom.js';
import { t } from './i18n.js';

const ROLES = ['viewer', 'manager', 'installer', 'admin'];
const MIN_PASSWORD = 10;

function roleSelect(value) {
  const s = select('role', ROLES.map((r) => [r, t('role.' + r)]), value || 'viewer');
  s.dataset.test = 'user-role';
  return s;
}

function ownPasswordForm() {
  const old = h('input', { type: 'password', name: 'old', autocomplete: 'current-password', 'data-test': 'pw-old' });
  const pw = h('input', { type: 'password', name: 'new', autocomplete: 'new-password', 'data-test': 'pw-new' });
  const again = h('input', { type: 'password', name: 'again', autocomplete: 'new-password', 'data-test': 'pw-again' });
  const fOld = field(t('acc.pw.old'), old);
  const fNew = field(t('acc.pw.new'), pw, t('setup.password.hint', { n: MIN_PASSWORD }));
  const fAgain = field(t('setup.again'), again);
  const err = h('p', { class: 'form-error', role: 'alert' });
  return h('form', { class: 'card', novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    for (const f of [fOld, fNew, fAgain]) f.setError('');
    err.textContent = '';
    if (pw.value.length < MIN_PASSWORD) return fNew.setError(t('password.short', { n: MIN_PASSWORD }));
    if (pw.value !== again.value) return fAgain.setError(t('password.mismatch'));
    try {
      await api('POST', '/api/password', { old: old.value, new: pw.value });
      toast(t('acc.pw.changed'), 'ok');
      e.target.reset();
    } catch (ex) {
      const target = ex.data.field === 'old' || ex.status === 401 ? fOld : ex.data.field === 'new' ? fNew : null;
      if (target) target.setError(ex.status === 401 && !ex.data.field ? t('acc.pw.wrong') : ex.message);
      else err.textContent = ex.message;
    }
  } },
  h('h2', { text: t('acc.pw.title') }), fOld, fNew, fAgain, err,
  h('button', { type: 'submit', class: 'btn primary', 'data-test': 'pw-submit' }, t('acc.pw.submit')));
}

function usersList(area, ctx) {
  const reload = async () => {
    let users;
    try {
      const r = await api('GET', '/api/users');
      users = Array.isArray(r) ? r : r.users || [];
    } catch (ex) {
      fill(area, h('p', { class: 'form-error', text: ex.message }));
      return;
    }
    const name = h('input', { name: 'name', autocapitalize: 'none', spellcheck: 'false', 'data-test': 'new-user-name' });
    const role = roleSelect('viewer');
    const pw = h('input', { type: 'password', name: 'password', autocomplete: 'new-password',
      'data-test': 'new-user-password' });
    const fName = field(t('acc.name'), name, t('acc.name.hint'));
    const fRole = field(t('acc.role'), role);
    const fPw = field(t('login.password'), pw, t('setup.password.hint', { n: MIN_PASSWORD }));
    const err = h('p', { class: 'form-error', role: 'alert' });
    const fieldFor = { name: fName, role: fRole, password: fPw };
    fill(area,
      h('section', { class: 'card' },
        h('h2', { text: t('acc.users', { n: users.length }) }),
        h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'data-test': 'users' },
          h('thead', {}, h('tr', {}, h('th', { text: t('acc.name') }), h('th', { text: t('acc.role') }), h('th'))),
          h('tbody', {}, users.map((u) => userRow(u, ctx, reload)))))),
      h('form', { class: 'card', novalidate: true, onsubmit: async (e) => {
        e.preventDefault();
        for (const f of Object.values(fieldFor)) f.setError('');
        err.textContent = '';
        if (pw.value.length < MIN_PASSWORD) return fPw.setError(t('password.short', { n: MIN_PASSWORD }));
        try {
          await api('POST', '/api/users', { name: name.value.trim(), role: role.value, password: pw.value });
          toast(t('acc.added', { name: name.value.trim() }), 'ok');
          reload();
        } catch (ex) {
          const f = fieldFor[ex.data.field];
          if (f) f.setError(ex.message);
          else err.textContent = ex.message;
        }
      } },
      h('h2', { text: t('acc.add') }), h('div', { class: 'form-grid' }, fName, fRole, fPw), err,
      h('button', { type: 'submit', class: 'btn primary', 'data-test': 'new-user-submit' }, t('acc.add'))));
  };
  reload();
}

function userRow(u, ctx, reload) {
  const role = roleSelect(u.role);
  const pw = h('input', { type: 'password', autocomplete: 'new-password', placeholder: t('acc.newpw'),
    'aria-label': t('acc.newpw'), 'data-test': 'user-password' });
  const save = async () => {
    const body = { role: role.value };
    if (pw.value) {
      if (pw.value.length < MIN_PASSWORD) return toast(t('password.short', { n: MIN_PASSWORD }), 'error');
      body.password = pw.value;
    }
    try {
      await api('PUT', '/api/users/' + encodeURIComponent(u.name), body);
      toast(t('acc.saved', { name: u.name }), 'ok');
      reload();
    } catch (ex) {
      toast(ex.message, 'error');
    }
  };
  const del = async () => {
    if (!(await ask(t('acc.delete.confirm', { name: u.name }), t('inst.delete'), t('common.cancel'), true))) return;
    try {
      await api('DELETE', '/api/users/' + encodeURIComponent(u.name));
      toast(t('acc.deleted', { name: u.name }), 'ok');
      reload();
    } catch (ex) {
      toast(ex.message, 'error');
    }
  };
  const me = ctx.session && ctx.session.user === u.name;
  return h('tr', { 'data-test': 'user-row', 'data-name': u.name },
    h('td', { 'data-label': t('acc.name') }, h('strong', { text: u.name }),
      me ? h('span', { class: 'muted', text: ' ' + t('acc.you') }) : null),
    h('td', { 'data-label': t('acc.role') }, role),
    h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' }, pw,
      h('button', { class: 'btn small', onclick: save, 'data-test': 'user-save' }, t('inst.save')),
      h('button', { class: 'btn small danger', onclick: del, 'data-test': 'user-delete' }, t('inst.delete')))));
}

export function accountsView(main, ctx) {
  const area = h('div');
  fill(main, h('div', { class: 'page-head' }, h('h1', { text: t('nav.accounts') })),
    h('p', { class: 'muted' }, t('acc.signed_in', { name: ctx.session.user, role: t('role.' + ctx.session.role) })),
    ctx.can('admin') ? area : null, ownPasswordForm());
  if (ctx.can('admin')) usersList(area, ctx);
  return {};
}
