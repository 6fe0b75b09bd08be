// A small TAP producer for prove: numbered assertions, named groups that run
// in order (a group that throws is one failure and the next group runs), a
// trailing plan, and diagnostics on stderr-free `# ` lines.
import { inspect } from 'node:util';

let n = 0;
let failed = 0;
const out = (s) => process.stdout.write(s + '\n');

const one = (s) => String(s).replace(/[\r\n]+/g, ' ').replace(/#/g, '\\#');

export function diag(...msg) {
  for (const m of msg) {
    const s = typeof m === 'string' ? m : inspect(m, { depth: 6, breakLength: 120 });
    for (const line of s.split('\n')) out(`# ${line}`);
  }
}
export const note = diag;

export function ok(cond, name, ...more) {
  n++;
  out(`${cond ? 'ok' : 'not ok'} ${n} - ${one(name)}`);
  if (!cond) {
    failed++;
    if (more.length) diag(...more);
  }
  return !!cond;
}

export function is(got, want, name) {
  return ok(Object.is(got, want), name, `     got: ${inspect(got)}`, `expected: ${inspect(want)}`);
}

export function like(got, re, name) {
  return ok(re.test(String(got ?? '')), name, `     got: ${inspect(got)}`, `expected: ${re}`);
}

// The first `ok` that fails inside a group stops nothing; an exception
// stops the group, is reported as one failed test, and the run goes on.
export async function group(name, fn) {
  out(`# --- ${name}`);
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    ok(false, `${name}: ${e && e.message ? e.message.split('\n')[0] : e}`, e && e.stack ? e.stack : String(e));
  }
  out(`# --- ${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export function done() {
  out(`1..${n}`);
  return failed;
}

export function bailOut(why) {
  out(`Bail out! ${one(why)}`);
  process.exit(255);
}

export const counts = () => ({ n, failed });
