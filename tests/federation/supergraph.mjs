// Composes Quanyi's subgraph with another with Apollo's own composition library, serves the
// supergraph through Apollo's gateway, and runs queries across both.
//
//   node supergraph.mjs QUANYI_URL OTHER_URL < queries.json > answers.json
//
// queries.json: {"authorization": "Bearer …" | null, "queries": [{"query": "…", "variables": {}}]}.
// The caller's authorization is forwarded to Quanyi on every subgraph request.
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { parse } from "graphql";

const [quanyiUrl, otherUrl] = process.argv.slice(2);
const input = JSON.parse(readFileSync(0, "utf8"));

async function sdl(url, authorization) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ query: "{ _service { sdl } }" }),
  });
  const body = await response.json();
  if (!body.data) throw new Error(`${url}: ${JSON.stringify(body)}`);
  return body.data._service.sdl;
}

const subgraphs = [
  { name: "quanyi", url: quanyiUrl, typeDefs: parse(await sdl(quanyiUrl, input.authorization)) },
  { name: "reviews", url: otherUrl, typeDefs: parse(await sdl(otherUrl, null)) },
];
const composed = composeServices(subgraphs);
if (composed.errors) {
  console.log(JSON.stringify({ compositionErrors: composed.errors.map((e) => e.message) }));
  process.exit(0);
}

class Forwarding extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) request.http.headers.set("authorization", context.authorization);
  }
}
const gateway = new ApolloGateway({
  supergraphSdl: composed.supergraphSdl,
  buildService: ({ url }) => new Forwarding({ url }),
});
const server = new ApolloServer({ gateway });
await server.start();
const answers = [];
for (const { query, variables } of input.queries) {
  const response = await server.executeOperation(
    { query, variables },
    { contextValue: { authorization: input.authorization } },
  );
  answers.push(response.body.singleResult);
}
await server.stop();
console.log(JSON.stringify({ answers }));
