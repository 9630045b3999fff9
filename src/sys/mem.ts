// Scratch memory handed to libc. Every buffer is a view over an explicit ArrayBuffer: pointers to those stay
// valid across JIT tiers (oven-sh/bun issues 9094 and 32054 concern small typed arrays), and module-level
// references keep them alive for as long as C may touch them.
import { ptr, type Pointer } from "bun:ffi";

export function scratch(bytes: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(bytes));
}

export function addressOf(buf: Uint8Array): Pointer {
  return ptr(buf);
}

const TWO32 = 2 ** 32;
/** Store a pointer (or any 64-bit unsigned number below 2^53) little-endian at `offset`. */
export function putU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % TWO32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO32), true);
}
export function getU64(view: DataView, offset: number): number {
  return view.getUint32(offset, true) + view.getUint32(offset + 4, true) * TWO32;
}

const encoder = new TextEncoder();
/** A NUL-terminated copy of `s` in fresh ArrayBuffer-backed memory. */
export function cString(s: string): Uint8Array {
  const bytes = encoder.encode(s);
  if (bytes.includes(0)) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(s)}`);
  const out = scratch(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Many NUL-terminated strings in one fresh buffer (one allocation and one encoding for a whole environment), and
 * the byte offset at which each starts.
 */
export function cStringBlock(items: readonly string[]): { bytes: Uint8Array; offsets: number[] } {
  for (let i = 0; i < items.length; i++)
    if (items[i]!.includes("\0")) throw new TypeError(`string contains a NUL byte: ${JSON.stringify(items[i])}`);
  const encoded = encoder.encode(items.join("\0"));
  const bytes = scratch(encoded.length + 1);
  bytes.set(encoded);
  // Offsets in bytes, not string indexes (UTF-8 lengths differ): each string starts after the previous NUL.
  const offsets = items.length > 0 ? [0] : [];
  for (let at = 0; offsets.length < items.length; ) offsets.push((at = bytes.indexOf(0, at) + 1));
  return { bytes, offsets };
}
