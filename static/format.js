// How the dashboard writes numbers, money and times, and builds its elements.

export const pad2 = (n) => String(n).padStart(2, "0");

export const clock = (date) => `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;

export const count = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));

// Money stays a decimal string from the server: grouped for reading, never through a float.
export function money(value) {
  if (!value) return "—";
  const [whole, fraction] = String(value.amount).split(".");
  const negative = whole.startsWith("-");
  const digits = (negative ? whole.slice(1) : whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const symbol = value.currency === "CNY" ? "¥" : `${value.currency} `;
  return `${negative ? "-" : ""}${symbol}${digits}${fraction === undefined ? "" : "." + fraction}`;
}

// An ISO 8601 time with this browser's UTC offset, e.g. 2026-01-01T00:00:00+08:00.
export function localIso(date) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const zone = `${sign}${pad2(Math.floor(Math.abs(offset) / 60))}:${pad2(Math.abs(offset) % 60)}`;
  const day = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`;
  return `${day}T${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}${zone}`;
}

export function element(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

const FLASH_MS = 900;

// Highlights what just changed, briefly (the stylesheet fades it out).
export function flash(node) {
  node.classList.add("changed");
  setTimeout(() => node.classList.remove("changed"), FLASH_MS);
}
