// Starts Swagger UI on /docs. Kept in a served file (not inline) so the page runs under a
// Content-Security-Policy without 'unsafe-inline'; settings come from data-* attributes.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // the public validator badge would call out to the internet
    oauth2RedirectUrl: new URL(root.dataset.oauth2Redirect, window.location.href).href,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
  if (root.dataset.clientId) {
    ui.initOAuth({ clientId: root.dataset.clientId, usePkceWithAuthorizationCodeGrant: true });
  }
  window.ui = ui;
})();
