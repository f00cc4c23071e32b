/** NumPy .npy files (format 1.0, C order, uint8 only), to hand tensors to the Python checks. */
import { readFileSync, writeFileSync } from "node:fs";

export function writeNpyUint8(file: string, shape: readonly number[], data: Uint8Array): void {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`shape [${shape.join(",")}] does not hold ${data.length} bytes`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${dims}), }`;
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to 64, ends in \n.
  const unpadded = 10 + header.length + 1;
  header += " ".repeat((64 - (unpadded % 64)) % 64) + "\n";
  const prefix = Buffer.alloc(10);
  prefix.write("\x93NUMPY", 0, "latin1");
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

export function readNpyUint8(file: string): { shape: number[]; data: Uint8Array } {
  const bytes = readFileSync(file);
  if (bytes.toString("latin1", 0, 6) !== "\x93NUMPY") throw new Error(`${file} is not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.toString("latin1", start, start + headerLength);
  if (!/'descr':\s*'\|u1'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: only C-order uint8 is supported, header ${header}`);
  }
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "";
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const data = new Uint8Array(bytes.subarray(start + headerLength));
  return { shape, data };
}
