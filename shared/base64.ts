// Base64 of byte arrays, for hash lists and bitfields in JSON bodies. Pure: no I/O.

/** Base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  let raw = "";
  // Chunks keep String.fromCharCode's argument count well under engine limits.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(raw);
}

/** Bytes of a base64 string. @throws {DOMException} on invalid base64 */
export function fromBase64(text: string): Uint8Array {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
