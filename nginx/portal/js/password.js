// Password rules as the server applies them (fcgi-app/password.c): 15 to 256
// characters (Unicode code points), not on the common-password list, not the
// account's email.  The list below holds the entries of the server's list
// (@zxcvbn-ts/language-common passwords.json) that are long enough to pass
// the length rule, so the live feedback matches what the server will say;
// the server's 422 common_password stays the final word.

const COMMON = new Set(["mailcreated5240", "polniypizdec0211", "123456789987654321", "1qaz2wsx3edc4rfv", "momsanaladventure", "hd764nw5d7e1vb1", "qazwsxedcrfvtgb", "23176djivanfros", "123456789qwerty", "12345678900987654321", "qwerty123456789", "polniypizdec110211", "12345678987654321", "q1w2e3r4t5y6u7i8", "zqjphsyf6ctifgu", "lhbjkjubz2957704", "1qazxsw23edcvfr4", "nemvxyheqdd5oqxyxyzi", "passwordpassword", "1234qwerasdfzxcv", "1234567890987654321", "1234567890qwerty", "q1w2e3r4t5y6u7i8o9p0", "passwordstandard", "bpgjldsgjldthnf", "1234567887654321", "zxcvbnm123456789", "122333444455555", "111222333444555", "qwertyuiop12345", "1qa2ws3ed4rf5tg", "nick1234-rem936", "qwertasdfgzxcvb", "aksjdlasdakj89879", "lytdybrbdfvgbhf", "passwordassword", "420842084208555", "polniypizdec1102", "ne_e_pod_chehyl", "hd764nw5d7e1vbv", "bhrh0h2oof6xbqjeh"]);

export const MIN = 15;
export const MAX = 256;

// emailHint: the full email, or an invite's hint such as "a***@example.com"
function looksLikeEmail(pw, emailHint) {
	if (!emailHint || !pw) return false;
	const p = pw.toLowerCase(), e = emailHint.toLowerCase();
	if (!e.includes('*')) return p === e;
	const at = e.indexOf('@');
	const first = e.slice(0, e.indexOf('*'));
	const domain = e.slice(at);
	return p.startsWith(first) && p.endsWith(domain) && p.indexOf('@') === p.length - domain.length;
}

export function checkPassword(pw, emailHint) {
	const n = [...pw].length;
	return [
		{id: 'length', text: `${MIN} to ${MAX} characters`, ok: n >= MIN && n <= MAX,
			detail: n === 0 ? '' : n < MIN ? `${MIN - n} more needed` : n > MAX ? `${n - MAX} too many` : `${n} characters`},
		{id: 'common', text: 'Not a commonly used password', ok: n > 0 && !COMMON.has(pw.toLowerCase())},
		{id: 'email', text: 'Not your email address', ok: n > 0 && !looksLikeEmail(pw, emailHint)},
	];
}

// The message for a server-side refusal of a password field.
export function serverPasswordMessage(fieldError) {
	if (!fieldError) return null;
	switch (fieldError.code) {
	case 'too_short': return `Your password is too short: use at least ${MIN} characters.`;
	case 'too_long': return `Your password is too long: use at most ${MAX} characters.`;
	case 'common_password':
		return /email/i.test(fieldError.message || '')
			? 'Your password must not be your email address.'
			: 'This password is too common. Choose another one.';
	default: return `Password ${fieldError.message}.`;
	}
}
