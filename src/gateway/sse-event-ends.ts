// Where server-sent events end in a stream of bytes as it comes, for the proxy's plain pass-through (which sends whole
// events only). Each SSE line ends in CR, LF or CRLF, each line its own way, and an event ends at a blank line: two
// line ends in a row however each is written (`\n\n`, `\r\n\r\n`, `\r\r`, but also `\n\r`, `\r\n\r`, `\n\r\n`).
// Looking for three fixed patterns missed the mixed ones, and a stream so written was held whole until it ended.

const LF = 10;
const CR = 13;

export class EventEnds {
  /** Line ends in a row just read (a CRLF counts once); 2 or more: a blank line, an event's end. */
  #ends = 0;
  /** The last byte read was a CR: an LF now is the rest of its line end (it may come in the next chunk). */
  #afterCr = false;

  /**
   * The index past the last event end in `chunk` (an LF that completes the CRLF of the blank line included), or 0 when
   * no event ends in it. Every chunk of the stream is given, in order: line ends split across chunks are followed.
   */
  last(chunk: Buffer): number {
    let last = 0;
    let ends = this.#ends;
    let afterCr = this.#afterCr;
    // From line end to line end (found natively): an event's text has no byte of interest, and a loop over every byte
    // cost 15 ms per MB of stream.
    let lf = chunk.indexOf(LF);
    let cr = chunk.indexOf(CR);
    for (let at = 0; ; ) {
      const i = lf === -1 || (cr !== -1 && cr < lf) ? cr : lf;
      if ((i === -1 ? chunk.length : i) > at) {
        // Other bytes since the last line end: no blank line runs on across them.
        ends = 0;
        afterCr = false;
      }
      if (i === -1) break;
      if (i === lf) {
        if (!afterCr) ends++;
        afterCr = false;
        lf = chunk.indexOf(LF, i + 1);
      } else {
        ends++;
        afterCr = true;
        cr = chunk.indexOf(CR, i + 1);
      }
      if (ends >= 2) last = i + 1;
      at = i + 1;
    }
    this.#ends = ends;
    this.#afterCr = afterCr;
    return last;
  }
}
