// The setup page's script. No framework, nothing inline (the page's CSP allows only
// this file): it opens the session from the link's fragment, and sends the page's
// forms as JSON with the session's CSRF token.
(function () {
  'use strict';

  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';

  function post(path, body) {
    return fetch('/setup/' + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { ok: r.ok, status: r.status, body: j };
      });
    });
  }

  // Shows one outcome section of the page, and nothing else of it.
  function reveal(id) {
    var section = document.getElementById(id);
    if (!section) { return; }
    Array.prototype.forEach.call(document.getElementById('main').children, function (el) {
      el.hidden = el !== section;
    });
    var heading = section.querySelector('h1, h2');
    if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus(); }
  }

  // Opening a link: the token is in the fragment, which no server ever sees. Drop it
  // from the address bar and history, exchange it for a session cookie (replacing any
  // session of another link), then load the page that session shows.
  function openLink() {
    var match = /(?:^#|&)t=([^&]+)/.exec(window.location.hash);
    if (!match) { return false; }
    var token = decodeURIComponent(match[1]);
    window.history.replaceState(null, '', window.location.pathname);
    post('session', { token: token }).then(function (r) {
      if (r.ok) { window.location.replace(window.location.pathname); return; }
      var code = r.body && r.body.error ? r.body.error.code : '';
      var outcome = { expired: 'link-expired', revoked: 'link-revoked', rate_limited: 'link-limited' }[code];
      reveal(outcome || 'link-invalid');
    }, function () { reveal('link-offline'); });
    return true;
  }
  // Back from BambooHR's consent page with a code: drop it from the address bar, then
  // finish with a same-site POST (which carries the session cookie; the OAuth state
  // stands for the CSRF token) and show the linked page, or what went wrong.
  var finishing = document.getElementById('oauth-finishing');
  if (finishing) {
    var query = new URLSearchParams(window.location.search);
    window.history.replaceState(null, '', window.location.pathname);
    post('oauth/finish', { code: query.get('code') || '', state: query.get('state') || '' }).then(function (r) {
      if (r.ok) { window.location.replace('/setup/'); return; }
      var code = r.body && r.body.error ? r.body.error.code : '';
      var outcome = { expired: 'link-expired', revoked: 'link-revoked', rate_limited: 'link-limited', no_session: 'link-invalid' }[code];
      if (outcome) { reveal(outcome); return; }
      document.getElementById('oauth-error').textContent =
        (r.body && r.body.error && r.body.error.message) || 'Something went wrong. Try again.';
      reveal('oauth-failed');
    }, function () { reveal('link-offline'); });
    return;
  }

  // A link opened in a tab that shows this page already changes only the fragment.
  window.addEventListener('hashchange', openLink);
  var opening = document.getElementById('opening');
  if (openLink()) { return; }
  if (opening) { reveal('link-invalid'); return; }

  function clearErrors(form) {
    Array.prototype.forEach.call(form.querySelectorAll('[data-error-for]'), function (p) {
      p.textContent = '';
      p.hidden = true;
    });
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid]'), function (input) {
      input.removeAttribute('aria-invalid');
    });
  }

  function showError(form, error) {
    var field = error && error.field;
    var message = (error && error.message) || 'Something went wrong. Try again.';
    var slot = field ? form.querySelector('[data-error-for="' + field + '"]') : null;
    var input = field ? form.querySelector('[name="' + field + '"]') : null;
    if (!slot) { slot = form.querySelector('[data-error-for="form"]'); input = null; }
    slot.textContent = message;
    slot.hidden = false;
    if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
  }

  function values(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) { return; }
      if (el.type === 'checkbox' && el.hasAttribute('data-list')) {
        body[el.name] = body[el.name] || [];
        if (el.checked) { body[el.name].push(el.value); }
      } else if (el.type === 'checkbox') {
        body[el.name] = el.checked;
      } else {
        body[el.name] = el.value;
      }
    });
    return body;
  }

  Array.prototype.forEach.call(document.querySelectorAll('form[data-action]'), function (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      clearErrors(form);
      var button = form.querySelector('button[type="submit"]');
      var status = form.querySelector('[data-role="status"]');
      if (button) { button.disabled = true; }
      if (status) { status.textContent = form.getAttribute('data-busy') || 'Working…'; }
      post(form.getAttribute('data-action'), values(form)).then(function (r) {
        if (button) { button.disabled = false; }
        if (status) { status.textContent = ''; }
        if (r.ok) {
          if (status) { status.textContent = form.getAttribute('data-done') || 'Done.'; }
          window.location.reload();
          return;
        }
        if (r.status === 401 || r.status === 410) { window.location.reload(); return; }
        showError(form, r.body && r.body.error);
      }, function () {
        if (button) { button.disabled = false; }
        if (status) { status.textContent = ''; }
        showError(form, { message: 'The setup page could not be reached. Check your connection and try again.' });
      });
    });
  });

  // Connect with BambooHR: the authorize URL for the subdomain entered, then there.
  var oauthButton = document.getElementById('oauth-connect');
  if (oauthButton) {
    oauthButton.addEventListener('click', function () {
      var form = oauthButton.form;
      clearErrors(form);
      var status = form.querySelector('[data-role="status"]');
      oauthButton.disabled = true;
      if (status) { status.textContent = 'Going to BambooHR…'; }
      post('oauth/start', { subdomain: form.elements.subdomain.value }).then(function (r) {
        if (r.ok && r.body.authorizeUrl) { window.location.assign(r.body.authorizeUrl); return; }
        oauthButton.disabled = false;
        if (status) { status.textContent = ''; }
        if (r.status === 401 || r.status === 410) { window.location.reload(); return; }
        showError(form, r.body && r.body.error);
      }, function () {
        oauthButton.disabled = false;
        if (status) { status.textContent = ''; }
        showError(form, { message: 'The setup page could not be reached. Check your connection and try again.' });
      });
    });
  }

  // Re-authenticate: show the key form again.
  var again = document.getElementById('reauthenticate');
  if (again) {
    again.addEventListener('click', function () {
      var section = document.getElementById('reauth');
      section.hidden = false;
      again.setAttribute('aria-expanded', 'true');
      var first = section.querySelector('input');
      if (first) { first.focus(); }
    });
  }
})();
