// DOM helpers. `h` builds elements from a tag, attributes and children; every string child
// becomes a text node, so data from the fleet can never be read as markup.

/**
 * h('a', { href: '/x', class: 'cell', title: 'tip' }, 'text', otherNode)
 * Attributes are set with setAttribute (values are plain strings, never parsed); `on*`
 * keys that hold functions become event listeners; null/undefined/false attributes and
 * children are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function' && name.startsWith('on')) {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.append(child);
    else element.append(document.createTextNode(String(child)));
  }
}

/** Sets an element's text (and, optionally, its tooltip) only when it changed. */
export function setText(element, text, title) {
  const value = String(text);
  if (element.textContent !== value) element.textContent = value;
  if (title !== undefined && element.title !== title) element.title = title;
}

/** Replaces an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}
