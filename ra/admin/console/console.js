/*
 * scep-ra web console: vanilla JS under CSP "default-src 'self'" (no inline code, no eval).
 * API data comes from hostile devices: it is only inserted as text (createElement/append),
 * control, format and bidi characters shown as \uXXXX. The token lives in sessionStorage
 * ("scep-ra.token") and Authorization headers only: never in a URL, never in localStorage.
 *
 * Test hooks (P is ca or ra):
 *  Login: #boot #login #login-form #token #login-button #login-error #cert-login-button
 *  Shell: #app #whoami[data-role][data-via] (#whoami-name #whoami-role #whoami-via) #logout
 *    #nav-pending #nav-certificates #nav-audit #nav-ca (active one: aria-current=page) #pending-count
 *    #flash[data-kind=success|error|info] #flash-dismiss #viewer-note #main body[data-role]
 *    #page-pending #page-certificates #page-audit #page-ca (the shown one lacks [hidden])
 *  Requests: #req-status (pending|issued|rejected|all) #req-search #req-mac #req-search-button
 *    #req-refresh #req-autorefresh #req-updated #req-body #req-prev #req-next #req-range
 *    tr[data-request-id="12"][data-status] with .approve .reject .view-cert td.age
 *    #reject-dialog #reject-id #reject-cn #reject-reason #reject-confirm #reject-cancel #reject-error
 *  Certificates: #cert-search #cert-status (all|valid|revoked|expired) #cert-limit #cert-expiring
 *    #cert-search-button #cert-refresh #cert-body #cert-prev #cert-next #cert-range
 *    tr[data-serial="…"][data-status] (.soon if < 30 days left) with .download .revoke (valid only)
 *    #revoke-dialog #revoke-cn #revoke-serial #revoke-reason (values: RFC 5280 names, the options
 *    from GET /api/revocation-reasons, loaded when the dialog first opens)
 *    #revoke-confirm #revoke-cancel #revoke-error
 *  Audit: #audit-body tr[data-event-id="40"] #audit-newest #audit-newer #audit-older #audit-range
 *  CA: #ca-refresh #ca-cards #P-subject #P-issuer #P-serial #P-not-before #P-not-after #P-key
 *    #fp-P-sha1 #fp-P-sha256 #fp-P-sha384 #fp-P-sha512 (upper-case hex) with #copy-fp-P-sha1 …
 *    #crl-this-update #crl-next-update #crl-revoked #scep-listen #scep-paths
 */
(() => {
'use strict';

const TOKEN_KEY = 'scep-ra.token';
const POLL_MS = 10000;
const TIMEOUT_MS = 30000;
const PAGES = {
  pending: { title: 'Pending', load: () => loadRequests() },
  certificates: { title: 'Certificates', load: () => loadCerts() },
  audit: { title: 'Audit log', load: () => loadAudit() },
  ca: { title: 'CA', load: () => loadCa() }
};
const STATUS_TITLES = { pending: 'Pending requests', issued: 'Issued requests', rejected: 'Rejected requests', all: 'All requests' };
const METHODS = { mic: 'MIC', challenge: 'Challenge', renewal: 'Renewal' };
const DIGESTS = [['sha1', 'SHA-1'], ['sha256', 'SHA-256'], ['sha384', 'SHA-384'], ['sha512', 'SHA-512']];

const S = {
  token: null, me: null, epoch: 0, route: null, navigated: false,
  pending: null, timer: null, lastPoll: 0, pollError: null,
  req: { status: 'pending', q: '', mac: '', offset: 0, limit: 50, seq: 0, busy: false, key: null, acting: {} },
  cert: { q: '', status: 'all', expiring: false, offset: 0, limit: 50, seq: 0 },
  audit: { before: null, stack: [], next: null, seq: 0 },
  ca: { seq: 0 }, reject: null, revoke: null
};

// ---------- DOM helpers ----------
const $ = (id) => document.getElementById(id);
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u3164\ufe00-\ufe0f]/gu;
const clean = (v) => v == null ? '' : String(v).replace(UNSAFE, (c) => '\\u' + c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0'));

function el(tag, props, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) n.dataset[dk] = String(dv);
    else if (k === 'title') n.title = clean(v);
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  add(n, kids);
  return n;
}
function add(n, c) {
  if (c == null || c === false || c === '') return;
  if (Array.isArray(c)) c.forEach((x) => add(n, x));
  else n.append(typeof c === 'object' ? c : clean(c)); // a string becomes a text node
}
// One piece of API data, bidi-isolated, or a dash.
const d = (v, cls) => v == null || v === '' ? el('span', { class: 'muted' }, '—') : el('bdi', { class: cls }, String(v));
const setText = (id, v) => { $(id).textContent = clean(v); };
const isNum = (v) => typeof v === 'number' && isFinite(v);
const badge = (text, kind) => el('span', { class: 'badge ' + (kind || 'st-' + String(text).replace(/[^a-z]/g, '')) }, text || '—');
const button = (cls, text, props) => el('button', Object.assign({ type: 'button', class: cls }, props), text);
const emptyRow = (cols, text) => el('tr', { class: 'empty' }, el('td', { colspan: String(cols) }, text));

// ---------- time ----------
const fmtDT = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
const fmtD = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const fmtClock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const now = () => Date.now() / 1000;
function iso(s) {
  try { return new Date(s * 1000).toISOString().replace('.000Z', 'Z'); } catch (e) { return String(s); }
}
function timeEl(s, dateOnly) {
  if (!isNum(s) || s <= 0) return d('');
  const t = new Date(s * 1000);
  if (isNaN(t)) return d(s);
  return el('time', { datetime: iso(s), title: iso(s) + ' UTC' }, (dateOnly ? fmtD : fmtDT).format(t));
}
function ago(s) {
  const x = Math.max(0, Math.round(now() - s));
  if (x < 45) return 'just now';
  if (x < 5400) return Math.max(1, Math.round(x / 60)) + ' min ago';
  if (x < 172800) return Math.round(x / 3600) + ' h ago';
  return Math.floor(x / 86400) + ' days ago';
}
const daysLeft = (s) => Math.floor((s - now()) / 86400);
const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);
function expiryText(s) {
  if (!isNum(s)) return '';
  const x = Math.abs(s - now());
  const span = x < 86400 ? Math.max(1, Math.round(x / 3600)) + ' h' : plural(Math.floor(x / 86400), 'day', 'days');
  return s < now() ? `expired ${span} ago` : `expires in ${span}`;
}

function debounce(fn, ms) {
  let t = null;
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}
function store(op, key, value) {
  try {
    const ss = window.sessionStorage;
    if (op === 'get') return ss.getItem(key);
    if (op === 'set') ss.setItem(key, value);
    if (op === 'del') ss.removeItem(key);
    if (op === 'clear') ss.clear();
  } catch (e) { /* storage disabled: the session lasts as long as the page */ }
  return null;
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; this.handled = false; }
}

async function api(path, opts = {}) {
  const headers = { Accept: opts.raw ? 'application/x-pem-file, */*' : 'application/json' };
  const token = 'token' in opts ? opts.token : S.token;
  if (token) headers.Authorization = 'Bearer ' + token;
  const init = { method: opts.method || 'GET', headers, cache: 'no-store', credentials: 'same-origin', redirect: 'error' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (AbortSignal.timeout) init.signal = AbortSignal.timeout(TIMEOUT_MS);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e && (e.name === 'TimeoutError' || e.name === 'AbortError')) throw new ApiError(0, `The server did not answer within ${TIMEOUT_MS / 1000} s.`);
    throw new ApiError(0, 'Cannot reach the server (network error).');
  }
  if (!res.ok) {
    let msg = '';
    try {
      const j = JSON.parse(await res.text());
      if (j && typeof j.error === 'string') msg = j.error;
    } catch (e) { /* not JSON */ }
    throw new ApiError(res.status, msg || `HTTP ${res.status} ${res.statusText}`.trim());
  }
  if (opts.raw) return res.blob();
  try { return await res.json(); } catch (e) { throw new ApiError(res.status, 'The server answered with something that is not JSON.'); }
}

// A call from the signed-in app: a 401 ends the session, a 403 says who was refused.
async function call(path, opts) {
  const epoch = S.epoch;
  try {
    const v = await api(path, opts);
    if (epoch !== S.epoch) throw Object.assign(new ApiError(0, 'signed out'), { handled: true });
    return v;
  } catch (e) {
    if (epoch !== S.epoch) e.handled = true;
    else if (e.status === 401 && S.me) {
      e.handled = true;
      signOut(false);
      loginError(`Your session is no longer valid (${e.message}). Sign in again.`);
    } else if (e.status === 403 && S.me) {
      e.message = `Not allowed for ${S.me.name} (role ${S.me.role}): ${e.message}`;
    }
    throw e;
  }
}
const canApprove = () => !!S.me && S.me.role === 'approver';

// ---------- flash ----------
function flash(kind, parts) {
  const f = $('flash');
  f.dataset.kind = kind;
  f.replaceChildren();
  add(f, parts);
  $('flash-dismiss').hidden = false;
}
function clearFlash() {
  $('flash').replaceChildren();
  delete $('flash').dataset.kind;
  $('flash-dismiss').hidden = true;
}
function report(e, what) {
  if (!e || !e.handled) flash('error', [what ? what + ': ' : '', e && e.message ? e.message : String(e)]);
}

// ---------- sign-in ----------
const validMe = (me) => me && typeof me.name === 'string' && typeof me.role === 'string';

function loginError(msg) {
  setText('login-error', msg || '');
  $('login-error').hidden = !msg;
  $('token').setAttribute('aria-invalid', msg ? 'true' : 'false');
}
function showLogin(msg) {
  $('boot').hidden = true;
  $('app').hidden = true;
  $('login').hidden = false;
  document.title = 'Sign in · scep-ra console';
  if (msg) loginError(msg);
  $('token').focus();
}
function loginProblem(e, viaCert) {
  if (e.status === 401) return viaCert
    ? `Your browser did not present an accepted admin client certificate (${e.message}).`
    : `The token was not accepted (${e.message}). Was it copied completely?`;
  if (e.status === 403) return `This identity may not use the console (${e.message}).`;
  return e.status === 0 ? e.message : 'Sign-in failed: ' + e.message;
}
async function whoami(token) {
  const me = await api('/api/whoami', { token });
  if (!validMe(me)) throw new ApiError(200, 'Unexpected /api/whoami answer.');
  return me;
}

async function signInWithToken(ev) {
  ev.preventDefault();
  const input = $('token');
  const btn = $('login-button');
  const tok = input.value.trim();
  if (!tok) { loginError('Enter your API token.'); input.focus(); return; }
  if (!/^[\x21-\x7e]{1,4096}$/.test(tok)) { loginError('A token has no spaces, line breaks or non-ASCII characters.'); input.focus(); return; }
  btn.disabled = true;
  btn.textContent = 'Signing in…';
  loginError('');
  try {
    const me = await whoami(tok);
    input.value = '';
    enter(me, tok);
  } catch (e) {
    loginError(loginProblem(e, false));
    input.focus();
    input.select();
  } finally {
    btn.disabled = false;
    btn.textContent = 'Sign in';
  }
}

async function signInWithCert() {
  const btn = $('cert-login-button');
  btn.disabled = true;
  loginError('');
  try { enter(await whoami(null), null); } catch (e) { loginError(loginProblem(e, true)); } finally { btn.disabled = false; }
}

function enter(me, token) {
  S.epoch++;
  S.me = { name: String(me.name), role: String(me.role), via: String(me.via || (token ? 'token' : 'client-certificate')) };
  S.token = token;
  if (token) store('set', TOKEN_KEY, token); else store('del', TOKEN_KEY);
  const w = $('whoami');
  w.dataset.role = S.me.role;
  w.dataset.via = S.me.via;
  setText('whoami-name', S.me.name);
  setText('whoami-role', S.me.role);
  $('whoami-role').className = 'badge role-' + (canApprove() ? 'approver' : 'viewer');
  setText('whoami-via', S.me.via === 'client-certificate' ? 'via client certificate' : 'via token');
  document.body.dataset.role = S.me.role;
  $('viewer-note').hidden = canApprove();
  loginError('');
  $('boot').hidden = true;
  $('login').hidden = true;
  $('app').hidden = false;
  clearFlash();
  S.navigated = false;
  route();
  schedulePoll();
}

function signOut(byUser) {
  S.epoch++;
  clearTimeout(S.timer);
  Object.assign(S, { timer: null, me: null, token: null, route: null, reject: null, revoke: null, pollError: null });
  store('clear');
  for (const id of ['reject-dialog', 'revoke-dialog']) if ($(id).open) $(id).close();
  // Drop everything the session displayed, and the filters.
  for (const id of ['req-body', 'cert-body', 'audit-body', 'ca-cards']) $(id).replaceChildren();
  for (const id of ['req-range', 'cert-range', 'audit-range', 'req-updated', 'whoami-name', 'whoami-role', 'whoami-via']) setText(id, '');
  Object.assign(S.req, { status: 'pending', q: '', mac: '', offset: 0, key: null, acting: {} });
  Object.assign(S.cert, { q: '', status: 'all', expiring: false, offset: 0, limit: 50 });
  Object.assign(S.audit, { before: null, stack: [], next: null });
  for (const f of document.querySelectorAll('#app form')) f.reset();
  setPending(null);
  delete document.body.dataset.role;
  clearFlash();
  $('token').value = '';
  showLogin();
  if (byUser) loginError('');
}

async function boot() {
  wire();
  const stored = store('get', TOKEN_KEY);
  try {
    if (stored) {
      try { enter(await whoami(stored), stored); return; } catch (e) {
        if (e.status !== 401 && e.status !== 403) throw e;
        store('del', TOKEN_KEY);
      }
    }
    // No anonymous probe here: every unauthenticated API call is an audit
    // event. Client-certificate users press #cert-login-button.
    showLogin(stored ? 'Your saved session has ended. Sign in again.' : '');
  } catch (e) {
    showLogin(loginProblem(e, false));
  }
}

// ---------- routing ----------
function route() {
  if (!S.me) return;
  const m = /^#\/([a-z]+)$/.exec(location.hash);
  const name = m && PAGES[m[1]] ? m[1] : 'pending';
  if (!m || m[1] !== name) history.replaceState(null, '', '#/' + name);
  const changed = S.route !== name;
  S.route = name;
  for (const p of Object.keys(PAGES)) {
    $('page-' + p).hidden = p !== name;
    if (p === name) $('nav-' + p).setAttribute('aria-current', 'page'); else $('nav-' + p).removeAttribute('aria-current');
  }
  updateTitle();
  if (changed && S.navigated) {
    if ($('flash').dataset.kind === 'error') clearFlash();
    $('h-' + name).focus();
  }
  S.navigated = true;
  PAGES[name].load();
}
function updateTitle() {
  document.title = (S.pending ? `(${S.pending}) ` : '') + (S.route ? PAGES[S.route].title + ' · ' : '') + 'scep-ra console';
}
function setPending(n) {
  const b = $('pending-count');
  S.pending = isNum(n) ? n : null;
  b.replaceChildren();
  if (S.pending) b.append(String(n), el('span', { class: 'sr-only' }, ' waiting'));
  b.hidden = !S.pending;
  updateTitle();
}

// ---------- polling: one timer; the next tick is armed only after the previous one finished ----------
function schedulePoll() {
  clearTimeout(S.timer);
  S.timer = S.me ? setTimeout(tick, POLL_MS) : null;
}
const dialogOpen = () => $('reject-dialog').open || $('revoke-dialog').open;
async function tick() {
  S.timer = null;
  if (!S.me) return;
  const epoch = S.epoch;
  if (document.visibilityState === 'visible' && !dialogOpen()) {
    S.lastPoll = Date.now();
    try {
      if (S.route === 'pending' && $('req-autorefresh').checked) await loadRequests(true);
      else {
        const r = await call('/api/requests?status=pending&limit=1');
        if (r && isNum(r.total)) setPending(r.total);
      }
    } catch (e) { /* quiet: the next tick tries again; a 401 has already signed out */ }
  }
  if (epoch === S.epoch) schedulePoll();
}

// ---------- requests ----------
async function loadRequests(quiet) {
  const f = S.req;
  if (quiet && f.busy) return;
  const seq = ++f.seq;
  const wrap = $('req-body').closest('.table-wrap');
  f.busy = true;
  const p = new URLSearchParams({ limit: f.limit, offset: f.offset });
  if (f.status !== 'all') p.set('status', f.status);
  if (f.q) p.set('q', f.q);
  if (f.mac) p.set('mac', f.mac);
  setText('h-pending', STATUS_TITLES[f.status]);
  if (!quiet) { wrap.setAttribute('aria-busy', 'true'); setText('req-updated', 'Loading…'); }
  try {
    const data = (await call('/api/requests?' + p)) || {};
    if (seq !== f.seq) return;
    renderRequests(data);
    setText('req-updated', 'Updated ' + fmtClock.format(new Date()));
    if (f.status === 'pending' && !f.q && !f.mac && isNum(data.total)) setPending(data.total);
    if (S.pollError) {
      S.pollError = null;
      if (quiet && $('flash').dataset.kind === 'error') clearFlash();
    }
  } catch (e) {
    if (seq !== f.seq) return;
    setText('req-updated', 'Not updated');
    if (!quiet && !e.handled) { f.key = null; $('req-body').replaceChildren(emptyRow(8, 'Could not load: ' + e.message)); }
    if (quiet) {
      if (S.pollError === e.message) return; // say it once, not every 10 s
      S.pollError = e.message;
    }
    report(e, quiet ? 'Auto-refresh failed' : 'Loading requests failed');
  } finally {
    if (seq === f.seq) { f.busy = false; wrap.removeAttribute('aria-busy'); }
  }
}

function renderRequests(data) {
  const f = S.req;
  const body = $('req-body');
  const items = Array.isArray(data.items) ? data.items : [];
  const total = isNum(data.total) ? data.total : items.length;
  const key = JSON.stringify([total, data.total_exact, f.offset, items, canApprove(), f.acting]);
  if (key === f.key) { updateAges(body); return; } // unchanged: no DOM churn, no flicker
  f.key = key;
  const focus = rememberFocus(body, 'requestId');
  body.replaceChildren(...(items.length ? items.map(requestRow) : [emptyRow(8, f.status === 'pending' && !f.q && !f.mac
    ? 'No pending requests. New enrollments that need a decision appear here automatically.' : 'No requests match.')]));
  restoreFocus(body, focus, 'requestId', 'h-pending');
  pager('req', f.offset, items.length, total, data.total_exact);
}

function requestRow(r) {
  const id = isNum(r.id) ? r.id : String(r.id);
  const mic = r.model || r.mac || r.pid || r.sn || r.manufacturer_issuer;
  const device = mic ? [
    el('div', { class: 'strong' }, d(r.model), ' ', el('span', { class: 'mono' }, d(r.mac))),
    (r.pid || r.sn) && el('div', { class: 'small' }, 'PID ', d(r.pid), ' · SN ', d(r.sn)),
    r.manufacturer_issuer && el('div', { class: 'small muted wrap' }, 'MIC issuer: ', d(r.manufacturer_issuer))
  ] : [el('div', { class: 'muted' }, 'No MIC'), r.identity && el('div', { class: 'small muted wrap' }, 'Signer: ', d(r.identity))];
  const sans = (Array.isArray(r.sans) ? r.sans : []).map((s) =>
    el('div', { class: 'small muted wrap' }, s && s.type === 'email' ? 'email: ' : 'DNS: ', d(s && s.value)));
  const status = [badge(r.status)];
  if (r.status === 'issued' && r.serial) {
    const sn = String(r.serial);
    status.push(el('div', { class: 'small' }, button('linkish view-cert mono', sn.length > 16 ? sn.slice(0, 16) + '…' : sn, { 'aria-label': 'Show certificate ' + clean(sn), data: { serial: sn } })));
  }
  if (r.waiting_for === 'upstream') {
    const ca = r.ca || {};
    status.push(el('div', { class: 'small wrap waiting-upstream' }, 'Waiting for the upstream CA',
      ca.reference ? [' (reference ', el('span', { class: 'mono' }, d(ca.reference)), ')'] : null));
    if (ca.last_error) status.push(el('div', { class: 'small warn-text wrap' }, 'Last attempt: ', d(ca.last_error)));
  } else if (r.waiting_for === 'administrator') {
    status.push(el('div', { class: 'small wrap waiting-admin' }, 'Waiting for an administrator'));
  }
  if (r.reason) status.push(el('div', { class: 'small muted wrap' }, d(r.reason)));
  if (r.renews) status.push(el('div', { class: 'small muted wrap' }, 'Renews ', el('span', { class: 'mono' }, d(r.renews))));
  if (r.identity_clash) status.push(el('div', { class: 'small warn-text wrap clash' }, '⚠ Identity clash: ', d(r.identity_clash)));
  let actions = null;
  if (r.status === 'pending' && r.waiting_for !== 'upstream') {
    const busy = !!S.req.acting[id];
    const off = !canApprove() || busy;
    const why = canApprove() ? null : 'Needs the approver role';
    const label = ` request ${id} for ${clean(r.common_name)}`;
    actions = el('div', { class: 'actions' },
      button('approve primary', busy ? 'Working…' : 'Approve', { disabled: off, title: why, 'aria-label': 'Approve' + label }),
      button('reject danger-outline', 'Reject', { disabled: off, title: why, 'aria-label': 'Reject' + label }));
  }
  const ts = isNum(r.created_at) ? r.created_at : null;
  return el('tr', { data: { requestId: id, status: r.status || '' } },
    el('td', { class: 'mono' }, String(id)),
    el('td', { class: 'device', title: r.identity || null }, device),
    el('td', { class: 'cn' }, el('div', { class: 'strong wrap' }, d(r.common_name)), sans),
    el('td', null, METHODS[r.method] || d(r.method), r.message_type && el('div', { class: 'small muted' }, d(r.message_type))),
    el('td', { class: 'mono peer' }, d(r.peer)),
    el('td', { class: 'age', data: ts ? { ts } : null, title: ts ? iso(ts) + ' UTC' : null }, ts ? ago(ts) : '—'),
    el('td', null, status),
    el('td', null, actions));
}

function updateAges(body) {
  for (const td of body.querySelectorAll('td.age[data-ts]')) td.textContent = ago(Number(td.dataset.ts));
}

// Keep the keyboard focus on the same button of the same row across a re-render.
function rememberFocus(body, key) {
  const a = document.activeElement;
  const tr = a && body.contains(a) ? a.closest('tr') : null;
  return tr ? { row: tr.dataset[key], cls: a.classList[0] } : null;
}
function restoreFocus(body, f, key, fallback) {
  if (!f) return;
  const row = findRow(body, key, f.row);
  const b = row && f.cls ? row.getElementsByClassName(f.cls)[0] : null;
  if (b && !b.disabled) b.focus(); else $(fallback).focus();
}
function findRow(body, key, value) {
  for (const tr of body.querySelectorAll('tr')) if (tr.dataset[key] === value) return tr; // no selector built from data
  return null;
}
const cnOf = (row) => { const b = row && row.querySelector('td.cn > div.strong > bdi'); return b ? b.textContent : ''; };

// A text search counts only so far past the page (total_exact false): "of 1000+".
function pager(prefix, offset, count, total, exact) {
  const of = exact === false ? `${total}+` : `${total}`;
  setText(prefix + '-range', count ? `${offset + 1}–${offset + count} of ${of}` : offset ? 'No more results' : total ? `0 of ${of}` : 'No results');
  $(prefix + '-prev').disabled = offset <= 0;
  $(prefix + '-next').disabled = offset + count >= total && exact !== false;
}
// Paging from the bottom of a long table: bring its top into view, keep the focus on the button.
const toTop = (page) => $('page-' + page).scrollIntoView({ block: 'start' });

async function approve(id) {
  const row = findRow($('req-body'), 'requestId', String(id));
  if (!row || !canApprove()) return;
  const cn = cnOf(row);
  S.req.acting[id] = true;
  S.req.key = null;
  row.querySelectorAll('button').forEach((b) => { b.disabled = true; });
  try {
    const res = await call(`/api/requests/${encodeURIComponent(id)}/approve`, { method: 'POST', body: {} });
    const serial = res && res.serial ? String(res.serial) : '(no serial in the answer)';
    flash('success', [`Request #${id} approved for `, el('bdi', null, cn), ': certificate ', el('code', null, serial), ' issued.']);
  } catch (e) {
    report(e, `Approving request #${id} failed`);
  } finally {
    delete S.req.acting[id];
    S.req.key = null;
    if (S.me) loadRequests();
  }
}

function dialogError(which, msg) {
  setText(which + '-error', msg || '');
  $(which + '-error').hidden = !msg;
}
function openReject(id) {
  const row = findRow($('req-body'), 'requestId', String(id));
  if (!row || !canApprove()) return;
  S.reject = { id, cn: cnOf(row) };
  setText('reject-id', '#' + id);
  setText('reject-cn', S.reject.cn);
  const input = $('reject-reason');
  input.value = '';
  input.removeAttribute('aria-invalid');
  dialogError('reject', '');
  $('reject-confirm').disabled = false;
  $('reject-dialog').showModal();
  input.focus();
}
async function submitReject(ev) {
  ev.preventDefault();
  const r = S.reject;
  const input = $('reject-reason');
  const btn = $('reject-confirm');
  if (!r || btn.disabled) return;
  const reason = input.value.trim();
  if (!reason) {
    input.setAttribute('aria-invalid', 'true');
    dialogError('reject', 'A reason is required: it is recorded in the audit log.');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  btn.disabled = true;
  dialogError('reject', '');
  try {
    await call(`/api/requests/${encodeURIComponent(r.id)}/reject`, { method: 'POST', body: { reason } });
    $('reject-dialog').close();
    flash('success', [`Request #${r.id} for `, el('bdi', null, r.cn), ' rejected.']);
  } catch (e) {
    if (e.handled) return;
    if (e.status === 409 || e.status === 404) { $('reject-dialog').close(); report(e, `Rejecting request #${r.id} failed`); } else dialogError('reject', e.message);
  } finally {
    btn.disabled = false;
    S.req.key = null;
    if (S.me) loadRequests();
  }
}

// ---------- certificates ----------
// Loads one table; an answer to an outdated request (a newer one was started) is dropped.
async function loadTable(st, bodyId, path, cols, what, render) {
  const seq = ++st.seq;
  const body = $(bodyId);
  const wrap = body.closest('.table-wrap');
  wrap.setAttribute('aria-busy', 'true');
  try {
    const data = (await call(path)) || {};
    if (seq === st.seq) render(body, Array.isArray(data.items) ? data.items : [], data);
  } catch (e) {
    if (seq !== st.seq) return;
    if (!e.handled) body.replaceChildren(emptyRow(cols, 'Could not load: ' + e.message));
    report(e, what);
  } finally {
    if (seq === st.seq) wrap.removeAttribute('aria-busy');
  }
}

function loadCerts() {
  const f = S.cert;
  const p = new URLSearchParams({ limit: f.limit, offset: f.offset });
  if (f.q) p.set('q', f.q);
  if (f.status !== 'all') p.set('status', f.status);
  if (f.expiring) p.set('expiring_within_days', '30');
  return loadTable(f, 'cert-body', '/api/certificates?' + p, 6, 'Loading certificates failed', (body, items, data) => {
    const focus = rememberFocus(body, 'serial');
    body.replaceChildren(...(items.length ? items.map(certRow) : [emptyRow(6, 'No certificates match.')]));
    restoreFocus(body, focus, 'serial', 'h-certificates');
    pager('cert', f.offset, items.length, isNum(data.total) ? data.total : items.length, data.total_exact);
  });
}

function certRow(c) {
  const soon = c.status === 'valid' && isNum(c.not_after) && daysLeft(c.not_after) < 30;
  const sub = [c.model && d(c.model), c.model && c.mac && ' · ', c.mac && el('span', { class: 'mono' }, d(c.mac))];
  const revoked = c.status === 'revoked' ? [
    el('div', null, d(c.revocation_reason_name || (isNum(c.revocation_reason) ? 'reason ' + c.revocation_reason : ''))),
    isNum(c.revoked_at) && c.revoked_at > 0 && el('div', { class: 'small muted' }, timeEl(c.revoked_at))
  ] : el('span', { class: 'muted' }, '—');
  const cn = clean(c.common_name);
  const actions = el('div', { class: 'actions' },
    button('download', 'Download PEM', { 'aria-label': 'Download PEM of ' + cn }),
    c.status === 'valid' && button('revoke danger-outline', 'Revoke', { disabled: !canApprove(), title: canApprove() ? null : 'Needs the approver role', 'aria-label': 'Revoke certificate of ' + cn }));
  return el('tr', { class: soon ? 'soon' : null, data: { serial: c.serial, status: c.status || '' } },
    el('td', { class: 'cn', title: c.subject || null }, el('div', { class: 'strong wrap' }, d(c.common_name)), (c.model || c.mac) && el('div', { class: 'small muted' }, sub)),
    el('td', { class: 'mono wrap serial' }, d(c.serial)),
    el('td', null, badge(c.status), c.superseded_by && el('div', { class: 'small muted wrap superseded' }, 'Superseded by ', el('span', { class: 'mono' }, d(c.superseded_by)))),
    el('td', null, timeEl(c.not_after, true), el('div', { class: 'small ' + (soon ? 'warn-text' : 'muted') }, soon ? '⚠ ' : '', expiryText(c.not_after))),
    el('td', null, revoked),
    el('td', null, actions));
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}
const pemName = (serial) => (String(serial).replace(/[^0-9A-Za-z]/g, '').slice(0, 80) || 'certificate') + '.pem';

async function downloadPem(serial, btn) {
  btn.disabled = true;
  try {
    const blob = await call(`/api/certificates/${encodeURIComponent(serial)}/pem`, { raw: true });
    saveBlob(new Blob([blob], { type: 'application/x-pem-file' }), pemName(serial));
    flash('info', ['Downloaded ', el('code', null, pemName(serial)), '.']);
  } catch (e) {
    report(e, `Downloading certificate ${serial} failed`);
  } finally {
    btn.disabled = false;
  }
}

// The RA keeps the one table of RFC 5280 reasons; the form is built from it once.
async function loadReasons() {
  if ($('revoke-reason').options.length) return;
  const data = (await call('/api/revocation-reasons')) || {};
  const items = (Array.isArray(data.items) ? data.items : []).filter((r) => r && typeof r.name === 'string' && isNum(r.code));
  if (!items.length) throw new ApiError(200, 'Unexpected /api/revocation-reasons answer.');
  $('revoke-reason').replaceChildren(...items.map((r) => el('option', { value: r.name }, `${r.name} (${r.code})`)));
}
async function openRevoke(serial) {
  const row = findRow($('cert-body'), 'serial', serial);
  if (!row || !canApprove()) return;
  const cn = cnOf(row);
  try { await loadReasons(); } catch (e) { report(e, 'Loading the revocation reasons failed'); return; }
  if (!S.me || dialogOpen()) return;
  S.revoke = { serial, cn };
  setText('revoke-cn', S.revoke.cn);
  setText('revoke-serial', serial);
  $('revoke-reason').value = 'unspecified';
  dialogError('revoke', '');
  $('revoke-confirm').disabled = false;
  $('revoke-dialog').showModal();
  $('revoke-reason').focus();
}
async function submitRevoke(ev) {
  ev.preventDefault();
  const c = S.revoke;
  const btn = $('revoke-confirm');
  if (!c || btn.disabled) return;
  const reason = $('revoke-reason').value;
  btn.disabled = true;
  dialogError('revoke', '');
  try {
    await call(`/api/certificates/${encodeURIComponent(c.serial)}/revoke`, { method: 'POST', body: { reason } });
    $('revoke-dialog').close();
    flash('success', ['Certificate ', el('code', null, c.serial), ' of ', el('bdi', null, c.cn), ` revoked (${reason}).`]);
  } catch (e) {
    if (e.handled) return;
    if (e.status === 409 || e.status === 404) { $('revoke-dialog').close(); report(e, `Revoking ${c.serial} failed`); } else dialogError('revoke', e.message);
  } finally {
    btn.disabled = false;
    if (S.me) loadCerts();
  }
}

// ---------- audit ----------
async function loadAudit() {
  const a = S.audit;
  const p = new URLSearchParams({ limit: '100' });
  if (a.before !== null) p.set('before', a.before);
  $('audit-older').disabled = true;
  await loadTable(a, 'audit-body', '/api/audit?' + p, 10, 'Loading the audit log failed', (body, items, data) => {
    const nb = data.next_before;
    a.next = isNum(nb) || (typeof nb === 'string' && nb) ? nb : null;
    body.replaceChildren(...(items.length ? items.map(auditRow) : [emptyRow(10, 'No audit events.')]));
    setText('audit-range', items.length ? (a.before === null ? 'Newest ' : `Page ${a.stack.length + 1}: `) + plural(items.length, 'event', 'events') : '');
  });
  $('audit-newer').disabled = a.before === null;
  $('audit-older').disabled = a.next === null;
}

function auditRow(ev) {
  const oc = String(ev.outcome || '');
  return el('tr', { data: { eventId: ev.id } },
    el('td', { class: 'nowrap' }, timeEl(ev.at)),
    el('td', { class: 'actor' }, d(ev.actor)),
    el('td', null, d(ev.action)),
    el('td', null, badge(oc, 'oc-' + oc.replace(/[^a-z]/g, ''))),
    el('td', null, d(ev.method)),
    el('td', { class: 'wrap small ident' }, d(ev.identity)),
    el('td', { class: 'wrap small reason' }, d(ev.reason)),
    el('td', { class: 'mono', title: ev.transaction_id ? 'transactionID ' + ev.transaction_id : null }, ev.request_id == null ? d('') : '#' + ev.request_id),
    el('td', { class: 'mono wrap small serial' }, d(ev.serial)),
    el('td', { class: 'mono peer' }, d(ev.peer)));
}

// ---------- CA ----------
async function loadCa() {
  const seq = ++S.ca.seq;
  try {
    const ca = (await call('/api/ca')) || {};
    if (seq !== S.ca.seq) return;
    $('ca-cards').replaceChildren(
      ...(ca.ca ? [certCard('ca', 'Certificate authority', ca.ca)] : []),
      ...(ca.ra ? [certCard('ra', 'Registration authority (SCEP signer)', ca.ra)] : []),
      ...(ca.upstream ? [upstreamCard(ca.upstream)] : []),
      crlCard(ca.crl || {}), scepCard(ca));
  } catch (e) {
    if (seq === S.ca.seq) report(e, 'Loading the CA overview failed');
  }
}

function kv(rows) {
  const dl = el('dl', { class: 'kv' });
  for (const [k, v, id, cls] of rows) dl.append(el('dt', null, k), el('dd', { id, class: cls }, v));
  return dl;
}

function certCard(p, title, c) {
  const fps = c.fingerprints || {};
  const P = p.toUpperCase();
  const rows = DIGESTS.map(([alg, name]) => {
    const v = typeof fps[alg] === 'string' ? fps[alg].replace(/[^0-9a-fA-F]/g, '').toUpperCase() : '';
    const id = `fp-${p}-${alg}`;
    return el('tr', null,
      el('th', { scope: 'row' }, name),
      el('td', null, el('code', { id, class: 'fp' }, v || '—')),
      el('td', null, v && button('copy', 'Copy', { id: 'copy-' + id, data: { copy: id, label: `${P} ${name} fingerprint` }, 'aria-label': `Copy ${P} ${name} fingerprint` })));
  });
  const expiry = isNum(c.not_after) && el('span', { class: 'small ' + (daysLeft(c.not_after) < 30 ? 'warn-text' : 'muted') }, ` (${expiryText(c.not_after)})`);
  return el('section', { class: 'card', 'aria-labelledby': p + '-title' },
    el('h2', { id: p + '-title' }, title),
    kv([
      ['Subject', d(c.subject, 'wrap'), p + '-subject'],
      ['Issuer', d(c.issuer, 'wrap'), p + '-issuer'],
      ['Serial', d(c.serial), p + '-serial', 'mono wrap'],
      ['Valid from', timeEl(c.not_before), p + '-not-before'],
      ['Valid until', [timeEl(c.not_after), expiry], p + '-not-after'],
      ['Key', d(c.key), p + '-key']
    ]),
    el('table', { class: 'fps' }, el('caption', null, 'Fingerprints'), el('tbody', null, rows)));
}

function upstreamCard(up) {
  const state = up.reachable ? badge('reachable', 'st-issued') : badge('unreachable', 'st-revoked');
  return el('section', { class: 'card', 'aria-labelledby': 'upstream-title' },
    el('h2', { id: 'upstream-title' }, 'Upstream CA'),
    kv([
      ['URL', el('code', null, d(up.url)), 'upstream-url', 'wrap'],
      ['Pinned', el('code', { class: 'fp' }, d(up.ca_fingerprint)), 'upstream-pin', 'wrap'],
      ['Root', d(up.root && up.root.subject, 'wrap'), 'upstream-root'],
      ['Health', [state, up.last_error ? el('div', { class: 'small warn-text wrap' }, d(up.last_error)) : null], 'upstream-health'],
      ['Last answer', timeEl(up.last_contact), 'upstream-last-contact'],
      ['Requests at the CA', isNum(up.requests_at_ca) ? String(up.requests_at_ca) : d(''), 'upstream-requests']
    ]),
    el('p', { class: 'small muted' }, d(up.revocation)));
}

function crlCard(crl) {
  const overdue = isNum(crl.next_update) && crl.next_update < now();
  return el('section', { class: 'card', 'aria-labelledby': 'crl-title' },
    el('h2', { id: 'crl-title' }, 'CRL'),
    kv([
      ['This update', timeEl(crl.this_update), 'crl-this-update'],
      ['Next update', [timeEl(crl.next_update), overdue && [' ', badge('overdue', 'st-revoked')]], 'crl-next-update'],
      ['Revoked', isNum(crl.revoked) ? plural(crl.revoked, 'certificate', 'certificates') : d(''), 'crl-revoked']
    ]));
}

function scepCard(ca) {
  const paths = Array.isArray(ca.scep_paths) ? ca.scep_paths : [];
  return el('section', { class: 'card', 'aria-labelledby': 'scep-title' },
    el('h2', { id: 'scep-title' }, 'SCEP listener'),
    kv([
      ['Listen', el('code', null, d(ca.scep_listen)), 'scep-listen'],
      ['Paths', paths.length ? el('ul', { class: 'plain' }, paths.map((x) => el('li', null, el('code', null, d(x))))) : d(''), 'scep-paths']
    ]),
    el('p', { class: 'small muted' }, 'Plain HTTP, as the phones require. The CRL is at /crl.'));
}

async function copy(btn) {
  const src = $(btn.dataset.copy);
  if (!src) return;
  try {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error('no async clipboard');
    await navigator.clipboard.writeText(src.textContent);
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents(src);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    if (!ok) { flash('info', 'The fingerprint is selected: press Ctrl+C (⌘C) to copy it.'); return; }
  }
  btn.textContent = 'Copied';
  btn.classList.add('done');
  flash('success', btn.dataset.label + ' copied to the clipboard.');
  setTimeout(() => { btn.textContent = 'Copy'; btn.classList.remove('done'); }, 2000);
}

// ---------- wiring ----------
function on(id, ev, fn) { $(id).addEventListener(ev, fn); }
function submitTo(id, fn) { on(id, 'submit', (ev) => { ev.preventDefault(); fn(); }); }
function tableClick(id, fn) {
  on(id, 'click', (ev) => {
    const b = ev.target.closest('button');
    const tr = b && b.closest('tr');
    if (b && !b.disabled && tr) fn(b, tr);
  });
}

function wire() {
  on('login-form', 'submit', signInWithToken);
  on('cert-login-button', 'click', signInWithCert);
  on('logout', 'click', () => signOut(true));
  on('flash-dismiss', 'click', () => { clearFlash(); $('main').focus(); });
  on('skip-link', 'click', (ev) => { ev.preventDefault(); $(S.me ? 'main' : 'token').focus(); });
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && S.me && Date.now() - S.lastPoll >= POLL_MS) { clearTimeout(S.timer); tick(); }
  });

  // Requests
  const f = S.req;
  const applyReq = () => {
    f.status = $('req-status').value in STATUS_TITLES ? $('req-status').value : 'pending';
    f.q = $('req-search').value.trim();
    f.mac = $('req-mac').value.trim();
    f.offset = 0;
    f.key = null;
    loadRequests();
  };
  submitTo('req-filters', applyReq);
  on('req-status', 'change', applyReq);
  const typedReq = debounce(() => {
    if ($('req-search').value.trim() !== f.q || $('req-mac').value.trim() !== f.mac) applyReq();
  }, 350);
  on('req-search', 'input', typedReq);
  on('req-mac', 'input', typedReq);
  on('req-refresh', 'click', () => { f.key = null; loadRequests(); });
  on('req-prev', 'click', () => { f.offset = Math.max(0, f.offset - f.limit); f.key = null; toTop('pending'); loadRequests(); });
  on('req-next', 'click', () => { f.offset += f.limit; f.key = null; toTop('pending'); loadRequests(); });
  tableClick('req-body', (b, tr) => {
    const id = Number(tr.dataset.requestId);
    if (b.classList.contains('view-cert')) {
      Object.assign(S.cert, { q: b.dataset.serial, status: 'all', offset: 0 });
      $('cert-search').value = b.dataset.serial;
      $('cert-status').value = 'all';
      location.hash = '#/certificates';
    } else if (Number.isSafeInteger(id) && b.classList.contains('approve')) approve(id);
    else if (Number.isSafeInteger(id) && b.classList.contains('reject')) openReject(id);
  });
  on('reject-form', 'submit', submitReject);
  on('reject-cancel', 'click', () => $('reject-dialog').close());
  on('reject-reason', 'input', () => {
    if ($('reject-reason').value.trim()) { $('reject-reason').removeAttribute('aria-invalid'); dialogError('reject', ''); }
  });

  // Certificates
  const c = S.cert;
  const applyCert = () => {
    Object.assign(c, { q: $('cert-search').value.trim(), status: $('cert-status').value, expiring: $('cert-expiring').checked, limit: Number($('cert-limit').value) || 50, offset: 0 });
    loadCerts();
  };
  submitTo('cert-filters', applyCert);
  // Typing searches by itself; a search already made by Enter or the button is not run twice.
  on('cert-search', 'input', debounce(() => { if ($('cert-search').value.trim() !== c.q) applyCert(); }, 350));
  for (const id of ['cert-status', 'cert-limit', 'cert-expiring']) on(id, 'change', applyCert);
  on('cert-refresh', 'click', () => loadCerts());
  on('cert-prev', 'click', () => { c.offset = Math.max(0, c.offset - c.limit); toTop('certificates'); loadCerts(); });
  on('cert-next', 'click', () => { c.offset += c.limit; toTop('certificates'); loadCerts(); });
  tableClick('cert-body', (b, tr) => {
    const serial = tr.dataset.serial;
    if (!serial) return;
    if (b.classList.contains('download')) downloadPem(serial, b);
    else if (b.classList.contains('revoke')) openRevoke(serial);
  });
  on('revoke-form', 'submit', submitRevoke);
  on('revoke-cancel', 'click', () => $('revoke-dialog').close());

  // Audit
  const a = S.audit;
  on('audit-newest', 'click', () => { a.before = null; a.stack = []; loadAudit(); });
  on('audit-older', 'click', () => { if (a.next === null) return; a.stack.push(a.before); a.before = a.next; toTop('audit'); loadAudit(); });
  on('audit-newer', 'click', () => { a.before = a.stack.length ? a.stack.pop() : null; toTop('audit'); loadAudit(); });

  // CA
  on('ca-refresh', 'click', () => loadCa());
  on('ca-cards', 'click', (ev) => { const b = ev.target.closest('button.copy'); if (b) copy(b); });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot); else boot();
})();
