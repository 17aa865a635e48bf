// The stock of the hot SKUs of one channel: the catalog's figures to start from, then
// each stockChanged pushed by the server.

import { clock, count, element, flash } from "./format.js";

const ROWS = 12;
const LOW_SHARE = 0.2; // below this share of what it started with, a SKU's bar turns amber

export class StockTable {
  constructor(tbody) {
    this.tbody = tbody;
    this.skus = new Map(); // SKU id → {id, code, name, available, reserved, start, changedAt}
    this.hot = []; // SKU ids of the top sellers, best first
  }

  clear() {
    this.skus = new Map();
    this.render();
  }

  // skus: the catalog's [{id, code, name, stock {available reserved}}], asked for at `asked` (ms).
  load(skus, asked) {
    const known = this.skus;
    this.skus = new Map();
    for (const sku of skus) {
      const seen = known.get(sku.id);
      // A change pushed after the question was asked is newer than the answer.
      const newer = seen?.changedAt && seen.changedAt.getTime() > asked;
      this.skus.set(sku.id, {
        id: sku.id,
        code: sku.code,
        name: sku.name,
        available: newer ? seen.available : sku.stock.available,
        reserved: newer ? seen.reserved : sku.stock.reserved,
        start: seen?.start ?? Math.max(1, sku.stock.available + sku.stock.reserved),
        changedAt: seen?.changedAt ?? null,
      });
    }
    this.render();
  }

  // change: a StockChange {skuId available reserved at}. Returns its time, or null when the
  // SKU is not in the catalog this page loaded (the next refresh brings it).
  change(change) {
    const sku = this.skus.get(change.skuId);
    if (!sku) return null;
    sku.available = change.available;
    sku.reserved = change.reserved;
    sku.changedAt = new Date(change.at);
    this.render(sku.id);
    return sku.changedAt;
  }

  setHot(ids) {
    this.hot = ids;
    this.render();
  }

  // Top sellers first, then the catalog's order.
  shown() {
    const chosen = this.hot.filter((id) => this.skus.has(id)).slice(0, ROWS);
    for (const id of this.skus.keys()) {
      if (chosen.length >= ROWS) break;
      if (!chosen.includes(id)) chosen.push(id);
    }
    return chosen.map((id) => this.skus.get(id));
  }

  render(changedId) {
    const skus = this.shown();
    if (!skus.length) {
      const empty = element("tr", "empty");
      const cell = element("td", "", "—");
      cell.colSpan = 6;
      empty.append(cell);
      this.tbody.replaceChildren(empty);
      return;
    }
    this.tbody.replaceChildren(...skus.map((sku) => {
      const row = element("tr");
      row.dataset.sku = sku.code;
      row.append(
        element("td", "code", sku.code),
        element("td", "", sku.name),
        element("td", "num available", count(sku.available)),
        element("td", "num reserved", count(sku.reserved)),
        levelCell(sku),
        element("td", "when", sku.changedAt ? clock(sku.changedAt) : ""),
      );
      if (sku.id === changedId) flash(row);
      return row;
    }));
  }
}

function levelCell(sku) {
  const share = Math.min(1, sku.available / sku.start);
  const level = element("div", `level${sku.available === 0 ? " out" : share < LOW_SHARE ? " low" : ""}`);
  const fill = element("span");
  fill.style.width = `${Math.round(share * 100)}%`; // CSSOM, which the page's policy allows
  level.append(fill);
  const cell = element("td");
  cell.append(level);
  return cell;
}
