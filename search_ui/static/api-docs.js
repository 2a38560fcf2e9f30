// Swagger UI on /api/docs: the OpenAPI document with "try it out". Requests carry the
// page's CSRF token, so state-changing calls work from a signed-in browser too.
(function () {
  var box = document.getElementById("swagger-ui");
  if (!box || typeof SwaggerUIBundle === "undefined") { return; }
  var meta = document.querySelector("meta[name=csrf-token]");
  SwaggerUIBundle({
    url: box.dataset.url,
    domNode: box,
    deepLinking: true,
    defaultModelsExpandDepth: 1,
    requestInterceptor: function (req) {
      if (meta) { req.headers["X-CSRF-Token"] = meta.content; }
      return req;
    }
  });
})();
