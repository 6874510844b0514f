// Dot paths into parsed JSON (`metadata.tenant`, `messages.0.content`): set makes objects on the way, remove deletes.
// Segments were checked at config load, so `__proto__` never reaches here.

type Json = Record<string, unknown> | unknown[];

const isContainer = (v: unknown): v is Json => typeof v === 'object' && v !== null;

/** The element a segment names in an array: a decimal index below its length, else none (`x`, `1e0`, `-1`, `7` of 2). */
function indexOf(array: unknown[], segment: string): number | undefined {
  if (!/^(0|[1-9]\d*)$/.test(segment)) return undefined;
  const i = Number(segment);
  return i < array.length ? i : undefined;
}

/** Whether the container can take the segment: an object any key, an array only an element it has. */
function holds(node: Json, segment: string): boolean {
  return !Array.isArray(node) || indexOf(node, segment) !== undefined;
}

function child(parent: Json, segment: string): unknown {
  if (!Array.isArray(parent)) return parent[segment];
  const i = indexOf(parent, segment);
  return i === undefined ? undefined : parent[i];
}

/** setPath only assigns into an array that holds the segment (it replaced any other). */
function assign(parent: Json, segment: string, value: unknown): void {
  if (Array.isArray(parent)) parent[indexOf(parent, segment)!] = value;
  else parent[segment] = value;
}

/**
 * Sets the value at the path, as Apigee's Set does: it overwrites whatever is there. On the way, anything that cannot
 * take the next segment (missing, a string, a number, null, an array the segment is no element of) is replaced by an
 * object; followed as it was, a client that sent `metadata: "x"` kept the policy's `metadata.app` out of the request.
 */
export function setPath(root: Record<string, unknown>, segments: readonly string[], value: unknown): void {
  let node: Json = root;
  for (let i = 0; i < segments.length - 1; i++) {
    const next = child(node, segments[i]);
    if (isContainer(next) && holds(next, segments[i + 1])) node = next;
    else {
      const made = {};
      assign(node, segments[i], made);
      node = made;
    }
  }
  assign(node, segments[segments.length - 1], value);
}

/** Removes the value at the path (an array element is spliced out); false when there was none. */
export function removePath(root: Json, segments: readonly string[]): boolean {
  let node: unknown = root;
  for (let i = 0; i < segments.length - 1; i++) {
    node = isContainer(node) ? child(node, segments[i]) : undefined;
  }
  const last = segments[segments.length - 1];
  if (Array.isArray(node)) {
    const i = indexOf(node, last);
    if (i === undefined) return false;
    node.splice(i, 1);
    return true;
  }
  if (!isContainer(node) || !Object.hasOwn(node, last)) return false;
  delete (node as Record<string, unknown>)[last];
  return true;
}
