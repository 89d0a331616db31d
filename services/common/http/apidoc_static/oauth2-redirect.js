// The OAuth2 redirect target of Swagger UI's "Authorize" window: hands the authorization
// response back to the opener (Swagger UI) and closes. A served file, so no inline script.
(function () {
  "use strict";
  var oauth2 = window.opener && window.opener.swaggerUIRedirectOauth2;
  if (!oauth2) { return; }
  var raw = /code|token|error/.test(window.location.hash)
    ? window.location.hash.substring(1) : window.location.search.substring(1);
  var qp = {};
  new URLSearchParams(raw).forEach(function (value, key) { qp[key] = value; });
  var isValid = qp.state === oauth2.state;
  var flow = oauth2.auth.schema.get("flow");
  if ((flow === "accessCode" || flow === "authorizationCode") && !oauth2.auth.code) {
    if (!isValid) {
      oauth2.errCb({ authId: oauth2.auth.name, source: "auth", level: "warning",
        message: "The state returned by the identity provider does not match the one sent" });
    }
    if (qp.code) {
      delete oauth2.state;
      oauth2.auth.code = qp.code;
      oauth2.callback({ auth: oauth2.auth, redirectUrl: oauth2.redirectUrl });
    } else {
      oauth2.errCb({ authId: oauth2.auth.name, source: "auth", level: "error",
        message: qp.error ? "[" + qp.error + "] " + (qp.error_description || "")
          : "No authorization code was returned" });
    }
  } else {
    oauth2.callback({ auth: oauth2.auth, token: qp, isValid: isValid,
      redirectUrl: oauth2.redirectUrl });
  }
  window.close();
})();
