// Login, and the first-run setup that creates the admin account while the gateway has no
// account at all. Both call done(session) with {user, role, csrf} once the cookie is set.

import { api } from './api.js';
import { h, fill, field, icon } from './dom.js';
import { t } from './i18n.js';

const MIN_PASSWORD = 10;

function submitButton(text, testId) {
  return h('button', { type: 'submit', class: 'btn primary wide', 'data-test': testId }, text);
}

// Text for a failed login or setup, from the status and the server's message.
function authError(e) {
  if (e.status === 429) {
    return e.retryAfter ? t('login.locked', { s: e.retryAfter }) : t('login.locked.nowait');
  }
  if (e.status === 401) return t('login.wrong');
  if (e.status === 0) return t('error.unreachable', { error: e.message });
  return e.message;
}

export function showLogin(main, done) {
  const user = h('input', { name: 'user', autocomplete: 'username', required: true, autocapitalize: 'none',
    spellcheck: 'false', 'data-test': 'login-user' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true,
    'data-test': 'login-password' });
  const err = h('p', { class: 'form-error', role: 'alert', 'data-test': 'login-error' });
  const btn = submitButton(t('login.submit'), 'login-submit');
  const form = h('form', { class: 'card narrow auth', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      if (!user.value || !pass.value) {
        err.textContent = t('login.empty');
        return;
      }
      btn.disabled = true;
      try {
        const s = await api('POST', '/api/login', { user: user.value.trim(), password: pass.value },
          { noAuthRedirect: true });
        done(s);
      } catch (ex) {
        err.textContent = authError(ex);
        pass.value = '';
        pass.focus();
      } finally {
        btn.disabled = false;
      }
    } },
  h('div', { class: 'auth-head' }, icon('fire', 'auth-icon'), h('h1', { text: t('login.title') })),
  field(t('login.user'), user), field(t('login.password'), pass), err, btn);
  fill(main, form);
  user.focus();
}

export function showSetup(main, done) {
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'new-password',
    minlength: MIN_PASSWORD, required: true, 'data-test': 'setup-password' });
  const again = h('input', { name: 'password2', type: 'password', autocomplete: 'new-password', required: true,
    'data-test': 'setup-password2' });
  const fPass = field(t('setup.password'), pass, t('setup.password.hint', { n: MIN_PASSWORD }));
  const fAgain = field(t('setup.again'), again);
  const err = h('p', { class: 'form-error', role: 'alert', 'data-test': 'setup-error' });
  const btn = submitButton(t('setup.submit'), 'setup-submit');
  const form = h('form', { class: 'card narrow auth', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = '';
      fPass.setError('');
      fAgain.setError('');
      if (pass.value.length < MIN_PASSWORD) {
        fPass.setError(t('password.short', { n: MIN_PASSWORD }));
        return;
      }
      if (pass.value !== again.value) {
        fAgain.setError(t('password.mismatch'));
        return;
      }
      btn.disabled = true;
      try {
        done(await api('POST', '/api/setup', { password: pass.value }, { noAuthRedirect: true }));
      } catch (ex) {
        if (ex.status === 409) {
          err.textContent = t('setup.done.already');
          setTimeout(() => location.reload(), 1500);
        } else if (ex.data && ex.data.field === 'password') {
          fPass.setError(ex.message);
        } else {
          err.textContent = authError(ex);
        }
      } finally {
        btn.disabled = false;
      }
    } },
  h('div', { class: 'auth-head' }, icon('fire', 'auth-icon'), h('h1', { text: t('setup.title') })),
  h('p', { text: t('setup.intro') }),
  h('p', { class: 'setup-user' }, t('setup.user'), ' ', h('strong', { text: 'admin' })),
  fPass, fAgain, err, btn);
  fill(main, form);
  pass.focus();
}
