//! Bounded reads of syscall arguments from child memory: C strings, sockaddrs
//! and argv. Every read is split at page boundaries (so a string that ends
//! just before an unmapped page is read, and one that runs into it faults
//! cleanly), and every result has a hard size bound.

use crate::memory::{ChildMemory, MemError, PAGE};
use crate::sockaddr::{SOCKADDR_MAX, SockAddrBuf};

/// `PATH_MAX`: the longest path the kernel accepts, terminating NUL included.
pub const PATH_MAX: usize = 4096;
/// The most argv entries [`read_argv`] reads.
pub const ARGV_MAX_COUNT: usize = 4096;
/// The most argv bytes (NULs included) [`read_argv`] reads.
pub const ARGV_MAX_BYTES: usize = 256 * 1024;

/// A path read from the child: at most `PATH_MAX - 1` bytes, no NUL.
pub type PathBuf = heapless::Vec<u8, PATH_MAX>;

/// The size of the scratch buffer for string reads.
const CHUNK: usize = 1024;

/// Scan the NUL-terminated string at `addr`, handing its bytes to `out` in
/// pieces; at most `max` bytes before the NUL. Returns the string's length.
fn scan_cstr(
    mem: &impl ChildMemory,
    addr: u64,
    max: usize,
    mut out: impl FnMut(&[u8]),
) -> Result<usize, MemError> {
    let mut scratch = [0u8; CHUNK];
    let mut len = 0usize;
    // Read up to max + 1 bytes: the NUL may sit right at the bound.
    while len <= max {
        let at = addr
            .checked_add(len as u64)
            .ok_or(MemError::Fault { addr })?;
        let page_left = (PAGE - at % PAGE) as usize;
        let want = page_left.min(CHUNK).min(max + 1 - len);
        let n = mem.read(at, &mut scratch[..want])?;
        if n == 0 {
            return Err(MemError::Fault { addr: at });
        }
        let got = &scratch[..n.min(want)];
        if let Some(nul) = got.iter().position(|&b| b == 0) {
            out(&got[..nul]);
            return Ok(len + nul);
        }
        out(got);
        len += got.len();
    }
    Err(MemError::TooLong { addr, bound: max })
}

/// The NUL-terminated string at `addr`, at most `PATH_MAX - 1` bytes, into a
/// fixed-capacity buffer (no allocation).
pub fn read_path(mem: &impl ChildMemory, addr: u64) -> Result<PathBuf, MemError> {
    let mut path = PathBuf::new();
    scan_cstr(mem, addr, PATH_MAX - 1, |piece| {
        // Cannot overflow: scan_cstr hands out at most PATH_MAX - 1 bytes
        // before failing with TooLong.
        let _ = path.extend_from_slice(piece);
    })?;
    Ok(path)
}

/// The socket address of `len` bytes at `addr` (`len` is the syscall's
/// `addrlen`, which the child controls): `TooLong` above `sockaddr_storage`.
pub fn read_sockaddr(mem: &impl ChildMemory, addr: u64, len: u64) -> Result<SockAddrBuf, MemError> {
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= SOCKADDR_MAX)
        .ok_or(MemError::TooLong {
            addr,
            bound: SOCKADDR_MAX,
        })?;
    let mut buf = [0u8; SOCKADDR_MAX];
    mem.read_exact(addr, &mut buf[..len])?;
    Ok(SockAddrBuf::from_bytes(&buf[..len]).unwrap_or_default())
}

/// A native-endian `u64` at `addr` (a pointer in a pointer array).
pub fn read_u64(mem: &impl ChildMemory, addr: u64) -> Result<u64, MemError> {
    let mut b = [0u8; 8];
    mem.read_exact(addr, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// The NULL-terminated array of C strings at `addr` (argv, envp): at most
/// [`ARGV_MAX_COUNT`] entries and [`ARGV_MAX_BYTES`] bytes, else `TooLong`.
/// Invalid UTF-8 is replaced (U+FFFD). A NULL `addr` is an empty vector, as
/// the kernel treats it.
pub fn read_argv(mem: &impl ChildMemory, addr: u64) -> Result<Vec<String>, MemError> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut budget = ARGV_MAX_BYTES;
    for i in 0..=ARGV_MAX_COUNT {
        let slot = addr
            .checked_add(8 * i as u64)
            .ok_or(MemError::Fault { addr })?;
        let ptr = read_u64(mem, slot)?;
        if ptr == 0 {
            return Ok(out);
        }
        if i == ARGV_MAX_COUNT || budget == 0 {
            break;
        }
        let mut bytes = Vec::new();
        let len =
            scan_cstr(mem, ptr, budget - 1, |p| bytes.extend_from_slice(p)).map_err(
                |e| match e {
                    MemError::TooLong { .. } => MemError::TooLong {
                        addr,
                        bound: ARGV_MAX_BYTES,
                    },
                    e => e,
                },
            )?;
        budget -= len + 1;
        out.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    Err(MemError::TooLong {
        addr,
        bound: ARGV_MAX_BYTES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FakeMemory;

    #[test]
    fn path_ending_at_an_unmapped_page() {
        // "abc\0" ends exactly at the end of the mapping: readable.
        let m = FakeMemory::new().map(0x1ffc, b"abc\0".to_vec());
        assert_eq!(read_path(&m, 0x1ffc).unwrap().as_slice(), b"abc");
        // No NUL before the unmapped page: a fault at its first byte.
        let m = FakeMemory::new().map(0x1ffc, b"abcd".to_vec());
        assert_eq!(read_path(&m, 0x1ffc), Err(MemError::Fault { addr: 0x2000 }));
    }

    #[test]
    fn path_crossing_pages_is_joined() {
        let mut bytes = vec![b'x'; 5000];
        bytes[4000] = 0;
        let m = FakeMemory::new().map(0x1f00, bytes);
        assert_eq!(read_path(&m, 0x1f00).unwrap().len(), 4000);
    }

    #[test]
    fn path_bound() {
        let mut bytes = vec![b'a'; 4095];
        bytes.push(0);
        let m = FakeMemory::new().map(0x1000, bytes);
        assert_eq!(read_path(&m, 0x1000).unwrap().len(), 4095);
        let m = FakeMemory::new().map(0x1000, vec![b'a'; 8192]);
        assert_eq!(
            read_path(&m, 0x1000),
            Err(MemError::TooLong {
                addr: 0x1000,
                bound: 4095
            })
        );
    }

    #[test]
    fn sockaddr_bound() {
        let m = FakeMemory::new().map(0x1000, vec![0u8; 256]);
        assert!(read_sockaddr(&m, 0x1000, 128).is_ok());
        assert_eq!(
            read_sockaddr(&m, 0x1000, 129),
            Err(MemError::TooLong {
                addr: 0x1000,
                bound: 128
            })
        );
        assert_eq!(
            read_sockaddr(&m, 0x1000, u64::MAX),
            Err(MemError::TooLong {
                addr: 0x1000,
                bound: 128
            })
        );
    }

    #[test]
    fn argv_reads_and_bounds() {
        let mut img = Vec::new();
        for p in [0x2000u64, 0x2003, 0] {
            img.extend_from_slice(&p.to_ne_bytes());
        }
        let m = FakeMemory::new()
            .map(0x1000, img)
            .map(0x2000, b"ls\0-l\0".to_vec());
        assert_eq!(read_argv(&m, 0x1000).unwrap(), ["ls", "-l"]);
        assert_eq!(read_argv(&m, 0).unwrap(), Vec::<String>::new());
        // A pointer array that never ends: bounded by the count.
        let looped = [0x2000u64.to_ne_bytes(); ARGV_MAX_COUNT + 8].concat();
        let m = FakeMemory::new()
            .map(0x10000, looped)
            .map(0x2000, b"x\0".to_vec());
        assert!(matches!(
            read_argv(&m, 0x10000),
            Err(MemError::TooLong { .. })
        ));
        // One huge string: bounded by the byte budget.
        let ptrs = [0x100000u64.to_ne_bytes(), [0; 8]].concat();
        let m = FakeMemory::new()
            .map(0x1000, ptrs)
            .map(0x100000, vec![b'a'; ARGV_MAX_BYTES + 10]);
        assert!(matches!(
            read_argv(&m, 0x1000),
            Err(MemError::TooLong { .. })
        ));
    }
}
