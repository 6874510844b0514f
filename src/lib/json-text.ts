// A JSON request body as text: UTF-8, without the byte order mark some clients put first, which Python's json
// (vLLM's parser) skips and JSON.parse refuses.
export function jsonText(raw: Buffer): string {
  const text = raw.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}
