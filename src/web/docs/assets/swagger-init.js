// The /docs page's only script of its own, served as a file so the page's CSP needs no inline script.
// - validatorUrl: null keeps Swagger UI from sending the spec to validator.swagger.io (no third party).
// - "Try it out" is off (the page may only talk to its own origin; the spec's servers are others), so
//   the servers menu and the Authorize button, which only serve it, are not shown.
// - deepLinking is off: its anchors would sit inside each operation's expand button (nested controls).
const hidden = () => () => null;
window.addEventListener('DOMContentLoaded', () => {
  window.ui = window.SwaggerUIBundle({
    url: '/openapi.yaml',
    dom_id: '#swagger-ui',
    deepLinking: false,
    validatorUrl: null,
    supportedSubmitMethods: [],
    defaultModelsExpandDepth: 0,
    docExpansion: 'list',
    // The highlighter's theme colours some tokens below AA contrast; plain examples read fine.
    syntaxHighlight: { activated: false },
    plugins: [() => ({ wrapComponents: { ServersContainer: hidden, authorizeBtn: hidden } })],
  });
});
