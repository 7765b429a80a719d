"use strict";
/**
 * Building DOM nodes without innerHTML: every value that comes from the API is inserted as text,
 * so a symbol or an error message can never become markup.
 */

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class")
      element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function")
      element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An HTML element: h("td", {class: "num"}, "12.5"). */
export function h(tag, attributes = {}, ...children) {
  return append(apply(document.createElement(tag), attributes), children);
}

/** An SVG element, same signature as {@link h}. */
export function svg(tag, attributes = {}, ...children) {
  return append(apply(document.createElementNS(SVG_NS, tag), attributes), children);
}

/** Replace the children of the element with the given id (or element). */
export function fill(target, ...children) {
  const element = typeof target === "string" ? document.getElementById(target) : target;
  element.replaceChildren();
  return append(element, children);
}

/** Show a message in a status region; kind "error" also makes it an alert. */
export function setStatus(target, message, kind = "info") {
  const element = typeof target === "string" ? document.getElementById(target) : target;
  element.textContent = message ?? "";
  element.classList.toggle("is-error", kind === "error" && Boolean(message));
  element.classList.toggle("is-ok", kind === "ok" && Boolean(message));
  element.setAttribute("role", kind === "error" ? "alert" : "status");
}

/** Say something to screen-reader users without moving their focus. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  // Clearing first makes a repeated message be read again.
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/** A table row that spans every column and says why the table is empty. */
export function emptyRow(columns, message) {
  return h("tr", {}, h("td", { class: "empty", colspan: columns }, message));
}

/**
 * Copy each column's header text into its cells' data-label, so that on a phone, where rows are
 * shown as cards, every value still says what it is (the CSS shows the label before it).
 */
export function labelCells(table) {
  const headers = [...table.tHead.rows[0].cells].map((cell) => cell.textContent.replace(/\s+/g, " ").trim());
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((cell, index) => {
      if (!cell.hasAttribute("colspan")) cell.dataset.label = headers[index] ?? "";
    });
  }
}
