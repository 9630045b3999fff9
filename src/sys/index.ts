// The syscall layer: the only code in fdbroker that touches bun:ffi, pointers or struct layouts.
export { abi, abiFor, C, E, errnoName, errnoNumber, UnsupportedTargetError, type Abi } from "./abi.ts";
export { fromNodeError, isSysError, SysError } from "./errors.ts";
export { encodeRights, parseControl, rightsOf, rightsSpace } from "./cmsg.ts";
export {
  close, closeAll, cloexecRange, dup3, dupCloexec, fcntl, fstat, getFdFlags, getNofileLimit, getStatusFlags, isOpen, isTerminal, lstat, mkdir,
  mkfifo, pidfdGetfd, pidfdOpen, pipe, MAX_FD_NUMBER, poll, read, setCloexec, setNofileLimit, setNonBlocking, waitFd, write, writeAll, type PollRequest, type Stat,
} from "./fd.ts";
export { recvmsg, sendmsg, type Received } from "./msg.ts";
export { EPOLL_BATCH, epollAdd, epollCreate, epollModify, epollRemove, epollWait, type EpollBatch } from "./epoll.ts";
export {
  accept, bind, boundSocket, connect, connectError, connectStart, getIntOpt, listen, peerCred, peerGroups, peerName, setIntOpt, shutdown, socket,
  socketInfo, socketpair, sockName, type PeerCred, type SocketType,
} from "./socket.ts";
export { decodeSockAddr, encodeInet, encodeUnix, formatSockAddr, type SockAddr } from "./sockaddr.ts";
export { access, execve, isAccessible } from "./exec.ts";
export { gidOf, uidOf } from "./ids.ts";
export { kcmpFile } from "./kcmp.ts";
export { encodeUnixDiagRequest, parseDiagReply, unixDiag, type DiagMessage, type UnixDiag } from "./sockdiag.ts";
export { recvmsgFrom, sendmsgTo, type ReceivedFrom } from "./msg.ts";
export { autobindUnix } from "./socket.ts";
export { queuedBytes, setPipeSize, splice } from "./fd.ts";
