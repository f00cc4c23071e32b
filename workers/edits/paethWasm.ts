/**
 * The PNG Paeth filter in WebAssembly with 128-bit SIMD, 16 bytes at a time. The module is
 * written here as instructions and assembled into its bytes by this file (no binary in the
 * repository, no assembler to install); `paethRowsWasm` runs it. When filtering (not when
 * unfiltering), every byte's prediction depends only on the raw pixels to its left and above,
 * never on other filtered bytes, so whole vectors are filtered at once. The JavaScript filter
 * (paethFilter.ts) is the reference: a unit test pins this one to it byte for byte.
 *
 * The module exports its memory and
 * `filter(input, output, rowBytes, bpp, rows)`: `input` points at the row above the first,
 * followed by `rows` rows of `rowBytes`; `output` receives each row as PNG stores it, the filter
 * type byte (4) and then the filtered bytes.
 */

/** The JavaScript that runs the module over a band (also evaluated on the filter threads). */
export const PAETH_WASM_SOURCE = `function paethRowsWasm(bytes) {
  const { memory, filter } = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports;
  // Rows are copied through the module's memory a chunk at a time, so that memory stays small.
  const CHUNK_BYTES = 1 << 20;
  return function paethRows(band, above, rowBytes, bpp, out) {
    const rows = band.length / rowBytes;
    const chunkRows = Math.max(1, Math.min(rows, Math.floor(CHUNK_BYTES / rowBytes)));
    const outAt = (chunkRows + 1) * rowBytes;
    const need = outAt + chunkRows * (rowBytes + 1);
    if (memory.buffer.byteLength < need) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
    const heap = new Uint8Array(memory.buffer);
    heap.set(above, 0);
    for (let first = 0; first < rows; first += chunkRows) {
      const count = Math.min(chunkRows, rows - first);
      // The row above this chunk: the band's row above, or the previous chunk's last row.
      if (first > 0) heap.copyWithin(0, chunkRows * rowBytes, (chunkRows + 1) * rowBytes);
      heap.set(band.subarray(first * rowBytes, (first + count) * rowBytes), rowBytes);
      filter(0, outAt, rowBytes, bpp, count);
      out.set(heap.subarray(outAt, outAt + count * (rowBytes + 1)), first * (rowBytes + 1));
    }
  };
}`;

export type PaethRows = (band: Uint8Array, above: Uint8Array, rowBytes: number, bpp: number, out: Uint8Array) => void;

/** The filter over the module, in this thread. */
export function paethRowsWasm(bytes: Uint8Array = paethWasmBytes()): PaethRows {
  return new Function(`${PAETH_WASM_SOURCE}\nreturn paethRowsWasm;`)()(bytes) as PaethRows;
}

let assembled: Uint8Array | undefined;

/** The module's bytes. */
export function paethWasmBytes(): Uint8Array {
  assembled ??= assemble();
  return assembled;
}

// Value types and the instructions used (WebAssembly core spec 1.0 and its fixed-width SIMD).
const I32 = 0x7f;
const V128 = 0x7b;
const EMPTY = 0x40;

type Code = number[];

const local = {
  get: (index: number): Code => [0x20, index],
  set: (index: number): Code => [0x21, index],
  tee: (index: number): Code => [0x22, index],
};
const i32 = {
  const: (value: number): Code => [0x41, ...sleb(value)],
  load8u: (): Code => [0x2d, 0, 0],
  store8: (): Code => [0x3a, 0, 0],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  and: [0x71],
  geS: [0x4e],
  geU: [0x4f],
  gtU: [0x4b],
  leS: [0x4c],
};
const select: Code = [0x1b];
const simd = (opcode: number, ...immediates: number[]): Code => [0xfd, ...uleb(opcode), ...immediates];
const v128 = {
  load: simd(0x00, 0, 0),
  store: simd(0x0b, 0, 0),
  bitselect: simd(0x52),
  and: simd(0x4e),
};
const i8x16 = { sub: simd(0x71), narrowI16x8S: simd(0x65) };
const i16x8 = {
  extendLowU: simd(0x89),
  extendHighU: simd(0x8a),
  abs: simd(0x80),
  add: simd(0x8e),
  sub: simd(0x91),
  leS: simd(0x33),
};

/** `block { loop { br_if(exit) ... br loop } }`: runs `body` while `exit` leaves 0. */
function whileNot(exit: Code, body: Code): Code {
  return [0x02, EMPTY, 0x03, EMPTY, ...exit, 0x0d, 1, ...body, 0x0c, 0, 0x0b, 0x0b];
}

function assemble(): Uint8Array {
  // Parameters, then locals.
  const [input, output, rowBytes, bpp, rows] = [0, 1, 2, 3, 4];
  const [r, prior, cur, o, i, a, b, c, pa, pb, pc] = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const [va, vb, vc, d1, d2, vpa, vpb, vpc, maLow, mbLow, maHigh, mbHigh] = [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27];

  const increment = (index: number, by: number): Code => [...local.get(index), ...i32.const(by), ...i32.add, ...local.set(index)];
  const at = (base: number, minusBpp = false): Code => [
    ...local.get(base),
    ...local.get(i),
    ...i32.add,
    ...(minusBpp ? [...local.get(bpp), ...i32.sub] : []),
  ];
  const abs = (index: number): Code => [
    ...local.get(index),
    ...i32.const(0),
    ...local.get(index),
    ...i32.sub,
    ...local.get(index),
    ...i32.const(0),
    ...i32.geS,
    ...select, // index >= 0 ? index : -index
    ...local.set(index),
  ];

  // One byte: the predictor is a, b or c, whichever is nearest to a + b - c (ties in that order).
  const scalarByte: Code = [
    ...at(cur, true), ...i32.load8u(), ...local.set(a),
    ...at(prior), ...i32.load8u(), ...local.set(b),
    ...at(prior, true), ...i32.load8u(), ...local.set(c),
    ...local.get(b), ...local.get(c), ...i32.sub, ...local.set(pa),
    ...local.get(a), ...local.get(c), ...i32.sub, ...local.set(pb),
    ...local.get(pa), ...local.get(pb), ...i32.add, ...local.set(pc),
    ...abs(pa), ...abs(pb), ...abs(pc),
    ...at(o),
    ...at(cur), ...i32.load8u(),
    ...local.get(a),
    ...local.get(b), ...local.get(c), ...local.get(pb), ...local.get(pc), ...i32.leS, ...select,
    ...local.get(pa), ...local.get(pb), ...i32.leS, ...local.get(pa), ...local.get(pc), ...i32.leS, ...i32.and,
    ...select,
    ...i32.sub,
    ...i32.store8(),
  ];

  // The same for 16 bytes, in 16-bit lanes, eight at a time.
  const masks = (extend: Code, ma: number, mb: number): Code => [
    ...local.get(vb), ...extend, ...local.get(vc), ...extend, ...i16x8.sub, ...local.set(d1),
    ...local.get(va), ...extend, ...local.get(vc), ...extend, ...i16x8.sub, ...local.set(d2),
    ...local.get(d1), ...i16x8.abs, ...local.set(vpa),
    ...local.get(d2), ...i16x8.abs, ...local.set(vpb),
    ...local.get(d1), ...local.get(d2), ...i16x8.add, ...i16x8.abs, ...local.set(vpc),
    ...local.get(vpa), ...local.get(vpb), ...i16x8.leS, ...local.get(vpa), ...local.get(vpc), ...i16x8.leS, ...v128.and, ...local.set(ma),
    ...local.get(vpb), ...local.get(vpc), ...i16x8.leS, ...local.set(mb),
  ];
  const vectorBytes: Code = [
    ...at(cur, true), ...v128.load, ...local.set(va),
    ...at(prior), ...v128.load, ...local.set(vb),
    ...at(prior, true), ...v128.load, ...local.set(vc),
    ...masks(i16x8.extendLowU, maLow, mbLow),
    ...masks(i16x8.extendHighU, maHigh, mbHigh),
    ...at(o),
    ...at(cur), ...v128.load,
    ...local.get(va),
    ...local.get(vb), ...local.get(vc), ...local.get(mbLow), ...local.get(mbHigh), ...i8x16.narrowI16x8S, ...v128.bitselect,
    ...local.get(maLow), ...local.get(maHigh), ...i8x16.narrowI16x8S,
    ...v128.bitselect,
    ...i8x16.sub,
    ...v128.store,
  ];

  const row: Code = [
    ...local.get(input), ...local.get(r), ...local.get(rowBytes), ...i32.mul, ...i32.add, ...local.tee(prior),
    ...local.get(rowBytes), ...i32.add, ...local.set(cur),
    ...local.get(output), ...local.get(r), ...local.get(rowBytes), ...i32.const(1), ...i32.add, ...i32.mul, ...i32.add, ...local.tee(o),
    ...i32.const(4), ...i32.store8(),
    ...increment(o, 1),
    ...i32.const(0), ...local.set(i),
    // The first pixel: a and c are 0, so the predictor is b.
    ...whileNot([...local.get(i), ...local.get(bpp), ...i32.geU], [
      ...at(o), ...at(cur), ...i32.load8u(), ...at(prior), ...i32.load8u(), ...i32.sub, ...i32.store8(),
      ...increment(i, 1),
    ]),
    ...whileNot([...local.get(i), ...i32.const(16), ...i32.add, ...local.get(rowBytes), ...i32.gtU], [...vectorBytes, ...increment(i, 16)]),
    ...whileNot([...local.get(i), ...local.get(rowBytes), ...i32.geU], [...scalarByte, ...increment(i, 1)]),
    ...increment(r, 1),
  ];
  const body: Code = [...whileNot([...local.get(r), ...local.get(rows), ...i32.geU], row), 0x0b];
  const locals = [2, 11, I32, 12, V128]; // locals 5 to 15 are i32, 16 to 27 v128
  const func = [...locals, ...body];

  const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
  const name = (text: string): number[] => [...uleb(text.length), ...Buffer.from(text, "latin1")];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, 5, I32, I32, I32, I32, I32, 0]), // type: (i32 × 5) -> ()
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(5, [1, 0x00, 1]), // one memory, at least one page, grown from JavaScript
    ...section(7, [2, ...name("filter"), 0x00, 0, ...name("memory"), 0x02, 0]),
    ...section(10, [1, ...uleb(func.length), ...func]),
  ]);
}

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}
