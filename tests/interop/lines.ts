// Reading a child's stdout line by line while it runs: the Python peers announce readiness with "ready".
export function lineReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  let buf = "";
  return {
    async line(): Promise<string> {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const l = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return l;
        }
        const { value, done } = await reader.read();
        if (done) {
          const rest = buf;
          buf = "";
          return rest;
        }
        buf += dec.decode(value, { stream: true });
      }
    },
    async rest(): Promise<string> {
      let all = buf;
      buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return all;
        all += dec.decode(value, { stream: true });
      }
    },
  };
}
