// The gateway's docs page: both services' OpenAPI documents, fetched from
// the gateway itself, so "Try it out" sends requests through the gateway.
// Nothing is loaded from the internet: the assets are the npm package
// swagger-ui-dist, served by nginx, and the online validator is off.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    urls: [
      { url: "/client/openapi.json", name: "client_service" },
      { url: "/order/openapi.json", name: "order_service" },
    ],
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
