// What the tests know about the portal app's pages: routes, headings,
// labels and button texts, all by accessible name or visible text.  Keep
// every such fact here, so a change of wording is a change of one line.
export const ROUTES = {
  signIn: '/signin',
  dashboard: '/',
  forgot: '/forgot',
  project: (id) => `/projects/${id}`,
  thread: (id) => `/projects/${id}/messages`,
  account: '/account',
};

export const TEXT = {
  signInHeading: /^sign in$/i,
  inviteHeading: /^accept your invitation$/i,
  forgotHeading: /^reset your password$/i,
  resetHeading: /^choose a new password$/i,
  dashboardHeading: /^your projects$/i,
  threadHeading: /^messages$/i,
  accountHeading: /^your account$/i,
  projectNotFoundHeading: /^project not found$/i,
  noAccess: /this project does not exist, or you do not have access to it/i,
  wrongPassword: /email or password is wrong/i,
  locked: /too many failed sign-in attempts.*locked/i,
  ruleUnmet: /not met yet/i,
  loading: /^\s*loading\b/i,
  signedOut: /you have been signed out/i,
  resetSent: /if an account exists for .* we have sent it a link/i,
  resetDone: /your password has been changed/i,
};

// The page's one <h1>, once it names what we expect.
export async function heading(page, name, timeout) {
  const h = page.getByRole('heading', { level: 1, name });
  await h.waitFor({ state: 'visible', timeout });
  return h;
}

// Any visible role=alert or role=status whose text matches.
export async function message(page, re, timeout) {
  const m = page.getByRole('alert').or(page.getByRole('status')).filter({ hasText: re });
  await m.first().waitFor({ state: 'visible', timeout });
  return (await m.first().innerText()).trim();
}

export async function signIn(page, email, password) {
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

// The accept-invite page: the name is filled in from the invite.
export async function acceptInvite(page, password) {
  await passwordInput(page).fill(password);
  await page.getByRole('button', { name: 'Accept invitation' }).click();
}

export async function newPassword(page, password) {
  await page.getByLabel('New password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Save new password' }).click();
}

export async function requestReset(page, email) {
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByRole('button', { name: 'Send reset link' }).click();
}

// a project card's title link on the dashboard
export const projectLink = (page, name) => page.getByRole('link', { name, exact: true });
export const messagesLink = (page) => page.getByRole('link', { name: /messages/i }).first();
export const accountLink = (page) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' });
export const signOutButton = (page) => page.getByRole('button', { name: 'Sign out', exact: true });
export const forgotLink = (page) => page.getByRole('link', { name: 'Forgot your password?' });

export const messageBox = (page) => page.getByRole('textbox', { name: 'Message', exact: true });
export const fileInput = (page) => page.getByLabel('Attach files');
export const sendButton = (page) => page.getByRole('button', { name: 'Send', exact: true });
export const uploadReady = /ready to send/i;
export const removeUpload = (page, name) => page.getByRole('button', { name: `Remove ${name}` });
export const blockedType = (name) => new RegExp(`${escapeRe(name)} cannot be uploaded.*not allowed`, 'i');
// the thread's messages, oldest first
export const history = (page) => page.getByRole('list', { name: 'Message history' });

// the project page's sign-off on a delivered deliverable
export async function approve(page, title, comment) {
  await page.getByRole('button', { name: `Approve ${title}` }).click();
  await page.getByLabel('Comment (optional)').fill(comment);
}
export const confirmApproval = (page) => page.getByRole('button', { name: 'Confirm approval' }).click();
export const approved = (title) => new RegExp(`you approved .${escapeRe(title)}.`, 'i');

// a section that shows once the account page has loaded
export const accountLoaded = (page) => page.getByRole('heading', { name: 'Profile', exact: true });
export const signInLink = (page) => page.getByRole('link', { name: 'Sign in', exact: true });
export const passwordInput = (page) => page.getByLabel('Password', { exact: true });

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
