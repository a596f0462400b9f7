// /login: the sign-in form. A name and password go to POST /api/login, which sets the
// session cookie; then the browser opens the page it was going to (`?next=`, only a path of
// this site). Signed in already, it offers to sign out; where nobody is asked, it says so.

import { sendJson } from '../api.js';
import { h, setText } from '../dom.js';
import { safeNext, session } from '../session.js';

export function mount(root) {
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  const current = session();
  const panel = h('section', { class: 'panel narrow login', 'aria-labelledby': 'login-title' }, h('h1', { id: 'login-title' }, 'Sign in'));
  root.append(panel);

  if (!current.auth_required) {
    panel.append(
      h('p', { id: 'login-open' }, 'This gateway asks nobody to sign in: everyone who reaches it may read and act.'),
      h('p', {}, h('a', { href: next }, 'Go on to the dashboard')),
    );
    return;
  }
  if (current.user) {
    panel.append(
      h('p', { id: 'login-current' }, `Signed in as ${current.user} (${current.role}).`),
      h('p', {}, h('a', { href: next }, 'Go on to the dashboard')),
    );
    return;
  }

  const name = h('input', { type: 'text', id: 'login-name', name: 'username', autocomplete: 'username', required: true, maxlength: '200' });
  const password = h('input', { type: 'password', id: 'login-password', name: 'password', autocomplete: 'current-password', required: true, maxlength: '1000' });
  const submit = h('button', { type: 'submit', class: 'button', id: 'login-submit' }, 'Sign in');
  const failure = h('p', { class: 'error', id: 'login-error', role: 'alert' });
  const form = h(
    'form',
    { id: 'login-form', class: 'login-form' },
    h('label', { for: 'login-name' }, 'Name', name),
    h('label', { for: 'login-password' }, 'Password', password),
    submit,
    failure,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setText(failure, '');
    submit.disabled = true;
    try {
      await sendJson('/api/login', { name: name.value.trim(), password: password.value });
      // A full load: the socket and the session are opened again, as the new user.
      location.assign(next);
    } catch (err) {
      setText(failure, err.status === 401 ? 'Wrong name or password.' : err.reason || err.message);
      password.value = '';
      password.focus();
      submit.disabled = false;
    }
  });
  panel.append(h('p', { class: 'muted' }, 'This fleetwatch asks who you are. Viewers read everything; operators also act on alerts.'), form);
  name.focus();
}
