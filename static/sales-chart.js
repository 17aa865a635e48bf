// Sales over time on a <canvas>: orders as bars (left axis), revenue as a line (right axis).
// Colours come from CSS custom properties on the canvas, so the stylesheet owns the look.

import { pad2 } from "./format.js";
import { t } from "./i18n.js";

const PAD = { left: 44, right: 64, top: 14, bottom: 30 };
const ROWS = 4;

// A step of 1, 2 or 5 × 10^k that covers `raw`; whole numbers when `whole`.
function niceStep(raw, whole) {
  if (!(raw > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return whole ? Math.max(1, Math.ceil(step)) : step;
}

function compact(value) {
  if (value >= 1e8) return `${+(value / 1e8).toFixed(1)}亿`;
  if (value >= 1e4) return `${+(value / 1e4).toFixed(1)}万`;
  return String(+value.toFixed(2));
}

export function bucketLabel(start, bucket) {
  if (bucket === "DAY") return `${pad2(start.getMonth() + 1)}-${pad2(start.getDate())}`;
  return `${pad2(start.getHours())}:${pad2(start.getMinutes())}`;
}

export class SalesChart {
  // canvas: the drawing surface; readout: an element that shows the bucket under the pointer.
  constructor(canvas, readout) {
    this.canvas = canvas;
    this.readout = readout;
    this.buckets = [];
    this.bucket = "MINUTE";
    this.hover = -1;
    this.message = "chart.waiting"; // a key of i18n.js, worded when drawn
    this.symbol = "¥";
    new ResizeObserver(() => this.draw()).observe(canvas);
    canvas.addEventListener("mousemove", (event) => this.pointAt(event.offsetX));
    canvas.addEventListener("mouseleave", () => this.pointAt(-1));
  }

  // buckets: [{start: Date, orders, units, revenue: number, revenueText}], oldest first.
  show(buckets, bucket, currency) {
    this.buckets = buckets;
    this.bucket = bucket;
    this.symbol = !currency || currency === "CNY" ? "¥" : `${currency} `;
    this.message = buckets.some((b) => b.orders > 0) ? "" : "chart.empty";
    this.draw();
    this.describe();
  }

  // message: a key of i18n.js.
  clear(message) {
    this.buckets = [];
    this.message = message;
    this.draw();
    this.describe();
  }

  pointAt(x) {
    const n = this.buckets.length;
    const width = this.canvas.clientWidth - PAD.left - PAD.right;
    const index = x < PAD.left || n === 0 ? -1 : Math.floor(((x - PAD.left) / width) * n);
    const hover = index >= 0 && index < n ? index : -1;
    if (hover === this.hover) return;
    this.hover = hover;
    this.draw();
    this.describe();
  }

  describe() {
    const shown = this.buckets[this.hover] || this.buckets[this.buckets.length - 1];
    if (!shown) {
      this.readout.textContent = "";
      return;
    }
    const label = bucketLabel(shown.start, this.bucket);
    const when = this.hover >= 0 ? label : t("chart.now", { when: label });
    this.readout.textContent = t("chart.readout", {
      when, orders: shown.orders, units: shown.units, revenue: shown.revenueText,
    });
  }

  draw() {
    const { canvas } = this;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const style = getComputedStyle(canvas);
    const colour = (name) => style.getPropertyValue(name).trim();
    const plot = { x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right, h: height - PAD.top - PAD.bottom };
    const buckets = this.buckets;
    const orderStep = niceStep(Math.max(0, ...buckets.map((b) => b.orders)) / ROWS, true);
    const revenueStep = niceStep(Math.max(0, ...buckets.map((b) => b.revenue)) / ROWS, false);

    // Grid and both axes' labels.
    ctx.font = `11px ${style.fontFamily}`;
    ctx.lineWidth = 1;
    for (let row = 0; row <= ROWS; row += 1) {
      const y = Math.round(plot.y + plot.h - (row / ROWS) * plot.h) + 0.5;
      ctx.strokeStyle = colour("--chart-grid");
      ctx.beginPath();
      ctx.moveTo(plot.x, y);
      ctx.lineTo(plot.x + plot.w, y);
      ctx.stroke();
      ctx.textBaseline = "middle";
      ctx.fillStyle = colour("--chart-bar");
      ctx.textAlign = "right";
      ctx.fillText(String(row * orderStep), plot.x - 8, y);
      ctx.fillStyle = colour("--chart-line");
      ctx.textAlign = "left";
      ctx.fillText(`${this.symbol}${compact(row * revenueStep)}`, plot.x + plot.w + 8, y);
    }

    const n = buckets.length;
    if (n > 0) {
      const slot = plot.w / n;
      const barWidth = Math.max(1, slot * 0.68);
      const yOf = (value, step) => plot.y + plot.h - (value / (step * ROWS)) * plot.h;

      buckets.forEach((b, i) => {
        if (b.orders <= 0) return;
        const top = yOf(b.orders, orderStep);
        ctx.fillStyle = colour(i === this.hover ? "--chart-bar-hover" : "--chart-bar");
        ctx.fillRect(plot.x + i * slot + (slot - barWidth) / 2, top, barWidth, plot.y + plot.h - top);
      });

      ctx.strokeStyle = colour("--chart-line");
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.beginPath();
      buckets.forEach((b, i) => {
        const x = plot.x + (i + 0.5) * slot;
        const y = yOf(b.revenue, revenueStep);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();

      // Time labels: about six, never overlapping.
      ctx.fillStyle = colour("--chart-text");
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const every = Math.max(1, Math.ceil(n / 6));
      for (let i = n - 1; i >= 0; i -= every) {
        ctx.fillText(bucketLabel(buckets[i].start, this.bucket), plot.x + (i + 0.5) * slot, plot.y + plot.h + 8);
      }
    }

    if (this.message) {
      ctx.fillStyle = colour("--chart-text");
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = `13px ${style.fontFamily}`;
      ctx.fillText(t(this.message), plot.x + plot.w / 2, plot.y + plot.h / 2);
    }
  }
}
