/**
 * Wire errors, below every feature: typed classes carrying their status and code. Handlers and
 * services throw them; the one error renderer (src/http/error-renderer.ts) writes problem+json
 * (RFC 9457) or the RFC 6749 body, as each operation's documented responses say.
 */
export * from './oauth.js';
export * from './problem.js';
