import { html, SafeHtml } from './html.js';

/** The look shared by every server-rendered page (wallet, dashboard, docs, errors). */
export const STYLE = `
body{font-family:system-ui,sans-serif;background:#f5f5f7;color:#1d1d1f;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 2px 12px #0001}
h1{font-size:1.3rem;margin-top:0} label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}
input[type=email],input[type=password],input[type=text]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1rem;padding:.55rem 1.2rem;font-size:1rem;border-radius:8px;border:1px solid #888;cursor:pointer}
button.primary{background:#0a66ff;color:#fff;border-color:#0a66ff} .error{color:#b00020}
.notice{background:#fff8e1;border:1px solid #f0c36d;border-radius:8px;padding:.8rem;margin:1rem 0}
ul.scopes li{margin:.4rem 0} hr{margin:1.5rem 0;border:none;border-top:1px solid #ddd} .muted{color:#666;font-size:.85rem}
main.wide{max-width:48rem} main.wide h2{font-size:1.1rem} ul.plain{list-style:none;padding:0} ul.plain>li{padding:.3rem 0 1rem;border-bottom:1px solid #e3e3e3}
nav.tabs ul{list-style:none;padding:0;margin:1rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1rem}
nav.tabs a{color:#0a4fc4} nav.tabs a[aria-current=page]{font-weight:600;color:#1d1d1f;text-decoration:none}
table{width:100%;border-collapse:collapse;font-size:.95rem} th,td{text-align:left;padding:.45rem .3rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
td.num,th.num,td.when{text-align:right;white-space:nowrap} td.when{text-align:left} .plus{color:#0b6b2e} .id{word-break:break-all}
header.bar{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:.5rem 1rem;margin-bottom:1.5rem}
header.bar nav.tabs ul{margin:0} header.bar button{margin:0 0 0 .5rem;padding:.3rem .8rem;font-size:.9rem}
fieldset{border:1px solid #ccc;border-radius:8px;margin:1rem 0;padding:.4rem 1rem .8rem} legend{font-size:.9rem;padding:0 .3rem}
.check{display:flex;gap:.5rem;align-items:baseline;margin:.4rem 0} .check label{display:inline;margin:0}
textarea,input[type=number],input[type=datetime-local]{box-sizing:border-box;padding:.5rem;font-size:1rem;font-family:inherit} textarea{width:100%}
form.inline{display:inline} pre{white-space:pre-wrap;word-break:break-all;background:#f5f5f7;padding:.5rem;border-radius:6px;font-size:.85rem}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}`;

/** `wide` widens the page for tables and navigation (the signed-in wallet, the dashboard). */
export function layout(
  title: string,
  body: SafeHtml,
  site = 'askTIAN Wallet',
  opts: { wide?: boolean } = {},
): SafeHtml {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${title} · ${site}</title>
<style>${new SafeHtml(STYLE)}</style></head>
<body><main${opts.wide ? new SafeHtml(' class="wide"') : ''}>${body}</main></body></html>`;
}

export const csrfField = (csrf: string) => html`<input type="hidden" name="csrf_token" value="${csrf}">`;

export function errorPage(title: string, message: string): SafeHtml {
  return layout(title, html`<h1>${title}</h1><p class="error">${message}</p>`);
}
