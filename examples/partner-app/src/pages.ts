/** The example's two pages, as plain HTML (no client-side JavaScript). */

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const esc = (value: string | number): string =>
  String(value).replace(/[&<>"']/g, (c) => escapes[c] ?? c);

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
.notice{border-left:4px solid #1d4ed8;padding:.5rem 1rem;background:#eff6ff}
.error{border-left-color:#b91c1c;background:#fef2f2}
a.button,button{display:inline-block;background:#1d4ed8;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;font-size:1rem;text-decoration:none;cursor:pointer}
label{display:block;margin:.5rem 0 .25rem}input{font-size:1rem;padding:.25rem}</style>
</head><body><main>${body}</main></body></html>`;
}

export type Flash = { text: string; error?: boolean };

function flashBlock(flash: Flash | undefined): string {
  if (!flash) return '';
  return `<p class="notice${flash.error ? ' error' : ''}" role="status">${esc(flash.text)}</p>`;
}

export function signedOutPage(flash: Flash | undefined): string {
  return layout(
    'Example partner app',
    `<h1>Example partner app</h1>${flashBlock(flash)}
<p>This shop spends TIAN Points. Connect your TIAN wallet to pay with your points.</p>
<p><a class="button" href="/connect">Connect your TIAN wallet</a></p>`,
  );
}

export function connectedPage(opts: {
  userId: number;
  balance: number;
  csrf: string;
  idempotencyKey: string;
  flash: Flash | undefined;
}): string {
  return layout(
    'Example partner app',
    `<h1>Example partner app</h1>${flashBlock(opts.flash)}
<p>Connected to the TIAN wallet of user ${esc(opts.userId)}.</p>
<p>Your balance: <strong>${esc(opts.balance)} points</strong></p>
<h2>Pay with points</h2>
<form method="post" action="/deduct">
<input type="hidden" name="csrf_token" value="${esc(opts.csrf)}">
<input type="hidden" name="idempotency_key" value="${esc(opts.idempotencyKey)}">
<label for="amount">Amount</label>
<input id="amount" name="amount" type="number" min="1" max="100000000" step="1" required value="10">
<button type="submit">Deduct points</button>
</form>`,
  );
}

export function problemPage(title: string, text: string): string {
  return layout(title, `<h1>${esc(title)}</h1><p>${esc(text)}</p><p><a href="/">Back to the app</a></p>`);
}
