# Peers for the tap tests, real programs on the far sides of `fdbroker tap`. Each prints "ready" once it can be
# reached, then one JSON line per message it receives: the bytes (latin-1) and the inode of every fd received.
import array, json, os, socket, sys

def received(data, fds):
    print(json.dumps({"data": data.decode("latin-1"), "inodes": [os.fstat(f).st_ino for f in fds]}), flush=True)
    for f in fds:
        os.close(f)

def echo(path, kind):
    # stream or seqpacket: answer each message with the same bytes and fds, until the client ends
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    s.listen()
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        while True:
            data, fds, _, _ = socket.recv_fds(c, 1 << 20, 16)
            if not data and not fds:
                break
            socket.send_fds(c, [data], fds)
            received(data, fds)
        c.close()

def dgram_server(path):
    # Answers every datagram to its sender with "ok N" (N: fds received); ends on "bye".
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    print("ready", flush=True)
    while True:
        data, fds, _, sender = socket.recv_fds(s, 1 << 16, 16)
        received(data, fds)
        s.sendto(b"ok %d" % len(fds), sender)
        if data == b"bye":
            return

def dgram_client(tap, own, file):
    # Three datagrams with 1, 2 and 0 fds of `file`, then "bye"; prints the answers as a JSON list.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(own)
    f = os.open(file, os.O_RDONLY)
    answers = []
    for data, fds in [(b"one", [f]), (b"two two", [f, f]), (b"three", []), (b"bye", [])]:
        # socket.send_fds ignores its address argument (Python 3.11): sendmsg itself.
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        s.sendmsg([data], rights, 0, tap)
        answers.append(s.recv(100).decode())
    print(json.dumps(answers), flush=True)

def bulk_check(path):
    # Reads one connection to its end: total bytes, a hash, and each fd's inode with the range of bytes it came with.
    import hashlib
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen()
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        total, h, fds = 0, hashlib.sha256(), []
        while True:
            data, got, _, _ = socket.recv_fds(c, 1 << 20, 16)
            if not data and not got:
                break
            fds += [[total, total + len(data), os.fstat(f).st_ino] for f in got]
            for f in got:
                os.close(f)
            h.update(data)
            total += len(data)
        if total:
            print(json.dumps({"total": total, "sha256": h.hexdigest(), "fds": fds}), flush=True)
            return

def bulk_send(path, file, mib):
    # mib MiB in 1 MiB sends, each followed by one byte carrying an fd of `file`; prints where each fd's byte was.
    import hashlib
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    f = os.open(file, os.O_RDONLY)
    total, h, marks = 0, hashlib.sha256(), []
    for k in range(int(mib)):
        chunk = bytes([k % 251]) * (1 << 20)
        c.sendall(chunk)
        socket.send_fds(c, [b"F"], [f])
        h.update(chunk + b"F")
        marks.append(total + len(chunk))
        total += len(chunk) + 1
    c.close()
    print(json.dumps({"total": total, "sha256": h.hexdigest(), "marks": marks}), flush=True)

mode = sys.argv[1]
if mode == "stream-echo":
    echo(sys.argv[2], socket.SOCK_STREAM)
elif mode == "seqpacket-echo":
    echo(sys.argv[2], socket.SOCK_SEQPACKET)
elif mode == "dgram-server":
    dgram_server(sys.argv[2])
elif mode == "bulk-check":
    bulk_check(sys.argv[2])
elif mode == "bulk-send":
    bulk_send(*sys.argv[2:5])
elif mode == "dgram-client":
    dgram_client(*sys.argv[2:5])
