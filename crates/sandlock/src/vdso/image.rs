//! Reading a vDSO image: its dynamic symbols, where its content ends, and
//! a `syscall` instruction in its code. Every offset read from the image
//! is bounds-checked; a malformed image is an error, never a panic.

use std::ops::Range;

use super::VdsoError;

const PT_LOAD: u32 = 1;
const SHT_DYNSYM: u32 = 11;
const SHT_NOBITS: u32 = 8;
const PF_X: u32 = 1;
/// Size of an `Elf64_Sym`.
pub(crate) const SYM_SIZE: usize = 24;

/// One dynamic symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Symbol {
    /// Its name.
    pub(crate) name: String,
    /// Offset of its `Elf64_Sym` in the image.
    pub(crate) entry: usize,
    /// Offset in the image of the code it names.
    pub(crate) offset: usize,
    /// Its section index (0: undefined).
    pub(crate) shndx: u16,
}

/// A parsed vDSO image.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    bytes: Vec<u8>,
    symbols: Vec<Symbol>,
    /// `p_vaddr - p_offset` of the loadable segment (0 on Linux).
    bias: u64,
    /// The first byte after everything the ELF headers describe.
    content_end: usize,
    /// The executable part of the loadable segment.
    code: Range<usize>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, VdsoError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(VdsoError::Malformed("a field past the end of the image"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, VdsoError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(VdsoError::Malformed("a field past the end of the image"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, VdsoError> {
    let s = b
        .get(at..at + 8)
        .ok_or(VdsoError::Malformed("a field past the end of the image"))?;
    let mut w = [0u8; 8];
    w.copy_from_slice(s);
    Ok(u64::from_le_bytes(w))
}

/// `a + b`, as a `usize` within `limit`.
fn end_within(a: u64, b: u64, limit: usize) -> Result<usize, VdsoError> {
    a.checked_add(b)
        .and_then(|e| usize::try_from(e).ok())
        .filter(|&e| e <= limit)
        .ok_or(VdsoError::Malformed("a table past the end of the image"))
}

impl Image {
    /// Parses `bytes`, the whole mapping of a vDSO.
    pub(crate) fn parse(bytes: Vec<u8>) -> Result<Image, VdsoError> {
        let b = &bytes;
        if b.get(..4) != Some(b"\x7fELF".as_slice()) || b.get(4) != Some(&2) || b.get(5) != Some(&1)
        {
            return Err(VdsoError::Malformed("not a 64-bit little-endian ELF image"));
        }
        let len = b.len();
        let phoff = u64_at(b, 0x20)?;
        let shoff = u64_at(b, 0x28)?;
        let phentsize = u64::from(u16_at(b, 0x36)?);
        let phnum = u64::from(u16_at(b, 0x38)?);
        let shentsize = u64::from(u16_at(b, 0x3a)?);
        let shnum = u64::from(u16_at(b, 0x3c)?);
        if phentsize < 56 || shentsize < 64 {
            return Err(VdsoError::Malformed("header entries too small"));
        }
        let mut content_end = end_within(phoff, phentsize * phnum, len)?;
        content_end = content_end.max(end_within(shoff, shentsize * shnum, len)?);

        let mut load: Option<(u64, u64, u64, u32)> = None;
        for i in 0..phnum {
            let at = usize::try_from(phoff + i * phentsize)
                .map_err(|_| VdsoError::Malformed("program header offset"))?;
            let kind = u32_at(b, at)?;
            let flags = u32_at(b, at + 4)?;
            let offset = u64_at(b, at + 8)?;
            let vaddr = u64_at(b, at + 16)?;
            let filesz = u64_at(b, at + 32)?;
            content_end = content_end.max(end_within(offset, filesz, len)?);
            if kind == PT_LOAD && load.is_none() {
                load = Some((offset, vaddr, filesz, flags));
            }
        }
        let (load_off, load_vaddr, load_size, load_flags) =
            load.ok_or(VdsoError::Malformed("no loadable segment"))?;
        if load_flags & PF_X == 0 {
            return Err(VdsoError::Malformed(
                "the loadable segment is not executable",
            ));
        }
        let bias = load_vaddr.wrapping_sub(load_off);
        let code =
            usize::try_from(load_off).unwrap_or(usize::MAX)..end_within(load_off, load_size, len)?;

        let mut dynsym: Option<(usize, usize, Range<usize>)> = None;
        let section = |i: u64| -> Result<usize, VdsoError> {
            usize::try_from(shoff + i * shentsize)
                .map_err(|_| VdsoError::Malformed("section header offset"))
        };
        for i in 0..shnum {
            let at = section(i)?;
            let kind = u32_at(b, at + 4)?;
            let offset = u64_at(b, at + 0x18)?;
            let size = u64_at(b, at + 0x20)?;
            if kind != SHT_NOBITS {
                content_end = content_end.max(end_within(offset, size, len)?);
            }
            if kind == SHT_DYNSYM {
                let link = u64::from(u32_at(b, at + 0x28)?);
                if link >= shnum {
                    return Err(VdsoError::Malformed("symbol table without string table"));
                }
                let str_at = section(link)?;
                let str_off = u64_at(b, str_at + 0x18)?;
                let str_size = u64_at(b, str_at + 0x20)?;
                let str_end = end_within(str_off, str_size, len)?;
                dynsym = Some((
                    end_within(offset, 0, len)?,
                    end_within(offset, size, len)?,
                    str_off as usize..str_end,
                ));
            }
        }
        let (sym_start, sym_end, strtab) =
            dynsym.ok_or(VdsoError::Malformed("no dynamic symbol table"))?;
        let mut symbols = Vec::new();
        let mut at = sym_start;
        while at + SYM_SIZE <= sym_end {
            let name_off = u32_at(b, at)? as usize;
            let shndx = u16_at(b, at + 6)?;
            let value = u64_at(b, at + 8)?;
            let name = read_name(&b[strtab.clone()], name_off)?;
            let offset = usize::try_from(value.wrapping_sub(bias)).unwrap_or(usize::MAX);
            if !name.is_empty() {
                symbols.push(Symbol {
                    name,
                    entry: at,
                    offset,
                    shndx,
                });
            }
            at += SYM_SIZE;
        }
        Ok(Image {
            bytes,
            symbols,
            bias,
            content_end,
            code,
        })
    }

    /// The image's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The symbols named `name` (a name may appear once per version).
    pub(crate) fn symbols<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Symbol> + 'a {
        self.symbols.iter().filter(move |s| s.name == name)
    }

    /// The offset of the defined function `name`, if the image has it
    /// inside the mapping.
    pub(crate) fn function(&self, name: &str) -> Option<usize> {
        self.symbols(name)
            .find(|s| s.shndx != 0 && s.offset < self.bytes.len())
            .map(|s| s.offset)
    }

    /// `st_value` of code at image offset `offset`.
    pub(crate) fn value_of(&self, offset: usize) -> u64 {
        (offset as u64).wrapping_add(self.bias)
    }

    /// The free space after the image's content, 16-byte aligned: the bytes
    /// there are zero and nothing refers to them. Empty when there is none.
    pub(crate) fn slack(&self) -> Range<usize> {
        let start = self.content_end.div_ceil(16) * 16;
        let end = self.bytes.len();
        if start >= end || self.bytes[start..end].iter().any(|&b| b != 0) {
            return end..end;
        }
        start..end
    }

    /// The offset of a `syscall` instruction (`0f 05`) in the code: any
    /// two such bytes in an executable page run as one when jumped to.
    pub(crate) fn syscall_site(&self) -> Option<usize> {
        self.bytes
            .get(self.code.clone())?
            .windows(2)
            .position(|w| w == [0x0f, 0x05])
            .map(|p| p + self.code.start)
    }
}

/// The NUL-terminated name at `at` of string table `b` (at most 255 bytes).
fn read_name(b: &[u8], at: usize) -> Result<String, VdsoError> {
    let rest = b.get(at..).ok_or(VdsoError::Malformed(
        "a symbol name past the end of the image",
    ))?;
    let len = rest
        .iter()
        .take(256)
        .position(|&c| c == 0)
        .ok_or(VdsoError::Malformed("an unterminated symbol name"))?;
    Ok(String::from_utf8_lossy(&rest[..len]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_vdso_parses() {
        let Ok(bytes) = super::super::read_own() else {
            eprintln!("skipped: this process has no vDSO");
            return;
        };
        let image = Image::parse(bytes).unwrap();
        assert!(image.function("__vdso_clock_gettime").is_some());
        assert!(image.function("clock_gettime").is_some());
        let slack = image.slack();
        assert!(slack.start >= image.content_end && slack.end == image.bytes().len());
        assert!(image.syscall_site().is_some());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Image::parse(Vec::new()).is_err());
        assert!(Image::parse(b"\x7fELF\x02\x01".to_vec()).is_err());
        let Ok(mut bytes) = super::super::read_own() else {
            return;
        };
        // Section headers pointing past the end.
        bytes[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Image::parse(bytes.clone()).is_err());
        // Every truncation of a real image is refused or parsed, never a panic.
        let Ok(full) = super::super::read_own() else {
            return;
        };
        for cut in (0..full.len()).step_by(97) {
            let _ = Image::parse(full[..cut].to_vec());
        }
    }
}
