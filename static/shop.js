// The demo H5 storefront: a channel's catalog with live stock, a guest order paid through
// WeChat Pay's H5 flow (the simulated provider in the demo), the order's status live, and its
// codes revealed with the order's access token. What a mini-program or H5 developer copies:
// every call is the public GraphQL API, nothing here is privileged.
import { GraphQLSocket } from "./graphql-socket.js";

const CHANNEL = new URLSearchParams(location.search).get("channel") || "h5";
const SAVED = "quanyi-shop-order";
const STATUS = {
  PENDING_PAYMENT: "待支付", PAID: "已支付", FULFILLING: "发货中", DELIVERED: "已发货", CANCELLED: "已取消",
  EXPIRED: "已过期", REFUNDED: "已退款", FAILED: "失败", REVIEW: "审核中", REJECTED: "已拒绝", PENDING_RISK: "风控中",
};
const $ = (selector) => document.querySelector(selector);
const socketUrl = () => `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;

async function gql(query, variables, token) {
  const headers = { "content-type": "application/json", accept: "application/graphql-response+json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const answer = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = await answer.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

const CATALOG = `query Catalog($channel: String!) { products(channel: $channel, first: 20, filter: { kind: CARD_CODE }) {
  edges { node { name skus { id code name kind price { amount currency } stock { available } } } } } }`;
const STOCK = `subscription Stock($channel: String!) { stockChanged(channel: $channel) { skuId available } }`;
const PLACE = `mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) {
  order { id number total { amount } } accessToken userErrors { message } } }`;
const PAY = `mutation Pay($input: CreatePaymentInput!) { createPayment(input: $input) {
  payment { clientParams } userErrors { message } } }`;
const ORDER = `query Order($id: ID!) { order(id: $id) { status number total { amount } } }`;
const FOLLOW = `subscription Follow($id: ID!) { orderStatusChanged(orderId: $id) { status } }`;
const CODES = `query Codes($id: ID!) { order(id: $id) { lines { codes(reveal: true) { number secret } } } }`;

function renderCatalog(products) {
  const list = $("#skus");
  list.replaceChildren();
  for (const { node: product } of products) {
    for (const sku of product.skus.filter((s) => s.kind === "CARD_CODE")) {
      const item = document.createElement("li");
      item.dataset.sku = sku.id;
      item.dataset.code = sku.code;
      const name = Object.assign(document.createElement("span"), { className: "name", textContent: sku.name });
      const price = Object.assign(document.createElement("span"), { className: "price", textContent: `¥${sku.price.amount}` });
      const available = Object.assign(document.createElement("span"), { className: "available" });
      const buy = Object.assign(document.createElement("button"), { type: "button", textContent: "微信支付购买" });
      buy.addEventListener("click", () => buyAndPay(sku.id, buy));
      item.append(name, buy, price, available);
      list.append(item);
      showStock(sku.id, sku.stock.available);
    }
  }
}

function showStock(skuId, available) {
  const item = document.querySelector(`#skus li[data-sku="${CSS.escape(skuId)}"]`);
  if (!item) return;
  item.querySelector(".available").textContent = `库存 ${available}`;
  item.querySelector(".available").dataset.available = String(available);
  item.querySelector("button").disabled = available <= 0;
}

async function buyAndPay(skuId, button) {
  button.disabled = true;
  $("#message").textContent = "";
  try {
    const placed = (await gql(PLACE, { input: { channel: CHANNEL, idempotencyKey: crypto.randomUUID(),
      lines: [{ skuId, quantity: 1 }], buyer: { phone: $("#phone").value.trim() } } })).placeOrder;
    if (placed.userErrors.length) throw new Error(placed.userErrors[0].message);
    sessionStorage.setItem(SAVED, JSON.stringify({ id: placed.order.id, token: placed.accessToken }));
    const started = (await gql(PAY, { input: { orderId: placed.order.id, provider: "WECHAT_PAY", method: "H5" } },
      placed.accessToken)).createPayment;
    if (started.userErrors.length) throw new Error(started.userErrors[0].message);
    // WeChat Pay's H5 flow: the browser goes to h5_url and comes back to redirect_url.
    const url = started.payment.clientParams.h5Url;
    location.assign(`${url}${url.includes("?") ? "&" : "?"}redirect_url=${encodeURIComponent(location.href)}`);
  } catch (error) {
    $("#message").textContent = `下单失败：${error.message}`;
    button.disabled = false;
  }
}

function showStatus(status) {
  $("#order-status").textContent = STATUS[status] || status;
  $("#order-status").dataset.status = status;
}

async function followOrder(saved) {
  $("#order").hidden = false;
  const order = (await gql(ORDER, { id: saved.id }, saved.token)).order;
  $("#order-number").textContent = order.number;
  $("#order-total").textContent = `¥${order.total.amount}`;
  showStatus(order.status);
  const revealWhenDelivered = async (status) => {
    showStatus(status);
    if (status !== "DELIVERED" || $("#codes").childElementCount) return;
    const lines = (await gql(CODES, { id: saved.id }, saved.token)).order.lines;
    for (const code of lines.flatMap((line) => line.codes)) {
      $("#codes").append(Object.assign(document.createElement("li"), { className: "secret", textContent: code.secret }));
    }
  };
  const socket = new GraphQLSocket(socketUrl(), `Bearer ${saved.token}`, () => {});
  socket.subscribe(FOLLOW, { id: saved.id }, { next: (r) => r.data && revealWhenDelivered(r.data.orderStatusChanged.status),
    error: () => {}, complete: () => {} });
  socket.start();
  await revealWhenDelivered(order.status);
  // A change that lands between the query above and the subscription's start is not pushed:
  // until the order settles, read it again every few seconds as well.
  const settled = new Set(["DELIVERED", "PARTIALLY_DELIVERED", "REFUNDED", "CANCELLED", "EXPIRED", "REJECTED", "FAILED"]);
  const recheck = async () => {
    if (settled.has($("#order-status").dataset.status)) return;
    try {
      await revealWhenDelivered((await gql(ORDER, { id: saved.id }, saved.token)).order.status);
    } catch {
      // the next look may fare better; the subscription goes on meanwhile
    }
    setTimeout(recheck, 3000);
  };
  setTimeout(recheck, 3000);
}

async function refreshStock() {
  try {
    const data = await gql(CATALOG, { channel: CHANNEL });
    for (const { node: product } of data.products.edges) {
      for (const sku of product.skus) showStock(sku.id, sku.stock.available);
    }
  } catch {
    // the subscription goes on; the next reconnect reads again
  }
}

async function start() {
  $("#again").addEventListener("click", () => { sessionStorage.removeItem(SAVED); location.assign(location.pathname); });
  const data = await gql(CATALOG, { channel: CHANNEL });
  renderCatalog(data.products.edges);
  // A change that lands between the catalog's read and the subscription's start on the
  // server is not pushed: once the socket is live (again), read the stock once more, after
  // the subscription has had time to start.
  const live = new GraphQLSocket(socketUrl(), undefined, (state) => {
    $("#live").dataset.state = state;
    if (state === "live") setTimeout(refreshStock, 1000);
  });
  live.subscribe(STOCK, { channel: CHANNEL }, { next: (r) => r.data && showStock(r.data.stockChanged.skuId,
    r.data.stockChanged.available), error: () => {}, complete: () => {} });
  live.start();
  const saved = JSON.parse(sessionStorage.getItem(SAVED) || "null");
  if (saved) await followOrder(saved);
}

start().catch((error) => { $("#message").textContent = `加载失败：${error.message}`; });
