#!/usr/bin/env python3
# Regenerates fuzz/corpus/decode_event/ (layout: fuzz_targets/decode_event.rs).
# usage: python3 fuzz/gen_decode_event_seeds.py fuzz/corpus/decode_event
import struct, sys, os
INTERESTING = ["execve","execveat","open","openat","openat2","creat","newfstatat","statx","symlinkat",
 "connect","bind","sendto","sendmsg","sendmmsg","mmap","brk","mremap","clone","getpid","unlinkat","renameat2","utimensat"]
def seed(name, args, image, arch=0, offset=0):
    d = bytearray(68)
    d[0] = INTERESTING.index(name)
    d[5] = arch
    for i,(mode,v) in enumerate(args):
        d[10+9*i] = mode
        d[11+9*i:19+9*i] = struct.pack('<Q', v)
    d[64]=1; d[65]=2; d[66]=1; d[67]=offset
    return bytes(d)+image
out = sys.argv[1]
P = lambda off: (1, off)   # pointer into image
V = lambda v: (0, v)
seeds = {}
# openat(AT_FDCWD, "rel/path")
seeds['openat_rel'] = seed('openat', [V(0xffffff9c), P(0), V(0), V(0), V(0), V(0)], b'rel/path\0')
seeds['openat_abs'] = seed('openat', [V(3), P(0), V(0o102), V(0o644), V(0), V(0)], b'/etc/passwd\0')
# openat2 with how at offset 16
img = b'/tmp/x\0'.ljust(16, b'\0') + struct.pack('<QQQ', 0o2000000, 0, 0x08)
seeds['openat2'] = seed('openat2', [V(0xffffff9c), P(0), P(16), V(24), V(0), V(0)], img)
# execve("/bin/ls", ["ls","-la",NULL])
img = b'/bin/ls\0'.ljust(16, b'\0')
ptrs_off = 16; s1 = 48; s2 = 51
img += struct.pack('<QQQ', 0x70000000+s1, 0x70000000+s2, 0)
img = img.ljust(48, b'\0') + b'ls\0-la\0'
seeds['execve'] = seed('execve', [P(0), P(16), V(0), V(0), V(0), V(0)], img)
# connect sockaddr_in 127.0.0.1:80
sin = struct.pack('<H', 2) + struct.pack('>H', 80) + bytes([127,0,0,1]) + b'\0'*8
seeds['connect_v4'] = seed('connect', [V(3), P(0), V(16), V(0), V(0), V(0)], sin)
sin6 = struct.pack('<H', 10) + struct.pack('>H', 443) + b'\0'*4 + b'\0'*10 + b'\xff\xff' + bytes([10,0,0,1]) + b'\0'*4
seeds['connect_mapped'] = seed('connect', [V(3), P(0), V(28), V(0), V(0), V(0)], sin6)
seeds['sendto'] = seed('sendto', [V(3), P(0), V(4), V(0), P(0), V(16)], sin)
# sendmsg: msghdr at 0 {name=32, namelen=16, iov=64, iovlen=1, control=0, controllen=0}
b = 0x70000000
img = struct.pack('<QQQQQQ', b+96, 16, b+64, 1, 0, 0).ljust(64, b'\0') + struct.pack('<QQ', b+112, 5).ljust(32, b'\0') + sin + b'hello'
seeds['sendmsg'] = seed('sendmsg', [V(3), P(0), V(0), V(0), V(0), V(0)], img)
seeds['sendmmsg'] = seed('sendmmsg', [V(3), P(0), V(1), V(0), V(0), V(0)], img)
seeds['mmap'] = seed('mmap', [V(0), V(1<<20), V(3), V(0x22), V(0), V(0)], b'')
# path crossing a page boundary
img = b'a'*5000 + b'\0'
seeds['long_path'] = seed('open', [P(0), V(0), V(0), V(0), V(0), V(0)], img, offset=200)
seeds['aarch64_openat'] = seed('openat', [V(0xffffff9c), P(0), V(0), V(0), V(0), V(0)], b'x\0', arch=2)
os.makedirs(out, exist_ok=True)
for k,v in seeds.items():
    open(os.path.join(out,k),'wb').write(v)
print(len(seeds), "seeds")
