#!/usr/bin/env node
// Local S3-compatible store for the Atrium dev/test stack.
//
// Wraps npm @20minutes/s3rver 4.0.4 (pinned: it verifies SigV4 signatures and
// presigned-URL expiry; s3rver 3.x accepts anything, and 5.x needs Node 24).
// s3rver has no CLI in this version, so scripts/stack starts this file:
//
//   node scripts/s3-server.js --port 9000 --directory DIR/s3 --bucket atrium \
//     --access-key-file DIR/secrets/s3_access_key_id \
//     --secret-key-file DIR/secrets/s3_secret_access_key \
//     --cors-origin 'https://*.portal.localhost:8443' [--cors-origin ...] \
//     [--pid-file FILE]
//
// Credentials: s3rver keeps its accounts in an in-process registry
// (lib/models/account.js) whose only entry is the hard-coded pair
// S3RVER/S3RVER.  The registry is a plain exported object, so we register the
// stack's generated key pair on the same dummy account and revoke S3RVER:
// only the keys from DIR/secrets (also written to DIR/atrium.env) sign valid
// requests.
//
// Anonymous requests: s3rver serves requests that carry no signature at all
// (as if every bucket were public).  Real R2/S3 buckets used by Atrium are
// private, and the tests must be able to see that a URL stripped of its
// signature is refused, so this wrapper answers 403 AccessDenied to any
// request other than a CORS preflight that carries neither an Authorization
// header nor X-Amz-Algorithm / Signature query parameters.

//
// Query canonicalization: s3rver builds the SigV4 canonical query string with
// JavaScript's encodeURIComponent, which leaves ! ' ( ) * unencoded.  AWS S3
// and R2 encode them (RFC 3986, as SigV4 specifies), and Atrium's presigned
// downloads carry response-content-disposition=attachment; filename*=UTF-8''...
// whose ' and * would then never verify.  encodeURIComponent is looked up as
// a global at call time, so this process makes it RFC 3986-strict: the
// emulator then checks signatures exactly as S3 does.

'use strict';

{
  const loose = globalThis.encodeURIComponent;
  globalThis.encodeURIComponent = (s) =>
    loose(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

const fs = require('fs');
const http = require('http');
const path = require('path');

const S3rver = require('@20minutes/s3rver');
const AWSAccount = require('@20minutes/s3rver/lib/models/account');

function usage(msg) {
  process.stderr.write(`s3-server.js: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { address: '127.0.0.1', corsOrigins: [] };
  const takes = new Set([
    '--port', '--address', '--directory', '--bucket', '--access-key-file',
    '--secret-key-file', '--cors-origin', '--pid-file',
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!takes.has(a)) usage(`unknown argument ${a}`);
    const v = argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    switch (a) {
      case '--port': opts.port = Number(v); break;
      case '--address': opts.address = v; break;
      case '--directory': opts.directory = v; break;
      case '--bucket': opts.bucket = v; break;
      case '--access-key-file': opts.accessKeyFile = v; break;
      case '--secret-key-file': opts.secretKeyFile = v; break;
      case '--cors-origin': opts.corsOrigins.push(v); break;
      case '--pid-file': opts.pidFile = v; break;
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) usage('--port must be 1-65535');
  for (const k of ['directory', 'bucket', 'accessKeyFile', 'secretKeyFile']) {
    if (!opts[k]) usage(`missing --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  }
  if (opts.corsOrigins.length === 0) usage('at least one --cors-origin is needed');
  return opts;
}

function readSecret(file) {
  const v = fs.readFileSync(file, 'utf8').trim();
  if (!v) usage(`${file} is empty`);
  return v;
}

function xmlEscape(s) {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}

// CORS for the browser's direct uploads (presigned PUT) and downloads
// (presigned GET): only the portal origins, only the methods the portal uses.
function corsXml(origins) {
  const originXml = origins.map((o) => `    <AllowedOrigin>${xmlEscape(o)}</AllowedOrigin>`).join('\n');
  return `<CORSConfiguration>
  <CORSRule>
${originXml}
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>HEAD</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedHeader>*</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader>
    <MaxAgeSeconds>600</MaxAgeSeconds>
  </CORSRule>
</CORSConfiguration>`;
}

function isSigned(req) {
  if (req.headers.authorization) return true;
  const q = new URL(req.url, 'http://x').searchParams;
  return q.has('X-Amz-Algorithm') || q.has('Signature');
}

function accessDenied(res) {
  const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>' +
    '<Message>Anonymous access is disabled on this store: sign the request.</Message></Error>';
  res.writeHead(403, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const accessKeyId = readSecret(opts.accessKeyFile);
  const secretAccessKey = readSecret(opts.secretKeyFile);

  AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);
  if (accessKeyId !== 'S3RVER') AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');

  fs.mkdirSync(opts.directory, { recursive: true });
  const s3 = new S3rver({
    directory: path.resolve(opts.directory),
    // Path-style URLs only (http://127.0.0.1:PORT/bucket/key), like the
    // store_path_style default in tenant_branding.
    vhostBuckets: false,
    silent: false,
    configureBuckets: [{ name: opts.bucket, configs: [corsXml(opts.corsOrigins)] }],
  });
  await s3.configureBuckets();

  const handler = s3.callback();
  const server = http.createServer((req, res) => {
    if (req.method !== 'OPTIONS' && !isSigned(req)) return accessDenied(res);
    return handler(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, resolve);
  });
  if (opts.pidFile) fs.writeFileSync(opts.pidFile, `${process.pid}\n`);
  console.log(`s3-server: listening on http://${opts.address}:${opts.port}, bucket ${opts.bucket}, ` +
    `data in ${opts.directory}, CORS origins ${opts.corsOrigins.join(' ')}`);

  const stop = (sig) => {
    console.log(`s3-server: ${sig}, shutting down`);
    server.close(() => process.exit(0));
    // Keep-alive connections would hold close() open: do not wait forever.
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`s3-server.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
