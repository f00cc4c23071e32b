/**
 * The PNG Paeth filter in plain JavaScript: the reference that the WebAssembly filter
 * (paethWasm.ts), which the worker runs, is held to byte for byte. Without branches: on photos,
 * whose predictor choice changes from byte to byte, the branchy form ran about half as fast.
 */
import type { PaethRows } from "./paethWasm.js";

/**
 * Filters `band` (whole rows of `rowBytes`, `bpp` bytes a pixel) into `out`, each row as PNG
 * stores it: the filter type byte (4), then the filtered bytes; `above` is the row above the
 * band's first (zeros for the image's first row).
 */
export const PAETH_JS_SOURCE = `function paethRowsJs(band, above, rowBytes, bpp, out) {
  const rows = band.length / rowBytes;
  let prior = above;
  let priorAt = 0;
  for (let r = 0; r < rows; r += 1) {
    const at = r * rowBytes;
    const o = r * (rowBytes + 1) + 1;
    out[o - 1] = 4;
    for (let i = 0; i < bpp; i += 1) out[o + i] = (band[at + i] - prior[priorAt + i]) & 0xff;
    for (let i = bpp; i < rowBytes; i += 1) {
      const a = band[at + i - bpp];
      const b = prior[priorAt + i];
      const c = prior[priorAt + i - bpp];
      let pa = b - c;
      let pb = a - c;
      let pc = pa + pb;
      pa = (pa ^ (pa >> 31)) - (pa >> 31);
      pb = (pb ^ (pb >> 31)) - (pb >> 31);
      pc = (pc ^ (pc >> 31)) - (pc >> 31);
      const notA = ((pb - pa) | (pc - pa)) >> 31;
      const notB = (pc - pb) >> 31;
      const predictor = (a & ~notA) | (notA & ((b & ~notB) | (c & notB)));
      out[o + i] = (band[at + i] - predictor) & 0xff;
    }
    prior = band;
    priorAt = at;
  }
}`;

export const paethRowsJs = new Function(`${PAETH_JS_SOURCE}\nreturn paethRowsJs;`)() as PaethRows;
