// Debian's Chromium through playwright-core: one browser per run, a fresh
// context per scenario that records every console error, uncaught page
// error, CSP violation and request to a host outside the stack, screenshots
// under $ATRIUM_STACK_DIR/screenshots/, and axe-core scans.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, existsSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { REPO, envOf, stackDir, baseDomain } from './stack.mjs';

export const CHROMIUM = process.env.ATRIUM_CHROMIUM || '/usr/lib/chromium/chromium';
const AXE = path.join(REPO, 'node_modules/axe-core/axe.min.js');

let shotDir;
// $ATRIUM_STACK_DIR/screenshots (or $ATRIUM_SCREENSHOT_DIR); the first call
// of a run removes the previous run's PNGs, so the directory shows one run.
export function screenshotDir() {
  if (!shotDir) {
    shotDir = process.env.ATRIUM_SCREENSHOT_DIR || path.join(stackDir(), 'screenshots');
    mkdirSync(shotDir, { recursive: true });
    for (const f of readdirSync(shotDir)) if (/^\d+-.*\.png$/.test(f)) unlinkSync(path.join(shotDir, f));
  }
  return shotDir;
}

export function preflight() {
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (apt-get install chromium)`);
  if (!existsSync(AXE)) missing.push(`${AXE} (npm ci)`);
  return missing;
}

export async function launch() {
  const listen = envOf('ATRIUM_LISTEN_ADDR') && envOf('ATRIUM_LISTEN_ADDR') !== '0.0.0.0' ? envOf('ATRIUM_LISTEN_ADDR') : '127.0.0.1';
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      // every tenant host lives on this machine, whatever the base domain
      `--host-resolver-rules=MAP *.${baseDomain()} ${listen}`,
    ],
  });
}

// Console messages that are not failures: Chromium logs every 4xx answer of
// a fetch as "Failed to load resource"; the API's 4xx answers (401 on a
// refresh without a cookie, a wrong password, 404 of another client's
// project, 429 of a locked account) are expected and the app shows them.
function expectedConsole(msg) {
  const url = (msg.location() && msg.location().url) || '';
  return /^Failed to load resource: the server responded with a status of 4\d\d\b/.test(msg.text())
    && /\/api\/portal\/v1\//.test(url);
}

// A browser context for one scenario: {ctx, page, problems, newPage, close}.
// problems collects console errors, page errors, CSP violations and
// requests to hosts other than the tenant hosts, the object store and
// `allowHosts` (answered by context routes).
export async function scenario(browser, { name, viewport = { width: 1280, height: 860 }, allowHosts = [], routes = [] } = {}) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport, locale: 'en-US', timezoneId: 'UTC' });
  ctx.setDefaultTimeout(15000);
  ctx.setDefaultNavigationTimeout(20000);
  const problems = [];
  const store = new URL(envOf('ATRIUM_S3_ENDPOINT') || 'http://127.0.0.1:9000').host;
  const base = baseDomain();
  for (const [pattern, handler] of routes) await ctx.route(pattern, handler);
  ctx.on('request', (req) => {
    const u = new URL(req.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    if (u.hostname === base || u.hostname.endsWith('.' + base)) return;
    if (u.host === store || allowHosts.includes(u.hostname)) return;
    problems.push(`external request: ${req.method()} ${req.url()}`);
  });
  const watch = (page) => {
    page.on('console', (msg) => {
      if (msg.type() !== 'error' || expectedConsole(msg)) return;
      const loc = msg.location() && msg.location().url ? ` (${msg.location().url})` : '';
      problems.push(`console error on ${page.url()}: ${msg.text()}${loc}`);
    });
    page.on('pageerror', (err) => problems.push(`page error on ${page.url()}: ${err.message}`));
    page.on('response', (res) => {
      if (res.status() >= 500) problems.push(`${res.status()} answer: ${res.request().method()} ${res.url()}`);
    });
  };
  ctx.on('page', watch);
  // CSP violations also reach the console; this catches the ones that do
  // not (report-only, or a console swallowed by the app).  Injected through
  // the DevTools protocol, so the page's CSP does not apply to it.
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile || ''}:${e.lineNumber || ''}`);
    });
  });
  const page = await ctx.newPage();
  return {
    name,
    ctx,
    page,
    problems,
    newPage: () => ctx.newPage(),
    async close() { await ctx.close().catch(() => {}); },
  };
}

let shotSeq = 0;
// A full-page screenshot under the screenshot directory; returns its path.
export async function shot(page, label) {
  const file = path.join(screenshotDir(), `${String(++shotSeq).padStart(2, '0')}-${label.replace(/[^A-Za-z0-9_.-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

let axeSource;
// axe-core's serious and critical violations on the page as it is now:
// [{id, impact, help, targets}].  The script is evaluated through the
// DevTools protocol: an injected <script> element (page.addScriptTag) is
// inline script, which the portal's CSP rightly refuses.
export async function axeScan(page) {
  axeSource ??= readFileSync(AXE, 'utf8');
  const has = await page.evaluate(() => typeof window.axe === 'object');
  if (!has) await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, {
      resultTypes: ['violations'],
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}${n.failureSummary ? ' :: ' + n.failureSummary.replace(/\s+/g, ' ').slice(0, 200) : ''}`),
    }));
  });
  return res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
