#!/usr/bin/env node
// Tiny web view of the mail caught by the stack's SMTP sink (aiosmtpd's
// Mailbox handler writes one Maildir file per message into DIR/mail/new/).
// Dependency-free on purpose: it is a developer convenience for `make run`,
// not something worth a package (and its supply chain).
//
//   node scripts/mail-view.js --port 1080 --maildir DIR/mail [--address 127.0.0.1] [--pid-file F]
//
//   GET /                 list, newest first: date, from, to, subject
//   GET /m/<name>         one message, raw, as text/plain
//   GET /messages.json    the list as JSON (handy in tests and scripts)
//
// Every value from a message is untrusted (mail content is written by the
// app from user input): it is HTML-escaped, the page loads no script, and the
// CSP forbids everything but our own stylesheet.

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

function usage(msg) {
  process.stderr.write(`mail-view.js: ${msg}\n`);
  process.exit(2);
}

const opts = { address: '127.0.0.1' };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (v === undefined) usage(`${k} needs a value`);
    if (k === '--port') opts.port = Number(v);
    else if (k === '--maildir') opts.maildir = v;
    else if (k === '--address') opts.address = v;
    else if (k === '--pid-file') opts.pidFile = v;
    else usage(`unknown argument ${k}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) usage('--port must be 1-65535');
  if (!opts.maildir) usage('missing --maildir');
}

const MAX_HEADER_BYTES = 64 * 1024; // headers are read from the start of each file only
const NAME_RE = /^[A-Za-z0-9._,:=+-]{1,255}$/; // Maildir unique names (with :2,flags in cur/)

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// RFC 2047 encoded words (=?utf-8?B?...?= / =?utf-8?Q?...?=), enough to show
// non-ASCII subjects and names readably.  Unknown charsets are left encoded.
function decodeWords(v) {
  return v.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=(\s+(?==\?))?/g, (m, cs, enc, text) => {
    const charset = cs.toLowerCase().replace(/\*.*$/, '');
    if (!['utf-8', 'utf8', 'us-ascii', 'iso-8859-1', 'latin1'].includes(charset)) return m;
    let buf;
    if (enc.toUpperCase() === 'B') {
      buf = Buffer.from(text, 'base64');
    } else {
      buf = Buffer.from(
        text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (x, h) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      );
    }
    return buf.toString(charset.startsWith('utf') ? 'utf8' : 'latin1');
  });
}

function parseHeaders(text) {
  const end = text.search(/\r?\n\r?\n/);
  const head = (end >= 0 ? text.slice(0, end) : text).replace(/\r?\n[ \t]+/g, ' ');
  const h = {};
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    if (!(k in h)) h[k] = decodeWords(line.slice(i + 1).trim());
  }
  return h;
}

function readHead(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_HEADER_BYTES);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

// All messages in new/ and cur/, newest first (by the Date header, falling
// back to the file's mtime).
function listMessages() {
  const out = [];
  for (const sub of ['new', 'cur']) {
    const dir = path.join(opts.maildir, sub);
    let names = [];
    try {
      names = fs.readdirSync(dir);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    for (const name of names) {
      if (!NAME_RE.test(name)) continue;
      const file = path.join(dir, name);
      let st;
      try {
        st = fs.statSync(file);
        if (!st.isFile()) continue;
        const h = parseHeaders(readHead(file));
        const d = new Date(h.date || st.mtime);
        out.push({
          id: name,
          date: isNaN(d) ? st.mtime.toISOString() : d.toISOString(),
          from: h.from || '',
          to: h.to || h['x-rcptto'] || '',
          subject: h.subject || '',
          size: st.size,
          mtime: st.mtimeMs,
        });
      } catch (e) {
        continue; // a message removed while we looked: skip it
      }
    }
  }
  out.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : b.mtime - a.mtime));
  return out;
}

// Finds a message by the name the list produced; the name is matched
// against the directory listing, never joined into a path as given.
function findMessage(name) {
  if (!NAME_RE.test(name)) return null;
  for (const sub of ['new', 'cur']) {
    const dir = path.join(opts.maildir, sub);
    try {
      if (fs.readdirSync(dir).includes(name)) return path.join(dir, name);
    } catch (e) {
      /* missing dir */
    }
  }
  return null;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#111827}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f3f4f6}td.date{white-space:nowrap;color:#4b5563}a{color:#4f46e5}`;

const BASE_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

function send(res, status, type, body) {
  res.writeHead(status, { ...BASE_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function page(msgs) {
  const rows = msgs.map((m) => `<tr><td class="date">${escapeHtml(m.date.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</td>` +
    `<td>${escapeHtml(m.from)}</td><td>${escapeHtml(m.to)}</td>` +
    `<td><a href="/m/${encodeURIComponent(m.id)}">${escapeHtml(m.subject || '(no subject)')}</a></td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Atrium mail (${msgs.length})</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>Atrium mail sink</h1>
<p>${msgs.length} message(s) in ${escapeHtml(opts.maildir)}, newest first.</p>
<table><thead><tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr></thead>
<tbody>
${rows}
</tbody></table></body></html>
`;
}

const server = http.createServer((req, res) => {
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/') return send(res, 200, 'text/html; charset=utf-8', page(listMessages()));
    if (url.pathname === '/style.css') return send(res, 200, 'text/css; charset=utf-8', CSS);
    if (url.pathname === '/messages.json') {
      const list = listMessages().map(({ mtime, ...m }) => m);
      return send(res, 200, 'application/json', JSON.stringify(list));
    }
    const m = /^\/m\/([^/]+)$/.exec(url.pathname);
    if (m) {
      let name;
      try {
        name = decodeURIComponent(m[1]);
      } catch (e) {
        return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      }
      const file = findMessage(name);
      if (!file) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return send(res, 200, 'text/plain; charset=utf-8', fs.readFileSync(file));
    }
    return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  } catch (e) {
    process.stderr.write(`mail-view.js: ${e.stack || e}\n`);
    return send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
  }
});

server.on('error', (e) => {
  process.stderr.write(`mail-view.js: ${e.message}\n`);
  process.exit(1);
});
server.listen(opts.port, opts.address, () => {
  if (opts.pidFile) fs.writeFileSync(opts.pidFile, `${process.pid}\n`);
  console.log(`mail-view: http://${opts.address}:${opts.port}/ showing ${opts.maildir}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
