// The /dashboard page: an operator's key, one GraphQL socket, live tiles, stock and sales.
//
// Everything comes over the socket on /graphql: the `dashboard` and `stockChanged`
// subscriptions push changes; the catalog (stock to start from), the channels and the
// sales chart are queries sent on the same socket, again after each reconnect.

import { GraphQLSocket, OperationError } from "./graphql-socket.js";
import { clock, count, element, flash, localIso, money } from "./format.js";
import { choose, followCatalog, guessFromPublicCatalog, language, onLanguage, t } from "./i18n.js";
import { SalesChart } from "./sales-chart.js";
import { StockTable } from "./stock-table.js";

const KEY_STORAGE = "quanyi.dashboard.key";

const DASHBOARD = `subscription Dashboard {
  dashboard {
    at ordersLastMinute ordersLastHour riskInterceptions topRiskRules { rule attempts }
    reviewQueue oldestReviewAt
    marginLastHour { amount currency } statementsWithDiscrepancies reconciliationDiscrepancies
    revenueLastMinute { amount currency } revenueLastHour { amount currency }
    topSkus { sku { id code name } unitsSold revenue { amount currency } unitsOrdered }
    lowStock { sku { id code name } available selling }
    failingSuppliers { code failed unreachable }
    alerts { kind severity subject name count since }
  }
}`;
const STOCK = `subscription Stock($channel: String!) {
  stockChanged(channel: $channel) { skuId channel available reserved at }
}`;
const CHANNELS = `query Channels { channels { code name currency } }`;
const SEGMENTS = `query Segments { buyerSegments { segment buyers } }`;
const CATALOG = `query Catalog($channel: String!, $after: String) {
  products(channel: $channel, first: 50, after: $after) {
    edges { node { skus { id code name stock { available reserved } } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
const SALES = `query Sales($from: DateTime!, $to: DateTime!, $bucket: TimeBucket!, $channel: String) {
  salesSummary(from: $from, to: $to, bucket: $bucket, channel: $channel) {
    start orders paidOrders units revenue { amount currency }
  }
}`;

// The chart's periods: how many buckets, where the current one starts (in this browser's
// time zone, which the server aligns buckets to), and how often to ask again.
const RANGES = {
  MINUTE: { count: 60, every: 15e3, start: (d) => d.setSeconds(0, 0), back: (d, n) => d.setMinutes(d.getMinutes() - n) },
  HOUR: { count: 24, every: 60e3, start: (d) => d.setMinutes(0, 0, 0), back: (d, n) => d.setHours(d.getHours() - n) },
  DAY: { count: 30, every: 300e3, start: (d) => d.setHours(0, 0, 0, 0), back: (d, n) => d.setDate(d.getDate() - n) },
};

const $ = (selector) => document.querySelector(selector);

const page = {
  form: $("#connect"),
  lang: $("#lang"),
  alerts: $("#alerts"),
  key: $("#admin-key"),
  connectButton: $("#connect-button"),
  disconnectButton: $("#disconnect-button"),
  status: $("#status"),
  statusText: $("#status-text"),
  error: $("#error"),
  topSkus: $("#top-skus"),
  lowStock: $("#low-stock"),
  stock: new StockTable($("#stock tbody")),
  stockChannel: $("#stock-channel"),
  chartChannel: $("#chart-channel"),
  rangeButtons: document.querySelectorAll("[data-range]"),
  updated: $("#updated"),
  chartTotal: $("#chart-total"),
  chart: new SalesChart($("#sales-chart"), $("#chart-readout")),
};

const state = {
  socket: null,
  stopStock: null,
  range: "MINUTE",
  salesTimer: 0,
  salesSoon: 0,
  errors: new Map(), // source → message
  snapshot: null,
  status: ["idle", ""],
  stockAt: null,
};

// ---- status and errors ------------------------------------------------------

function setStatus(name, detail) {
  state.status = [name, detail];
  page.status.dataset.state = name;
  const word = t(`status.${name}`);
  page.statusText.textContent = detail ? `${word} — ${detail}` : word;
}

function setError(source, message) {
  if (message) state.errors.set(source, message);
  else state.errors.delete(source);
  page.error.hidden = state.errors.size === 0;
  page.error.textContent = [...state.errors.values()].join(" · ");
}

function describe(error) {
  return error instanceof OperationError ? error.message : String(error?.message || error);
}

// ---- connection -------------------------------------------------------------

function socketUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
}

function connect(key) {
  disconnect(false);
  sessionStorage.setItem(KEY_STORAGE, key);
  page.connectButton.disabled = true;
  page.disconnectButton.disabled = false;
  const socket = new GraphQLSocket(socketUrl(), `Bearer ${key}`, (name, detail, code) => onSocketState(socket, name, detail, code));
  state.socket = socket;
  socket.subscribe(DASHBOARD, {}, {
    next: (result) => {
      if (result.errors?.length) setError("dashboard", `dashboard: ${describe(new OperationError(result.errors))}`);
      else {
        setError("dashboard", null);
        showSnapshot(result.data.dashboard);
      }
    },
    error: (errors) => setError("dashboard", `dashboard: ${describe(new OperationError(errors))}`),
  });
  followStock(page.stockChannel.value || "web");
  socket.start();
}

function onSocketState(socket, name, detail, closeCode) {
  if (socket !== state.socket) return;
  if (name === "refused" && closeCode === 4403) detail = t("socket.refused");
  setStatus(name, detail);
  if (name === "live") {
    setError("socket", null);
    refresh();
  } else if (name === "refused") {
    sessionStorage.removeItem(KEY_STORAGE); // a reload must not offer the same key again
    setError("socket", t("error.refused", { detail }));
    page.connectButton.disabled = false;
    clearInterval(state.salesTimer);
  } else if (name === "retrying") {
    setError("socket", t("error.lost", { detail }));
  }
}

// What a subscription cannot replay: channels, stock to start from, the chart.
function refresh() {
  loadChannels();
  loadCatalog(page.stockChannel.value || "web");
  loadSales();
  loadSegments();
  clearInterval(state.salesTimer);
  state.salesTimer = setInterval(loadSales, RANGES[state.range].every);
}

function disconnect(forget) {
  if (state.socket) state.socket.stop();
  state.socket = null;
  state.stopStock = null;
  clearInterval(state.salesTimer);
  clearTimeout(state.salesSoon);
  if (!forget) return;
  sessionStorage.removeItem(KEY_STORAGE);
  page.key.value = "";
  page.connectButton.disabled = false;
  page.disconnectButton.disabled = true;
  state.errors.clear();
  setError("socket", null);
  setStatus("idle", "");
}

// ---- channels ---------------------------------------------------------------

async function loadChannels() {
  try {
    const { channels } = await state.socket.request(CHANNELS);
    fillSelect(page.stockChannel, channels, null);
    fillSelect(page.chartChannel, channels, t("chart.all"));
    setError("channels", null);
  } catch (error) {
    setError("channels", `channels: ${describe(error)}`);
  }
}

function fillSelect(select, channels, allLabel) {
  const chosen = select.value;
  select.replaceChildren();
  if (allLabel) select.append(new Option(allLabel, ""));
  for (const channel of channels) select.append(new Option(`${channel.code} · ${channel.name}`, channel.code));
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// ---- buyer segments (operators' keys only; profiles are recomputed every few minutes) ----

async function loadSegments() {
  const list = document.getElementById("buyer-segments");
  try {
    const { buyerSegments } = await state.socket.request(SEGMENTS);
    list.replaceChildren(...buyerSegments.map(({ segment, buyers }) => {
      const row = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = t(`segment.${segment}`);
      const value = document.createElement("strong");
      value.textContent = count(buyers);
      row.append(name, value);
      return row;
    }));
  } catch {
    // Another role's key: the card stays empty; nothing else on the page depends on it.
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.textContent = "—";
    list.replaceChildren(empty);
  }
}

// ---- live figures -----------------------------------------------------------

function showSnapshot(snapshot) {
  const before = state.snapshot;
  state.snapshot = snapshot;
  setTile("orders-minute", count(snapshot.ordersLastMinute));
  setTile("orders-hour", count(snapshot.ordersLastHour));
  setTile("revenue-minute", money(snapshot.revenueLastMinute));
  setTile("revenue-hour", money(snapshot.revenueLastHour));
  setTile("review-queue", count(snapshot.reviewQueue));
  document.querySelector('[data-tile="review-queue"]').classList.toggle("alert", snapshot.reviewQueue > 0);
  document.querySelector("[data-review-oldest]").textContent = snapshot.oldestReviewAt
    ? t("tile.review-queue.oldest", { time: when(new Date(snapshot.oldestReviewAt)) }) : "";
  setTile("risk", count(snapshot.riskInterceptions));
  document.querySelector('[data-tile="risk"]').classList.toggle("alert", snapshot.riskInterceptions > 0);
  showRiskDetail(snapshot.topRiskRules || []);
  setTile("margin-hour", money(snapshot.marginLastHour));
  setTile("reconciliation", count(snapshot.reconciliationDiscrepancies));
  document.querySelector('[data-tile="reconciliation"]').classList.toggle("alert", snapshot.statementsWithDiscrepancies > 0);
  showAlerts(snapshot.alerts || [], snapshot.failingSuppliers || []);
  showTopSkus(snapshot.topSkus || []);
  showLowStock(snapshot.lowStock || []);
  showUpdated();
  if (before && salesKey(before) !== salesKey(snapshot)) {
    // Orders placed or paid: the chart's current bucket changed too.
    clearTimeout(state.salesSoon);
    state.salesSoon = setTimeout(loadSales, 500);
  }
}

function showRiskDetail(rules) {
  // Rule names are operators' text: set as text, never as markup.
  const top = rules.slice(0, 3).map((r) => `${r.rule} (${count(r.attempts)})`).join(", ");
  document.querySelector("[data-risk-detail]").textContent = top ? t("tile.risk.rules", { rules: top }) : "";
}

// A time of today as its clock; an earlier one with its date.
function when(date) {
  const today = new Date().toDateString() === date.toDateString();
  return today ? clock(date) : `${localIso(date).slice(5, 10)} ${clock(date).slice(0, 5)}`;
}

function showAlerts(alerts, failing) {
  const unreachable = new Set(failing.filter((s) => s.unreachable > 0 && s.unreachable === s.failed).map((s) => s.code));
  const rows = alerts.map((alert) => {
    const key = alert.kind === "SUPPLIER_FAILING" && unreachable.has(alert.subject)
      ? "alert.SUPPLIER_FAILING.unreachable" : `alert.${alert.kind}`;
    // Names and codes are operators' text: set as text, never as markup.
    const text = t(key, {
      name: alert.name, subject: alert.subject, count: count(alert.count),
      time: alert.since ? when(new Date(alert.since)) : "",
    });
    const row = element("li", `alert ${alert.severity.toLowerCase()}`, text);
    row.dataset.alert = alert.kind;
    if (alert.subject) row.dataset.subject = alert.subject;
    return row;
  });
  page.alerts.dataset.count = String(rows.length);
  page.alerts.querySelector("ul").replaceChildren(...(rows.length ? rows : [element("li", "empty", t("alerts.none"))]));
}

function showUpdated() {
  const parts = [];
  if (state.snapshot) parts.push(t("footer.snapshot", { time: clock(new Date(state.snapshot.at)) }));
  if (state.stockAt) parts.push(t("footer.stock", { time: clock(state.stockAt) }));
  page.updated.textContent = parts.length ? parts.join(" · ") : t("footer.none");
}

const salesKey = (s) => [s.ordersLastMinute, s.ordersLastHour, s.revenueLastMinute.amount, s.revenueLastHour.amount].join("|");

function setTile(name, text) {
  const tile = document.querySelector(`[data-tile="${name}"]`);
  const value = tile.querySelector(".value");
  if (value.textContent === text) return;
  const first = value.textContent === "—";
  value.textContent = text;
  if (!first) flash(tile);
}

function showTopSkus(top) {
  const rows = top.map((entry) => {
    const row = element("li");
    row.dataset.sku = entry.sku.code;
    const name = element("span", "name", entry.sku.name);
    name.append(element("span", "code", entry.sku.code));
    const figure = element("span", "figure", t("top.figure", {
      sold: count(entry.unitsSold), revenue: money(entry.revenue), ordered: count(entry.unitsOrdered),
    }));
    figure.dataset.sold = String(entry.unitsSold);
    figure.dataset.ordered = String(entry.unitsOrdered);
    figure.dataset.revenue = entry.revenue.amount;
    row.append(name, figure);
    return row;
  });
  page.topSkus.replaceChildren(...(rows.length ? rows : [element("li", "empty", t("top.empty"))]));
  page.stock.setHot(top.map((entry) => entry.sku.id));
}

function showLowStock(low) {
  const rows = low.map((entry) => {
    const row = element("li");
    row.dataset.sku = entry.sku.code;
    const name = element("span", "name", entry.sku.name);
    name.append(element("span", "code", entry.sku.code));
    const left = t("low.left", { count: count(entry.available) });
    row.append(name, element("span", `figure ${entry.available > 0 ? "low" : "out"}`,
      entry.selling ? `${left} · ${t("low.selling")}` : left));
    return row;
  });
  page.lowStock.replaceChildren(...(rows.length ? rows : [element("li", "empty", t("low.empty"))]));
}

// ---- stock ------------------------------------------------------------------

function followStock(channel) {
  if (state.stopStock) state.stopStock();
  state.stopStock = state.socket.subscribe(STOCK, { channel }, {
    next: (result) => {
      if (result.errors?.length) setError("stock", `stock: ${describe(new OperationError(result.errors))}`);
      else stockChanged(result.data.stockChanged);
    },
    error: (errors) => setError("stock", `stock: ${describe(new OperationError(errors))}`),
  });
}

async function loadCatalog(channel) {
  const asked = Date.now();
  const found = [];
  try {
    let after = null;
    do {
      const { products } = await state.socket.request(CATALOG, { channel, after });
      for (const edge of products.edges) found.push(...edge.node.skus);
      after = products.pageInfo.hasNextPage ? products.pageInfo.endCursor : null;
    } while (after);
    setError("catalog", null);
  } catch (error) {
    setError("catalog", `catalog: ${describe(error)}`);
    return;
  }
  followCatalog(found.map((sku) => sku.name));
  if (channel !== (page.stockChannel.value || "web")) return; // the channel changed meanwhile
  page.stock.load(found, asked);
}

function stockChanged(change) {
  const at = page.stock.change(change);
  if (!at) return;
  state.stockAt = at;
  showUpdated();
}

// ---- sales chart ------------------------------------------------------------

async function loadSales() {
  if (!state.socket || state.socket.stopped) return;
  const range = state.range;
  const { count: buckets, start, back } = RANGES[range];
  const now = new Date();
  const from = new Date(now);
  start(from);
  back(from, buckets - 1);
  const channel = page.chartChannel.value || null;
  try {
    const { salesSummary } = await state.socket.request(SALES, {
      from: localIso(from), to: localIso(new Date(now.getTime() + 1000)), bucket: range, channel,
    });
    if (range !== state.range) return;
    // Every bucket of the period comes back, empty ones included, oldest first.
    const slots = salesSummary.map((bucket) => ({
      start: new Date(bucket.start),
      orders: bucket.orders,
      units: bucket.units,
      // Number() only places the line on the canvas; the readout keeps the exact amount.
      revenue: Number(bucket.revenue.amount),
      revenueText: money(bucket.revenue),
    }));
    const currency = salesSummary[0]?.revenue.currency || "CNY";
    page.chart.show(slots, range, currency);
    const placed = slots.reduce((sum, slot) => sum + slot.orders, 0);
    const paid = salesSummary.reduce((sum, bucket) => sum + bucket.paidOrders, 0);
    state.chartTotal = { placed, paid };
    page.chartTotal.textContent = t("chart.total", { placed: count(placed), paid: count(paid) });
    setError("sales", null);
  } catch (error) {
    page.chart.clear("chart.unavailable");
    state.chartTotal = null;
    page.chartTotal.textContent = "";
    setError("sales", `sales: ${describe(error)}`);
  }
}

function chooseRange(range) {
  state.range = range;
  for (const button of page.rangeButtons) button.setAttribute("aria-pressed", String(button.dataset.range === range));
  clearInterval(state.salesTimer);
  if (!state.socket) return;
  loadSales();
  state.salesTimer = setInterval(loadSales, RANGES[range].every);
}

// ---- wiring -----------------------------------------------------------------

page.form.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = page.key.value.trim();
  if (key) connect(key);
});
page.disconnectButton.addEventListener("click", () => disconnect(true));
page.stockChannel.addEventListener("change", () => {
  if (!state.socket) return;
  page.stock.clear();
  followStock(page.stockChannel.value);
  loadCatalog(page.stockChannel.value);
});
page.chartChannel.addEventListener("change", () => loadSales());
for (const button of page.rangeButtons) button.addEventListener("click", () => chooseRange(button.dataset.range));

page.lang.addEventListener("change", () => choose(page.lang.value));
onLanguage(() => {
  page.lang.value = language();
  setStatus(...state.status);
  if (state.snapshot) showSnapshot(state.snapshot);
  else showUpdated();
  const all = page.chartChannel.querySelector('option[value=""]');
  if (all) all.textContent = t("chart.all");
  if (state.chartTotal) {
    page.chartTotal.textContent = t("chart.total", { placed: count(state.chartTotal.placed), paid: count(state.chartTotal.paid) });
  }
  page.chart.draw();
  page.chart.describe();
});
guessFromPublicCatalog();

const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) {
  page.key.value = saved;
  connect(saved);
}
