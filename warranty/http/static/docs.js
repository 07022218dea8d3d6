// Starts Swagger UI (served by the service from the flask-swagger-ui package) on the
// service's own OpenAPI document. No inline script: the page's CSP allows 'self' only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // never send the document to an outside validator
  });
})();
