// The admin API's reference page: Swagger UI (npm's swagger-ui-dist) reading /api/openapi.json.
// Try-it-out sends the token pasted under "Authorize" (an admin's access token, or an API token).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
