// The portal web app in a real browser (headless Chromium through
// playwright-core) against the running stack; prints TAP.  Run through
// t/browser/portal.t (prove), or directly: node t/browser/portal.mjs
//
// Scenarios: the main flow from the invite email to a reply in the thread,
// at 1280 and at 360 px wide; sign-in errors (wrong password, locked
// account); two tenants' branding; one client never seeing another's
// project; forgot and reset password; an axe-core scan of every page.  On
// every page a console error, an uncaught error, a CSP violation or a
// request outside the stack fails the scenario.  Screenshots of each page go
// to $ATRIUM_STACK_DIR/screenshots/.
import crypto from 'node:crypto';
import * as tap from './lib/tap.mjs';
import { ok, is, like, group, note } from './lib/tap.mjs';
import {
  newTenant, team, teamApi, newClient, newProject, invite, onboard, mailFor, strongPassword,
  randomEmail, urlOf, origin, httpGet, waitUntil, envOf,
} from './lib/stack.mjs';
import { launch, scenario, shot, axeScan, preflight, screenshotDir } from './lib/browser.mjs';
import * as ui from './lib/ui.mjs';
import { solidPng } from './lib/png.mjs';

const T0 = Date.now();
const LIMIT_S = Number(process.env.ATRIUM_BROWSER_TIMEOUT_S || 170);
// a run that hangs must still end with a verdict prove understands
setTimeout(() => tap.bailOut(`browser tests still running after ${LIMIT_S} s`), LIMIT_S * 1000).unref();
// anything that escapes a group (a crashed browser, a broken helper) ends
// the run with a reason rather than a missing plan
process.on('unhandledRejection', (e) => tap.bailOut(`unexpected: ${e && e.stack ? e.stack : e}`));
process.on('uncaughtException', (e) => tap.bailOut(`unexpected: ${e && e.stack ? e.stack : e}`));

try {
  envOf('ATRIUM_HTTPS_PORT');
} catch (e) {
  tap.bailOut(e.message);
}
const missing = preflight();
if (missing.length) tap.bailOut(`missing: ${missing.join(', ')}`);

let browser;
try {
  browser = await launch();
} catch (e) {
  tap.bailOut(`cannot start Chromium: ${e.message.split('\n')[0]}`);
}
note(`chromium ${browser.version()}; screenshots in ${screenshotDir()}`);

// ------------------------------------------------------------------ checks shared by every page

// An axe-core scan of the page as it is now: no serious or critical violations.
async function axeOk(page, label) {
  const v = await axeScan(page);
  return ok(v.length === 0, `axe: ${label} has no serious or critical violations`, v);
}

// One visible <h1>, every <img> loaded (no broken logo), no stray values
// as text, and at a phone's width nothing wider than the viewport.
async function layoutOk(page, label, { narrow } = {}) {
  const r = await page.evaluate(() => ({
    broken: [...document.images].filter((i) => i.complete && i.naturalWidth === 0 && i.getAttribute('src')).map((i) => i.getAttribute('src').slice(0, 80)),
    h1: [...document.querySelectorAll('h1')].filter((e) => e.getClientRects().length).map((e) => e.textContent.trim()),
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
    // values that leaked into the page as text (a null child, a failed template)
    junk: [...document.body.innerText.matchAll(/(^|[^\w-])(null|undefined|NaN|\[object \w+\]|Invalid Date)(?![\w-])/g)]
      .map((m) => JSON.stringify(document.body.innerText.slice(Math.max(0, m.index - 40), m.index + m[0].length + 40))),
  }));
  ok(r.h1.length === 1, `${label}: one <h1> (${r.h1.join(' | ')})`);
  ok(r.broken.length === 0, `${label}: no broken images`, r.broken);
  ok(r.junk.length === 0, `${label}: no stray null, undefined, NaN or [object ...] text`, r.junk);
  if (narrow) ok(r.scroll <= r.inner, `${label}: no horizontal scrolling at ${r.inner} px (content ${r.scroll} px)`);
}

// Screenshot, layout and (when asked) axe of the current page.
async function pageOk(s, label, { axe = false, narrow = false } = {}) {
  // settled: no loading indicator, every image decoded (not networkidle:
  // the app polls, and a live-update stream never goes idle)
  await s.page.waitForFunction((re) => {
    const loading = new RegExp(re, 'i');
    return ![...document.querySelectorAll('[role=status], [aria-busy=true]')].some((e) => e.getAttribute('aria-busy') === 'true' || loading.test(e.textContent))
      && [...document.images].every((i) => i.complete);
  }, ui.TEXT.loading.source, { timeout: 5000 }).catch(() => note(`${s.name} ${label}: still loading after 5 s`));
  const file = await shot(s.page, `${s.name}-${label}`);
  note(`screenshot ${file}`);
  await layoutOk(s.page, `${s.name} ${label}`, { narrow });
  if (axe) await axeOk(s.page, `${s.name} ${label}`);
}

function problemsOk(s) {
  ok(s.problems.length === 0, `${s.name}: no console errors, page errors, CSP violations or foreign requests`, s.problems);
}

async function withScenario(opts, fn) {
  const s = await scenario(browser, opts);
  try {
    await fn(s);
  } finally {
    if (s.page && !s.page.isClosed()) await shot(s.page, `${s.name}-last`).catch(() => {});
    problemsOk(s);
    await s.close();
  }
}

// WCAG contrast ratio of two computed colors 'rgb(r, g, b)'
function contrastOf(a, b) {
  const lum = (c) => {
    const [r, g, bl] = c.match(/\d+(\.\d+)?/g).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

// ------------------------------------------------------------------ data

// A project with work in it: a milestone, tasks (one done), a deliverable due.
async function projectWithWork(t, name) {
  const p = await newProject(t, { name, description: `Everything about ${name}.` });
  const ms = await team(t, 'POST', `/team/projects/${p.id}/milestones`, { title: 'Discovery', position: 1 });
  await team(t, 'POST', `/team/projects/${p.id}/tasks`, { title: 'Kick-off call', milestone_id: ms.id, status: 'done' });
  await team(t, 'POST', `/team/projects/${p.id}/tasks`, { title: 'Site map', milestone_id: ms.id });
  await team(t, 'POST', `/team/projects/${p.id}/deliverables`, { title: 'Site map PDF', due_date: '2030-03-01', milestone_id: ms.id });
  const d = await team(t, 'POST', `/team/projects/${p.id}/deliverables`, { title: 'Brand guide', due_date: '2030-06-01' });
  await team(t, 'PATCH', `/team/deliverables/${d.id}`, { status: 'delivered' });
  return { ...p, delivered: d };
}

// ------------------------------------------------------------------ the main flow

// invite email -> set password -> dashboard -> project -> message with an
// attachment (real upload) -> the team sees it -> team reply -> client sees it
async function mainFlow(s, t, { narrow = false, axe = false } = {}) {
  const page = s.page;
  const label = s.name;
  const p = await projectWithWork(t, `Relaunch ${label}`);
  const c = await newClient(t, { name: `Dana ${label}`, email: randomEmail('dana') });
  await invite(t, c.id, { project_ids: [p.id], delivery: 'email' });

  const mail = await mailFor(c.email, { secs: 20, match: /\/invite#token=/ });
  if (!ok(mail, `${label}: the invite email reached the catcher`)) throw new Error('no invite email');
  const link = (/(https:\/\/\S+\/invite#token=[A-Za-z0-9_-]+)/.exec(mail.text) || [])[1];
  is(link && new URL(link).origin, origin(t), `${label}: the link points at the tenant's host and port`);

  await page.goto(link);
  await ui.heading(page, ui.TEXT.inviteHeading);
  ok(true, `${label}: the invite page opens`);
  await ui.passwordInput(page).waitFor();
  const body = await page.locator('main').innerText();
  like(body, new RegExp(ui.escapeRe(t.display_name)), `${label}: the invite page names the tenant`);
  const hint = `${c.email[0]}***@client.example`;
  like(body, new RegExp(ui.escapeRe(hint)), `${label}: the invite page shows who is invited (${hint})`);
  await pageOk(s, 'invite', { axe, narrow });

  // live feedback on the password rules
  const pwField = ui.passwordInput(page);
  await pwField.fill('short');
  const rules = page.getByRole('listitem').filter({ hasText: ui.TEXT.ruleUnmet });
  const unmet = await rules.count();
  ok(unmet > 0, `${label}: a short password shows unmet rules (${unmet})`);
  const password = strongPassword();
  await pwField.fill(password);
  await rules.first().waitFor({ state: 'detached', timeout: 5000 })
    .then(() => ok(true, `${label}: a strong password meets every rule`), () => ok(false, `${label}: a strong password meets every rule`));

  await ui.acceptInvite(page, password);
  await ui.heading(page, ui.TEXT.dashboardHeading);
  ok(true, `${label}: after setting the password the dashboard shows`);
  const card = ui.projectLink(page, p.name);
  await card.waitFor();
  ok(true, `${label}: the dashboard lists the invited project`);
  const cardText = await page.locator('li', { has: card }).first().innerText();
  like(cardText, /50% complete/, `${label}: the card shows the progress`);
  like(cardText, /Site map PDF/, `${label}: the card shows the next deliverable`);
  await pageOk(s, 'dashboard', { axe, narrow });

  await card.click();
  await ui.heading(page, p.name);
  ok(true, `${label}: the project page opens`);
  await page.getByRole('heading', { name: 'Site map PDF' }).waitFor();
  ok(true, `${label}: the project page shows its deliverable`);
  await page.getByRole('heading', { name: 'Discovery' }).first().waitFor();
  ok(true, `${label}: the project page shows its milestone`);
  await pageOk(s, 'project', { axe, narrow });

  if (!narrow) {
    // sign-off on a delivered deliverable
    await ui.approve(page, 'Brand guide', 'Looks great, approved.');
    await pageOk(s, 'project-approve', { axe });
    await ui.confirmApproval(page);
    const m = await ui.message(page, ui.approved('Brand guide'));
    ok(true, `${label}: approving a delivered deliverable says so: "${m}"`);
    const d = await team(t, 'GET', `/team/deliverables/${p.delivered.id}`);
    ok(d.status === 'approved' && d.decision?.comment === 'Looks great, approved.' && d.decision?.by?.kind === 'client',
      `${label}: the team sees the approval with its comment`, d.decision);
  }

  await ui.messagesLink(page).click();
  await ui.heading(page, ui.TEXT.threadHeading);
  await ui.messageBox(page).waitFor();
  ok(true, `${label}: the thread opens`);
  await pageOk(s, 'thread-empty', { axe: false, narrow });

  if (!narrow) {
    // a blocked type is refused with a clear message, and can be removed
    await ui.fileInput(page).setInputFiles({ name: 'page.html', mimeType: 'text/html', buffer: Buffer.from('<p>hi</p>') });
    const m = await ui.message(page, ui.blockedType('page.html'));
    ok(true, `${label}: a blocked file type is refused: "${m}"`);
    await ui.removeUpload(page, 'page.html').click();
    await page.getByText('page.html').first().waitFor({ state: 'detached' });
  }

  // a message with an attachment picked through the file input
  const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), crypto.randomBytes(48 * 1024), Buffer.from('\n%%EOF\n')]);
  const fileName = `brief-${label}.pdf`;
  const text = `Here is our brief (${label}) ${crypto.randomBytes(3).toString('hex')}`;
  await ui.messageBox(page).fill(text);
  await ui.fileInput(page).setInputFiles({ name: fileName, mimeType: 'application/pdf', buffer: bytes });
  const upload = page.getByRole('listitem').filter({ hasText: fileName });
  await upload.filter({ hasText: ui.uploadReady }).waitFor({ timeout: 20000 });
  ok(true, `${label}: the picked file is uploaded and ready`);
  is(await upload.getByRole('progressbar').getAttribute('aria-valuenow'), '100', `${label}: its progress bar is full`);
  // the desktop run clicks Send, the phone run presses Enter in the box
  if (narrow) await ui.messageBox(page).press('Enter');
  else await ui.sendButton(page).click();
  const sent = ui.history(page).getByRole('listitem').filter({ hasText: text });
  await sent.waitFor({ timeout: 20000 });
  ok(true, `${label}: the message sent with ${narrow ? 'Enter' : 'the Send button'} shows in the thread`);
  await sent.getByRole('link', { name: fileName }).waitFor();
  ok(true, `${label}: the message links its attachment`);

  // the team sees it, with the same bytes in the store
  const seen = await waitUntil(10, async () => {
    const r = await teamApi(t, 'GET', `/team/projects/${p.id}/messages`);
    return (r.json?.data || []).find((m) => m.body === text);
  }, 250);
  if (!ok(seen, `${label}: the team API sees the message`)) throw new Error('message not seen by the team');
  is(seen.author?.kind, 'client', `${label}: written by the client`);
  is(seen.attachments?.length, 1, `${label}: with one attachment`);
  const att = seen.attachments?.[0] || {};
  is(att.filename, fileName, `${label}: the attachment's name`);
  is(att.size, bytes.length, `${label}: the attachment's size`);
  is(att.sha256, crypto.createHash('sha256').update(bytes).digest('hex'), `${label}: the attachment's sha256`);
  const dl = await team(t, 'GET', `/team/attachments/${att.id}/download`);
  const got = await httpGet(dl.url);
  ok(got.status === 200 && got.body.equals(bytes), `${label}: the store holds the uploaded bytes`);

  // the team replies; the app's polling brings it in
  const reply = `Thanks, Dana: received (${label}) ${crypto.randomBytes(3).toString('hex')}`;
  await team(t, 'POST', `/team/projects/${p.id}/messages`, { body: reply });
  const t1 = Date.now();
  await ui.history(page).getByText(reply).waitFor({ timeout: 30000 });
  ok(true, `${label}: the client sees the team's reply (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
  const order = await ui.history(page).getByRole('listitem').allInnerTexts();
  const [iSent, iReply] = [text, reply].map((x) => order.findIndex((o) => o.includes(x)));
  ok(iSent >= 0 && iSent < iReply, `${label}: newest at the bottom`, order);
  await pageOk(s, 'thread', { axe, narrow });

  await ui.accountLink(page).click();
  await ui.heading(page, ui.TEXT.accountHeading);
  await ui.accountLoaded(page).waitFor();
  ok(true, `${label}: the account page opens`);
  like(await page.locator('main').innerText(), new RegExp(ui.escapeRe(c.email), 'i'), `${label}: the account page shows the email`);
  await pageOk(s, 'account', { axe, narrow });

  await ui.signOutButton(page).click();
  await ui.heading(page, ui.TEXT.signInHeading);
  await ui.message(page, ui.TEXT.signedOut);
  ok(true, `${label}: sign out leads to the sign-in page`);
  await pageOk(s, 'sign-in', { axe, narrow });
  await page.goto(urlOf(t, ui.ROUTES.dashboard));
  await ui.heading(page, ui.TEXT.signInHeading);
  ok(true, `${label}: after sign-out a reload does not restore the session`);
  return { c, p, password };
}

// ------------------------------------------------------------------ scenarios

let main;
try {
  main = newTenant({ name: 'Harbor & Finch Studio' });
  await team(main, 'PATCH', '/team/branding', {
    display_name: 'Harbor & Finch Studio',
    colors: { primary: '#0b5d4b', accent: '#b4530a', background: '#ffffff', text: '#1d2733' },
  });
  main.display_name = 'Harbor & Finch Studio';
} catch (e) {
  await browser.close();
  tap.bailOut(`no tenant: ${e.message.split('\n')[0]}`);
}

await group('the app is served with its strict CSP', () =>
  withScenario({ name: 'smoke' }, async (s) => {
    const res = await s.page.goto(urlOf(main, '/'));
    is(res.status(), 200, 'GET / on a tenant host');
    const csp = res.headers()['content-security-policy'] || '';
    ok(/script-src 'self'(;|$)/.test(csp) && !/unsafe-(inline|eval)/.test(csp), 'a strict CSP', csp);
    await s.page.getByRole('heading', { level: 1 }).first().waitFor();
    is(await s.page.getByRole('heading', { level: 1 }).count(), 1, 'one <h1>');
    await pageOk(s, 'start');
  }));

await group('main flow at 1280 px, with axe scans', () =>
  withScenario({ name: 'desktop' }, (s) => mainFlow(s, main, { axe: true })));

await group('main flow at 360 px, with axe scans', () =>
  withScenario({ name: 'phone', viewport: { width: 360, height: 740 } }, (s) => mainFlow(s, main, { narrow: true, axe: true })));

await group('sign-in errors: wrong password, locked account', () =>
  withScenario({ name: 'signin-errors' }, async (s) => {
    const page = s.page;
    const u = await onboard(main, { name: 'Lee Locked' });
    await page.goto(urlOf(main, ui.ROUTES.dashboard));
    await ui.heading(page, ui.TEXT.signInHeading);
    ok(new URL(page.url()).pathname === ui.ROUTES.signIn, 'signed out, the dashboard sends to the sign-in page');
    await pageOk(s, 'sign-in', { axe: true });
    await ui.signIn(page, u.email, 'not-the-password-1');
    const m = await ui.message(page, ui.TEXT.wrongPassword);
    ok(true, `a wrong password says so: "${m}"`);
    await pageOk(s, 'wrong-password', { axe: true });

    // 5 failures lock the account for ATRIUM_LOCKOUT_BASE_S (2 s in tests,
    // counted from the 5th): the 6th attempt must come soon after.  A slow
    // machine may let one lock run out first; then keep going (the next lock
    // lasts twice as long), up to a limit.
    let locked = '';
    for (let i = 2, fails = 1; i <= 16 && !locked; i++) {
      const answer = page.waitForResponse((r) => r.url().endsWith('/api/portal/v1/auth/login'));
      await ui.signIn(page, u.email, fails < 5 ? `not-the-password-${i}` : u.password);
      const status = (await answer).status();
      if (status === 429) {
        locked = await ui.message(page, ui.TEXT.locked);
      } else if (status === 401) {
        await ui.message(page, ui.TEXT.wrongPassword);
        fails++;
      } else if (status === 200) {
        note('the lock ran out before the next attempt: signing out and trying again');
        await ui.heading(page, ui.TEXT.dashboardHeading);
        await ui.signOutButton(page).click();
        await ui.heading(page, ui.TEXT.signInHeading);
        fails = 0;
      } else {
        throw new Error(`POST /auth/login answered ${status}`);
      }
    }
    if (!ok(locked, `repeated wrong passwords lock the account, even for the right password: "${locked}"`)) return;
    await pageOk(s, 'locked', { axe: true });
    ok(await page.getByRole('heading', { level: 1, name: ui.TEXT.signInHeading }).isVisible(), 'still on the sign-in page');

    // the lock runs out: the right password signs in
    const done = await waitUntil(15, async () => {
      await ui.signIn(page, u.email, u.password);
      return ui.heading(page, ui.TEXT.dashboardHeading, 3000).then(() => true, () => false);
    }, 1000);
    ok(done, 'once the lock has run out the right password signs in');
  }));

await group('forgot and reset password', () =>
  withScenario({ name: 'reset' }, async (s) => {
    const page = s.page;
    const u = await onboard(main, { name: 'Rae Reset' });
    await page.goto(urlOf(main, ui.ROUTES.signIn));
    await ui.heading(page, ui.TEXT.signInHeading);
    await ui.forgotLink(page).click();
    await ui.heading(page, ui.TEXT.forgotHeading);
    ok(true, 'the forgot-password page opens from the sign-in page');
    await pageOk(s, 'forgot', { axe: true });
    await ui.requestReset(page, u.email);
    const m = await ui.message(page, ui.TEXT.resetSent);
    ok(true, `the page confirms: "${m}"`);
    await pageOk(s, 'forgot-sent', { axe: true });

    const mail = await mailFor(u.email, { secs: 20, match: /\/reset#token=/ });
    if (!ok(mail, 'the reset email reached the catcher')) return;
    const link = (/(https:\/\/\S+\/reset#token=[A-Za-z0-9_-]+)/.exec(mail.text) || [])[1];
    is(link && new URL(link).origin, origin(main), 'the reset link points at the tenant');
    await page.goto(link);
    await ui.heading(page, ui.TEXT.resetHeading);
    ok(true, 'the reset page opens from the email');
    await pageOk(s, 'reset', { axe: true });
    const pw = strongPassword();
    await ui.newPassword(page, pw);
    await ui.message(page, ui.TEXT.resetDone);
    ok(!page.url().includes('token='), 'the token is gone from the address bar');
    await pageOk(s, 'reset-done', { axe: true });
    await ui.signInLink(page).click();
    await ui.heading(page, ui.TEXT.signInHeading);
    await ui.signIn(page, u.email, u.password);
    await ui.message(page, ui.TEXT.wrongPassword);
    ok(true, 'the old password no longer works');
    await ui.signIn(page, u.email, pw);
    await ui.heading(page, ui.TEXT.dashboardHeading);
    ok(true, 'the new password signs in');
  }));

await group('two tenants, two brands', async () => {
  const brands = [
    { name: 'Northwind Legal', primary: '#1f4e8c', accent: '#d97706', background: '#f7f9fc', text: '#14213d', logo: '#1f4e8c' },
    { name: 'Bramble Bakery Co', primary: '#8a1c3b', accent: '#2f855a', background: '#fffaf3', text: '#2d1b12', logo: '#8a1c3b' },
  ];
  const logos = new Map();
  for (const b of brands) {
    b.t = newTenant({ name: b.name });
    b.logo_url = `https://logos.atrium.test/${b.t.code}.png`;
    logos.set(b.logo_url, solidPng(96, 32, b.logo));
    await team(b.t, 'PATCH', '/team/branding', {
      display_name: b.name, logo_url: b.logo_url,
      colors: { primary: b.primary, accent: b.accent, background: b.background, text: b.text },
    });
    b.u = await onboard(b.t, { name: `Kim ${b.name}`, projectIds: [(await newProject(b.t, { name: `${b.name} website` })).id] });
  }
  const served = [];
  const routes = [['https://logos.atrium.test/**', (route) => {
    const body = logos.get(route.request().url());
    served.push(route.request().url());
    return body ? route.fulfill({ status: 200, contentType: 'image/png', body }) : route.fulfill({ status: 404, body: '' });
  }]];
  const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

  for (const b of brands) {
    const other = brands.find((x) => x !== b);
    await withScenario({ name: `brand-${b.name.toLowerCase().replace(/\W+/g, '-')}`, allowHosts: ['logos.atrium.test'], routes }, async (s) => {
      const page = s.page;
      for (const where of ['sign-in', 'dashboard']) {
        if (where === 'sign-in') {
          await page.goto(urlOf(b.t, ui.ROUTES.signIn));
          await ui.heading(page, ui.TEXT.signInHeading);
        } else {
          await ui.signIn(page, b.u.email, b.u.password);
          await ui.heading(page, ui.TEXT.dashboardHeading);
        }
        const logo = page.locator(`img[src="${b.logo_url}"]`).first();
        await logo.waitFor();
        const look = await page.evaluate((logoUrl) => {
          const vars = {};
          for (const el of [document.documentElement, document.body]) {
            for (const prop of el.style) if (prop.startsWith('--')) vars[prop] = el.style.getPropertyValue(prop).trim();
          }
          const img = document.querySelector(`img[src="${logoUrl}"]`);
          return {
            title: document.title,
            vars,
            bodyBg: getComputedStyle(document.body).backgroundColor,
            rootBg: getComputedStyle(document.documentElement).backgroundColor,
            bodyColor: getComputedStyle(document.body).color,
            logo: img && { w: img.naturalWidth, visible: img.getBoundingClientRect().width > 0 },
            text: document.body.innerText,
          };
        }, b.logo_url);
        const banner = page.getByRole('banner').first();
        look.brandName = await banner.innerText();
        look.headerBorder = await banner.evaluate((el) => getComputedStyle(el).borderTopColor);
        if (where === 'sign-in') {
          look.button = await page.getByRole('button', { name: 'Sign in', exact: true })
            .evaluate((el) => ({ bg: getComputedStyle(el).backgroundColor, fg: getComputedStyle(el).color }));
        }
        const l = `${b.name} ${where}`;
        like(look.title, new RegExp(ui.escapeRe(b.name)), `${l}: the title names the tenant`);
        ok(look.logo && look.logo.w === 96 && look.logo.visible, `${l}: its logo is shown`, look.logo);
        like(look.brandName, new RegExp(ui.escapeRe(b.name)), `${l}: the header names the tenant`);
        ok(Object.values(look.vars).some((v) => v.toLowerCase() === b.primary),
          `${l}: the primary color is a CSS custom property on the page`, look.vars);
        is(look.headerBorder, rgb(b.primary), `${l}: the header carries the primary color`);
        if (where === 'sign-in') {
          is(look.button && look.button.bg, rgb(b.primary), `${l}: the Sign in button is painted in the primary color`);
          const ratio = look.button ? contrastOf(look.button.bg, look.button.fg) : 0;
          ok(ratio >= 4.5, `${l}: its text is readable on the primary color (${ratio.toFixed(2)}:1)`, look.button);
        }
        ok([look.bodyBg, look.rootBg].includes(rgb(b.background)), `${l}: the page background is the tenant's`, { bodyBg: look.bodyBg, rootBg: look.rootBg });
        is(look.bodyColor, rgb(b.text), `${l}: the text color is the tenant's`);
        ok(!look.text.includes(other.name), `${l}: nothing of the other tenant`);
        await pageOk(s, where, { axe: true });
      }
    });
  }
  ok(served.length >= 2, `both logos were requested (${served.length} requests)`);
});

await group('a client never sees another client\'s project', () =>
  withScenario({ name: 'isolation' }, async (s) => {
    const page = s.page;
    const mine = await newProject(main, { name: `Orchard mine ${crypto.randomBytes(2).toString('hex')}` });
    const theirs = await newProject(main, { name: `Quarry theirs ${crypto.randomBytes(2).toString('hex')}` });
    const me = await onboard(main, { name: 'Mia Mine', projectIds: [mine.id] });
    await onboard(main, { name: 'Theo Theirs', projectIds: [theirs.id] });
    await team(main, 'POST', `/team/projects/${theirs.id}/messages`, { body: 'CANARY for Theo only' });

    await page.goto(urlOf(main, ui.ROUTES.signIn));
    await ui.heading(page, ui.TEXT.signInHeading);
    await ui.signIn(page, me.email, me.password);
    await ui.heading(page, ui.TEXT.dashboardHeading);
    await ui.projectLink(page, mine.name).first().waitFor();
    ok(true, 'the dashboard lists my project');
    ok(!(await page.content()).includes(theirs.name), 'the dashboard never names the other client\'s project');

    for (const [what, path] of [['project', ui.ROUTES.project(theirs.id)], ['thread', ui.ROUTES.thread(theirs.id)]]) {
      await page.goto(urlOf(main, path));
      const m = await ui.message(page, ui.TEXT.noAccess);
      ok(true, `the other client's ${what} URL shows a not-found state: "${m}"`);
      if (what === 'project') await ui.heading(page, ui.TEXT.projectNotFoundHeading);
      const html = await page.content();
      ok(!html.includes(theirs.name) && !html.includes('CANARY'), `the other client's ${what} leaks nothing`);
      await pageOk(s, `not-found-${what}`, { axe: true });
    }
  }));

await browser.close();
const failed = tap.done();
note(`run time ${((Date.now() - T0) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
