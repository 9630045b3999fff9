// Pure framing of the broker protocol (docs/protocol.md): bytes in, frames out, and back. No syscalls here.
export {
  decodeBody, decodeHeader, DEFAULT_MAX_BODY, encodeFrame, encodeFrameShared, encodeJsonFrameShared, HEADER_SIZE, keptFrame, headerProblem, MAX_FDS_PER_FRAME, ProtocolError,
  PROTOCOL_VERSION, type Frame,
} from "./frame.ts";
export {
  bufferedBytes, createReader, drainReader, feed, pendingBytes, type FeedResult, type Reader, type ReceivedFrame,
} from "./reader.ts";
export {
  checkName, OP, opName, parseGet, parseLease, parsePut, parseRelease, parseRm, REPLY, REQUEST_FDS, requireName, type EntryInfo,
  type FullEntryInfo, type LeaseRequest,
} from "./messages.ts";
export { chunkBySize, chunkFds, PART_BYTES } from "./chunk.ts";
