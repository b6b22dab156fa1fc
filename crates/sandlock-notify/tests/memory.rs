//! Bounded reads against real memory: strings that end at, or run into, an
//! unmapped page; both readers (`process_vm_readv` and `/proc/PID/mem`).
// Test helpers outside #[test] fns may unwrap too.
#![allow(unsafe_code, clippy::unwrap_used)]

use sandlock_notify::bounded::{read_path, read_sockaddr};
use sandlock_notify::{MemError, ProcessMemory};

/// Two pages of ours, the second unmapped: (first page's address).
fn page_then_hole() -> *mut u8 {
    // SAFETY: an anonymous private mapping of two pages, whose second page we
    // unmap; the first stays mapped for the rest of the process.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::munmap(p.cast::<u8>().add(4096).cast(), 4096), 0);
        p.cast()
    }
}

#[test]
fn strings_at_the_edge_of_an_unmapped_page() {
    let page = page_then_hole();
    let me = std::process::id();
    for mem in [ProcessMemory::new(me), ProcessMemory::via_proc_mem(me)] {
        // SAFETY: writes inside the mapped first page.
        unsafe {
            std::ptr::copy_nonoverlapping(c"abc".as_ptr().cast::<u8>(), page.add(4092), 4);
        }
        let at = page as u64 + 4092;
        assert_eq!(read_path(&mem, at).unwrap().as_slice(), b"abc", "{mem:?}");
        // No NUL before the hole: a typed fault at the hole, not a panic.
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(b"abcd".as_ptr(), page.add(4092), 4) };
        assert_eq!(
            read_path(&mem, at),
            Err(MemError::Fault {
                addr: page as u64 + 4096
            }),
            "{mem:?}"
        );
        // A sockaddr straddling the hole faults too.
        assert!(matches!(
            read_sockaddr(&mem, page as u64 + 4090, 16),
            Err(MemError::Fault { .. })
        ));
        // A long path that starts far from the hole reads fine.
        // SAFETY: as above.
        unsafe {
            std::ptr::write_bytes(page, b'x', 3000);
            *page.add(3000) = 0;
        }
        assert_eq!(read_path(&mem, page as u64).unwrap().len(), 3000);
    }
}
