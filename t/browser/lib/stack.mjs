// The running stack as the browser tests see it: its settings (the stack
// directory's atrium.env, read through bash like t/lib/Atrium/Test.pm does),
// new tenants through `scripts/atrium tenant create --json`, the team and
// client API over HTTPS to 127.0.0.1 with the tenant's name in SNI and Host,
// and mail from the SMTP catcher's Maildir.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

let ENVF = null;

// A setting of the running stack (undefined when unset).
export function envOf(key) {
  if (!ENVF) {
    const dir = process.env.ATRIUM_STACK_DIR || path.join(REPO, 'var');
    const file = path.join(dir, 'atrium.env');
    try {
      statSync(file);
    } catch {
      throw new Error(`no running stack: ${file} missing (run make test, or scripts/stack up)`);
    }
    const out = execFileSync('bash', ['-c', 'set -a; . "$1"; env -0', '_', file], { encoding: 'utf8' });
    ENVF = {};
    for (const kv of out.split('\0')) {
      const i = kv.indexOf('=');
      if (i > 0 && /^(ATRIUM_|PG)/.test(kv)) ENVF[kv.slice(0, i)] = kv.slice(i + 1);
    }
  }
  return ENVF[key];
}

export const stackDir = () => envOf('ATRIUM_STACK_DIR') || process.env.ATRIUM_STACK_DIR;
export const httpsPort = () => Number(envOf('ATRIUM_HTTPS_PORT'));
// the port in links and browser URLs (the stack's public port, else its HTTPS port)
export const publicPort = () => Number(envOf('ATRIUM_PUBLIC_PORT') || envOf('ATRIUM_HTTPS_PORT'));
export const baseDomain = () => envOf('ATRIUM_BASE_DOMAIN');

// The browser URL of a path on a tenant's host.
export function origin(t) {
  const port = publicPort();
  return `https://${t.host}${port === 443 ? '' : ':' + port}`;
}
export const urlOf = (t, p = '/') => origin(t) + p;

let seq = 0;
export function randomCode(prefix = 'b') {
  return `${prefix}${process.pid}${++seq}${crypto.randomBytes(2).toString('hex')}`;
}

// A new tenant with its own host under the base domain and a console API key:
// {tenant_id, code, host, api_key}.
export function newTenant({ code, name, prefix = 'br' } = {}) {
  code = code || randomCode(prefix);
  const host = `${code}.${baseDomain()}`;
  const args = ['tenant', 'create', code, '--host', host, '--json'];
  if (name) args.push('--name', name);
  let out;
  try {
    out = execFileSync(path.join(REPO, 'scripts/atrium'), args, {
      encoding: 'utf8',
      env: { ...process.env, ATRIUM_STACK_DIR: stackDir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    throw new Error(`tenant create failed: ${e.stderr || e.message}`);
  }
  const line = out.split('\n').find((l) => l.startsWith('{'));
  const t = JSON.parse(line);
  t.host = t.host || host;
  return t;
}

// ------------------------------------------------------------------ HTTP

const agent = new https.Agent({ keepAlive: true, rejectUnauthorized: false, maxSockets: 8 });

// api(t|host, METHOD, PATH, {json, headers, body, base}) -> {status, headers, json, text}
// Connects to 127.0.0.1 while SNI and Host carry the tenant's name.
export function api(t, method, p, o = {}) {
  const host = typeof t === 'string' ? t : t.host;
  const base = o.base ?? '/api/portal/v1';
  const headers = { ...(o.headers || {}) };
  let body = null;
  if (o.json !== undefined) {
    body = Buffer.from(JSON.stringify(o.json));
    headers['content-type'] ??= 'application/json';
  } else if (o.body !== undefined) {
    body = Buffer.isBuffer(o.body) ? o.body : Buffer.from(o.body);
  }
  if (body) headers['content-length'] = body.length;
  headers.host = `${host}:${httpsPort()}`;
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: httpsPort(), servername: host, method, path: base + p, headers, agent, timeout: 20000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          if (/^application\/(problem\+)?json/.test(res.headers['content-type'] || '') && text.length) {
            try { json = JSON.parse(text); } catch { /* not JSON after all */ }
          }
          resolve({ status: res.statusCode, headers: res.headers, json, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: timeout`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

// The team API with the tenant's console credentials.
export function teamApi(t, method, p, o = {}) {
  return api(t, method, p, {
    ...o,
    headers: { 'x-api-key': t.api_key, 'x-client-code': t.code, ...(o.headers || {}) },
  });
}

// The same, failing unless the answer has the expected status.
export async function team(t, method, p, json, want = [200, 201, 204]) {
  const r = await teamApi(t, method, p, json === undefined ? {} : { json });
  if (!want.includes(r.status)) throw new Error(`team ${method} ${p}: ${r.status} ${r.text}`);
  return r.json;
}

// The client API with a Bearer token; nginx's rate_limited answers are retried.
export async function clientApi(t, token, method, p, o = {}) {
  let r;
  for (let i = 1; i <= 40; i++) {
    r = await api(t, method, p, { ...o, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(o.headers || {}) } });
    if (!(r.status === 429 && r.json && r.json.code === 'rate_limited')) break;
    await sleep(250 * Math.min(i, 8));
  }
  return r;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(secs, cb, every = 100) {
  const end = Date.now() + secs * 1000;
  for (;;) {
    const v = await cb();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await sleep(every);
  }
}

let pw = 0;
// a password that passes the rules (length, zxcvbn score)
export function strongPassword() {
  return `Atrium-orchid-${++pw}-${crypto.randomBytes(6).toString('hex')}`;
}
export const randomEmail = (tag = 'c') => `${randomCode(tag)}@client.example`.toLowerCase();

export const newClient = (t, { email, name, company } = {}) =>
  team(t, 'POST', '/team/clients', { email: email || randomEmail(), name: name || `Client ${randomCode('n')}`, ...(company ? { company } : {}) });
export const newProject = (t, { name, description } = {}) =>
  team(t, 'POST', '/team/projects', { name: name || `Project ${randomCode('p')}`, ...(description ? { description } : {}) });

// POST /team/clients/{id}/invite -> {invite_id, expires_at, invite_url?}
export const invite = (t, clientId, body = {}) => team(t, 'POST', `/team/clients/${clientId}/invite`, body, [201]);

export function tokenOf(url) {
  const m = /#token=([A-Za-z0-9_-]+)$/.exec(url || '');
  return m ? m[1] : undefined;
}

// A client who accepted a link invite through the API:
// {id, email, name, password, access}.
export async function onboard(t, { projectIds, ...o } = {}) {
  const c = await newClient(t, o);
  const inv = await invite(t, c.id, { delivery: 'link', ...(projectIds ? { project_ids: projectIds } : {}) });
  const password = o.password || strongPassword();
  const r = await clientApi(t, null, 'POST', '/auth/invite/accept', { json: { token: tokenOf(inv.invite_url), password } });
  if (r.status !== 200) throw new Error(`invite accept: ${r.status} ${r.text}`);
  return { ...c, password, access: r.json.access_token };
}

// ------------------------------------------------------------------ mail

function decodeQP(s) {
  const bytes = [];
  const src = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < src.length; i++) {
    if (src[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(src.slice(i + 1, i + 3))) {
      bytes.push(parseInt(src.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(src[i], 'latin1'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function splitHead(msg) {
  const m = /\r?\n\r?\n/.exec(msg);
  const head = (m ? msg.slice(0, m.index) : msg).replace(/\r?\n[ \t]+/g, ' ');
  return [head, m ? msg.slice(m.index + m[0].length) : ''];
}

// The decoded text/plain part of a message (the whole body when not multipart).
export function mailText(msg) {
  const [head, body] = splitHead(msg);
  const ct = (/^Content-Type:\s*(.*)$/im.exec(head) || [])[1] || 'text/plain';
  const b = /boundary="?([^";]+)"?/i.exec(ct);
  if (/^multipart\//i.test(ct) && b) {
    const parts = ('\n' + body).split(new RegExp(`\\r?\\n--${b[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`));
    let alt;
    for (const p of parts) {
      if (!/\S/.test(p)) continue;
      const text = mailText(p);
      const [ph] = splitHead(p);
      if (text && /^Content-Type:\s*(text\/plain|multipart\/)/im.test(ph) && /\S/.test(text)) return text;
      alt ??= text;
    }
    return alt;
  }
  const cte = ((/^Content-Transfer-Encoding:\s*(\S+)/im.exec(head) || [])[1] || '').toLowerCase();
  if (cte === 'quoted-printable') return decodeQP(body);
  if (cte === 'base64') return Buffer.from(body, 'base64').toString('utf8');
  return body;
}

const usedMail = new Set();
// file -> {mtime, head}: a Maildir file is complete once it is in new/ (the
// catcher writes to tmp/ and renames), so each is read once however long
// the Maildir grows during `make test`
const mailHeads = new Map();

function mailFiles(dir) {
  const out = [];
  for (const sub of ['new', 'cur']) {
    let names = [];
    try { names = readdirSync(path.join(dir, sub)); } catch { /* not there yet */ }
    for (const n of names) {
      const f = path.join(dir, sub, n);
      if (usedMail.has(f)) continue;
      let m = mailHeads.get(f);
      if (!m) {
        try {
          const raw = readFileSync(f, 'latin1');
          m = { mtime: statSync(f).mtimeMs, head: splitHead(raw)[0] };
        } catch { continue; } // moved from new/ to cur/ meanwhile
        mailHeads.set(f, m);
      }
      out.push([f, m]);
    }
  }
  return out.sort((a, b) => a[1].mtime - b[1].mtime || a[0].localeCompare(b[0]));
}

// The text of the oldest unused message in the catcher addressed to
// `address` whose text matches `match`, waiting up to `secs`:
// {file, raw, text} or undefined.
export async function mailFor(address, { secs = 15, match } = {}) {
  const dir = envOf('ATRIUM_MAILDIR');
  if (!dir) throw new Error('ATRIUM_MAILDIR is not set in the stack');
  const esc = address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const to = new RegExp(`^(?:To|X-RcptTo|Delivered-To|X-Original-To):.*${esc}`, 'mi');
  return waitUntil(secs, () => {
    for (const [f, m] of mailFiles(dir)) {
      if (!to.test(m.head)) continue;
      let raw;
      try { raw = readFileSync(f, 'latin1'); } catch { continue; }
      const text = mailText(raw) || '';
      if (match && !match.test(text)) continue;
      usedMail.add(f);
      return { file: f, raw, text };
    }
    return undefined;
  }, 200);
}

// A tiny HTTP GET (the object store is plain HTTP on loopback).
export function httpGet(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}
