// The dashboard's words in Chinese and English.
//
// The language is the operator's choice when they made one (kept in this browser), else the
// catalog's: Chinese for a catalog whose products are named in Chinese, English otherwise.
// Elements marked data-i18n="key" take the key's text; the rest is worded by the scripts
// through t(key, values).

const CHOICE_STORAGE = "quanyi.dashboard.lang";
const HAN = /\p{Script=Han}/u;

const WORDS = {
  zh: {
    "page.title": "权益 · 实时看板",
    "page.subtitle": "实时看板",
    "lang.label": "语言",
    "key.label": "管理员密钥",
    "key.connect": "连接",
    "key.disconnect": "断开",
    "key.hint": "仅保存在本标签页（sessionStorage）。",
    "status.idle": "未连接",
    "status.connecting": "连接中…",
    "status.live": "实时",
    "status.retrying": "重新连接中",
    "status.refused": "被拒绝",
    "status.closed": "未连接",
    "tiles.label": "实时数据，全部渠道",
    "tile.orders-minute": "订单 · 最近 1 分钟",
    "tile.orders-hour": "订单 · 最近 1 小时",
    "tile.orders.note": "下单数，全部渠道（含未支付）",
    "tile.revenue-minute": "收入 · 最近 1 分钟",
    "tile.revenue-hour": "收入 · 最近 1 小时",
    "tile.revenue.note": "该时段内支付的订单金额（人民币）",
    "tile.review-queue": "待审核订单",
    "tile.review-queue.note": "当前等待人工审核的订单，不限时间",
    "tile.review-queue.oldest": "最早一单下于 {time}",
    "tile.risk": "风控拦截",
    "tile.risk.note": "最近 1 小时被风控拒绝的下单尝试",
    "tile.risk.rules": "最多命中：{rules}",
    "tile.margin-hour": "毛利 · 最近 1 小时",
    "tile.margin.note": "交付入账的毛利，减去退款",
    "tile.reconciliation": "对账差异",
    "tile.reconciliation.note": "未付款结算单中的差异条数",
    "alerts.title": "告警",
    "alerts.none": "暂无告警",
    "alert.TOPUP_WAITING": "{count} 笔已支付的直充在等待可用的供应商连接，最早一笔从 {time} 开始等待",
    "alert.OUT_OF_STOCK": "{name}（{subject}）已售罄，仍有买家下单",
    "alert.LOW_STOCK": "{name}（{subject}）仅剩 {count} 件，正在热销",
    "alert.SUPPLIER_FAILING": "供应商 {name}（{subject}）最近 15 分钟失败 {count} 次",
    "alert.SUPPLIER_FAILING.unreachable": "供应商 {name}（{subject}）没有可用的连接配置，直充订单在等待",
    "alert.REVIEW_QUEUE": "{count} 个订单等待风控审核，最早一单下于 {time}",
    "chart.title": "销售",
    "chart.channel": "销售图的渠道",
    "chart.all": "全部渠道",
    "chart.period": "时段",
    "chart.orders": "下单数（按下单时间）",
    "chart.revenue": "收入（其中已支付订单）",
    "chart.total": "下单 {placed} 笔 · 已支付 {paid} 笔",
    "chart.waiting": "等待数据",
    "chart.empty": "该时段没有销售",
    "chart.unavailable": "销售数据不可用",
    "chart.now": "现在（{when}）",
    "chart.readout": "{when} · {orders} 笔 · {units} 件 · {revenue}",
    "top.title": "热销 SKU · 最近 1 小时",
    "top.figure": "售出 {sold} 件 · {revenue} · 下单 {ordered} 件",
    "top.empty": "最近 1 小时没有销售",
    "low.title": "库存不足",
    "segments.title": "用户分层",
    "segment.NEW": "新客",
    "segment.ACTIVE": "活跃",
    "segment.AT_RISK": "流失风险",
    "segment.HIGH_VALUE": "高价值",
    "segment.SUSPICIOUS": "可疑",
    "segment.DORMANT": "沉睡",
    "low.left": "剩 {count} 件",
    "low.selling": "在售",
    "low.empty": "所有 SKU 库存充足",
    "stock.title": "热门 SKU 库存",
    "stock.channel": "库存表的渠道",
    "stock.sku": "SKU",
    "stock.name": "名称",
    "stock.available": "可售",
    "stock.reserved": "已预留（未支付或待交付）",
    "stock.level": "库存水平",
    "stock.changed": "变动时间",
    "footer.none": "尚无快照",
    "footer.snapshot": "快照时间 {time}",
    "footer.stock": "库存变动 {time}",
    "error.refused": "未连接：{detail}",
    "error.lost": "连接中断：{detail}",
    "socket.refused": "密钥被拒绝：未知、已吊销或无权访问",
  },
  en: {
    "page.title": "Quanyi · live dashboard",
    "page.subtitle": "live dashboard",
    "lang.label": "Language",
    "key.label": "Admin key",
    "key.connect": "Connect",
    "key.disconnect": "Disconnect",
    "key.hint": "Kept in this tab only (sessionStorage).",
    "status.idle": "Not connected",
    "status.connecting": "Connecting…",
    "status.live": "Live",
    "status.retrying": "Reconnecting",
    "status.refused": "Refused",
    "status.closed": "Not connected",
    "tiles.label": "Live figures, all channels",
    "tile.orders-minute": "Orders · last minute",
    "tile.orders-hour": "Orders · last hour",
    "tile.orders.note": "placed, all channels (paid or not)",
    "tile.revenue-minute": "Revenue · last minute",
    "tile.revenue-hour": "Revenue · last hour",
    "tile.revenue.note": "orders paid in the period (CNY)",
    "tile.review-queue": "Review queue",
    "tile.review-queue.note": "orders waiting for an operator's review now, however old",
    "tile.review-queue.oldest": "oldest placed {time}",
    "tile.risk": "Risk interceptions",
    "tile.risk.note": "order attempts the risk check rejected, last hour",
    "tile.risk.rules": "most: {rules}",
    "tile.margin-hour": "Margin · last hour",
    "tile.margin.note": "posted by deliveries, less refunds",
    "tile.reconciliation": "Reconciliation",
    "tile.reconciliation.note": "differences in unpaid statements",
    "alerts.title": "Alerts",
    "alerts.none": "No alerts",
    "alert.TOPUP_WAITING": "{count} paid top-ups wait for a supplier with a usable connection, the oldest since {time}",
    "alert.OUT_OF_STOCK": "{name} ({subject}) is sold out while buyers order it",
    "alert.LOW_STOCK": "{name} ({subject}) has {count} left and is selling",
    "alert.SUPPLIER_FAILING": "supplier {name} ({subject}) failed {count} times in 15 minutes",
    "alert.SUPPLIER_FAILING.unreachable": "supplier {name} ({subject}) has no usable connection: its top-ups are waiting",
    "alert.REVIEW_QUEUE": "{count} orders wait for risk review, the oldest placed {time}",
    "chart.title": "Sales",
    "chart.channel": "Channel of the sales chart",
    "chart.all": "All channels",
    "chart.period": "Period",
    "chart.orders": "orders placed (by time placed)",
    "chart.revenue": "revenue of those paid",
    "chart.total": "{placed} orders placed · {paid} paid",
    "chart.waiting": "Waiting for data",
    "chart.empty": "No sales in this period",
    "chart.unavailable": "Sales are not available",
    "chart.now": "now ({when})",
    "chart.readout": "{when} · {orders} orders · {units} units · {revenue}",
    "top.title": "Top SKUs · last hour",
    "top.figure": "{sold} sold · {revenue} · {ordered} ordered",
    "top.empty": "No sales in the last hour",
    "low.title": "Low stock",
    "segments.title": "Buyers by segment",
    "segment.NEW": "new",
    "segment.ACTIVE": "active",
    "segment.AT_RISK": "at risk",
    "segment.HIGH_VALUE": "high value",
    "segment.SUSPICIOUS": "suspicious",
    "segment.DORMANT": "dormant",
    "low.left": "{count} left",
    "low.selling": "selling",
    "low.empty": "Every SKU is well stocked",
    "stock.title": "Stock of hot SKUs",
    "stock.channel": "Channel of the stock table",
    "stock.sku": "SKU",
    "stock.name": "Name",
    "stock.available": "Available",
    "stock.reserved": "Reserved (unpaid or being delivered)",
    "stock.level": "Level",
    "stock.changed": "Changed",
    "footer.none": "No snapshot yet",
    "footer.snapshot": "Snapshot at {time}",
    "footer.stock": "stock changed {time}",
    "error.refused": "Not connected: {detail}",
    "error.lost": "Connection lost: {detail}",
    "socket.refused": "the key was refused: unknown, revoked, or not allowed here",
  },
};

export const LANGUAGES = { zh: "中文", en: "English" };

let current = localStorage.getItem(CHOICE_STORAGE) || (navigator.language?.startsWith("zh") ? "zh" : "en");
// Where the language came from: "choice", "catalog" or "browser" (until the catalog is known).
document.documentElement.dataset.languageFrom = chosen() ? "choice" : "browser";
const listeners = [];

export function language() {
  return current;
}

export function t(key, values = {}) {
  const text = WORDS[current][key] ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (values[name] === undefined ? "" : String(values[name])));
}

// Calls `render` now and after every change of language.
export function onLanguage(render) {
  listeners.push(render);
  render();
}

function use(lang) {
  if (!WORDS[lang] || lang === current) return;
  current = lang;
  apply();
}

function apply() {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  document.title = t("page.title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  for (const render of listeners) render();
}

// The operator picked a language: it stays, whatever the catalog.
export function choose(lang) {
  localStorage.setItem(CHOICE_STORAGE, lang);
  document.documentElement.dataset.languageFrom = "choice";
  use(lang);
}

export function chosen() {
  return localStorage.getItem(CHOICE_STORAGE) !== null;
}

// The catalog's language, from names in it, unless the operator chose one.
export function followCatalog(names) {
  if (chosen() || !names.length) return;
  document.documentElement.dataset.languageFrom = "catalog";
  use(names.some((name) => HAN.test(name)) ? "zh" : "en");
}

// Before any key is given: the names of a public channel's products, which anyone may read.
export async function guessFromPublicCatalog() {
  if (chosen()) return;
  try {
    const ask = async (query, variables) => {
      const response = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query, variables }),
      });
      return (await response.json()).data;
    };
    const { channels } = await ask("{ channels { code public } }");
    const open = channels.find((channel) => channel.public);
    if (!open) return;
    const { products } = await ask(
      "query Names($channel: String!) { products(channel: $channel, first: 10) { edges { node { name } } } }",
      { channel: open.code },
    );
    followCatalog(products.edges.map((edge) => edge.node.name));
  } catch {
    // No answer: the browser's language stays until the operator's catalog loads.
  }
}

apply();
