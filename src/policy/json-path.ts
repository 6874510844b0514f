// Dot paths into parsed JSON (`metadata.tenant`, `messages.0.content`): set creates missing objects, remove deletes.
// Segments were checked at config load, so `__proto__` never reaches here.

type Json = Record<string, unknown> | unknown[];

const isContainer = (v: unknown): v is Json => typeof v === 'object' && v !== null;

function child(parent: Json, segment: string): unknown {
  return Array.isArray(parent) ? parent[Number(segment)] : parent[segment];
}

function assign(parent: Json, segment: string, value: unknown): void {
  if (Array.isArray(parent)) parent[Number(segment)] = value;
  else parent[segment] = value;
}

/** Sets the value at the path, creating objects on the way; false when a non-object is in the way. */
export function setPath(root: Json, segments: readonly string[], value: unknown): boolean {
  let node: Json = root;
  for (let i = 0; i < segments.length - 1; i++) {
    let next = child(node, segments[i]);
    if (next === undefined) {
      next = {};
      assign(node, segments[i], next);
    }
    if (!isContainer(next)) return false;
    node = next;
  }
  assign(node, segments[segments.length - 1], value);
  return true;
}

/** Removes the value at the path (an array element is spliced out); false when there was none. */
export function removePath(root: Json, segments: readonly string[]): boolean {
  let node: unknown = root;
  for (let i = 0; i < segments.length - 1; i++) {
    node = isContainer(node) ? child(node, segments[i]) : undefined;
  }
  const last = segments[segments.length - 1];
  if (Array.isArray(node)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= node.length) return false;
    node.splice(i, 1);
    return true;
  }
  if (!isContainer(node) || !Object.hasOwn(node, last)) return false;
  delete (node as Record<string, unknown>)[last];
  return true;
}
