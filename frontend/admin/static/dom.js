// DOM helpers. API data only ever reaches the page as text nodes or properties, never markup.

export const $ = (selector, root = document) => root.querySelector(selector);

/** el("tr", {className: "x", dataset: {id: "a"}}, "text", child) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function setText(selector, value) {
  const node = typeof selector === "string" ? $(selector) : selector;
  node.textContent = value === null || value === undefined ? "" : String(value);
}

export function bytes(value) {
  if (value === null || value === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit === 0 || size >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** Runs `work` with `button` disabled; its error (an ApiError's message) goes to `errorNode`. */
export async function busy(button, errorNode, work) {
  button.disabled = true;
  if (errorNode) errorNode.textContent = "";
  try {
    return await work();
  } catch (error) {
    if (errorNode) errorNode.textContent = error.message || String(error);
    return undefined;
  } finally {
    button.disabled = false;
  }
}
