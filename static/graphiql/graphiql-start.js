// Starts GraphiQL on this gateway's own /graphql, over HTTP for queries and mutations and
// over WebSocket (graphql-transport-ws) for subscriptions. A key typed into the Headers tab
// as {"Authorization": "Bearer qy_..."} goes with every request and in the socket's
// connection_init payload.
(function start() {
  "use strict";
  const endpoint = new URL("/graphql", window.location.href);
  const socket = new URL(endpoint);
  socket.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  const firstQuery = [
    "# The catalog of the public channel web: press Run (Ctrl-Enter).",
    "# Partner and operator fields need a key, in Headers below:",
    '# {"Authorization": "Bearer qy_..."}',
    "{",
    '  products(channel: "web", first: 3) {',
    "    edges {",
    "      node {",
    "        name",
    "        skus {",
    "          code",
    "          price { amount currency }",
    "          stock { available }",
    "        }",
    "      }",
    "    }",
    "  }",
    "}",
    "",
  ].join("\n");

  const fetcher = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: firstQuery,
    defaultEditorToolsVisibility: true,
  }));
})();
