//! ChaCha20 (RFC 8439), the generator behind `random_seed`.
//!
//! Written from RFC 8439 §2.1–2.3 (quarter round, block function) and
//! checked against its test vectors. The sandbox's random bytes are
//! ChaCha20 keystream: no secret is involved (the seed is in the policy),
//! the point is a documented, portable, well-mixed stream that anyone can
//! regenerate from the seed.
//!
//! The 32-bit block counter of RFC 8439 is carried into the first nonce
//! word (DJB's original layout: a 64-bit counter in state words 12–13, a
//! 64-bit stream id in words 14–15), so a stream never wraps. For the first
//! 2³² blocks this is exactly RFC 8439 with `counter = n` and
//! `nonce = 0x00000000 ‖ LE64(stream id)`.

/// `"expand 32-byte k"`.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// One ChaCha20 key and stream id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChaCha20 {
    key: [u32; 8],
    stream: [u32; 2],
}

fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

impl ChaCha20 {
    /// A cipher with `key` and the 64-bit stream id `stream`.
    pub(crate) fn new(key: &[u8; 32], stream: u64) -> ChaCha20 {
        let mut k = [0u32; 8];
        for (i, w) in k.iter_mut().enumerate() {
            *w = le32(&key[i * 4..]);
        }
        ChaCha20 {
            key: k,
            stream: [stream as u32, (stream >> 32) as u32],
        }
    }

    /// The keystream block number `n` (64 bytes).
    pub(crate) fn block(&self, n: u64) -> [u8; 64] {
        let mut init = [0u32; 16];
        init[..4].copy_from_slice(&SIGMA);
        init[4..12].copy_from_slice(&self.key);
        init[12] = n as u32;
        init[13] = (n >> 32) as u32;
        init[14] = self.stream[0];
        init[15] = self.stream[1];
        let mut s = init;
        for _ in 0..10 {
            quarter(&mut s, 0, 4, 8, 12);
            quarter(&mut s, 1, 5, 9, 13);
            quarter(&mut s, 2, 6, 10, 14);
            quarter(&mut s, 3, 7, 11, 15);
            quarter(&mut s, 0, 5, 10, 15);
            quarter(&mut s, 1, 6, 11, 12);
            quarter(&mut s, 2, 7, 8, 13);
            quarter(&mut s, 3, 4, 9, 14);
        }
        let mut out = [0u8; 64];
        for (i, (w, w0)) in s.iter().zip(init.iter()).enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&w.wrapping_add(*w0).to_le_bytes());
        }
        out
    }
}

/// A keystream read in order: the bytes of block 0, then block 1, ...
#[derive(Clone, Debug)]
pub(crate) struct Stream {
    cipher: ChaCha20,
    next_block: u64,
    buf: [u8; 64],
    used: usize,
}

impl Stream {
    /// The stream of the sandbox seeded with `seed`, for source `source`.
    /// The key is `LE64(seed) ‖ 0²⁴`; the stream id is `source`.
    pub(crate) fn seeded(seed: u64, source: u64) -> Stream {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        Stream {
            cipher: ChaCha20::new(&key, source),
            next_block: 0,
            buf: [0; 64],
            used: 64,
        }
    }

    /// Fills `out` with the next bytes of the stream.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.used == 64 {
                self.buf = self.cipher.block(self.next_block);
                self.next_block = self.next_block.wrapping_add(1);
                self.used = 0;
            }
            let n = (64 - self.used).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.buf[self.used..self.used + n]);
            self.used += n;
            done += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn rfc8439_block_function_vector() {
        // RFC 8439 §2.3.2: key 00..1f, nonce bytes 00 00 00 09 00 00 00 4a
        // 00 00 00 00, counter 1. Nonce word 0 (0x09000000 read little-endian)
        // is our counter's high half and words 1-2 our stream id.
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let c = ChaCha20::new(&key, 0x4a00_0000);
        assert_eq!(
            hex(&c.block(0x0900_0000 << 32 | 1)),
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e\
             d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
        );
    }

    #[test]
    fn rfc8439_keystream_vector_a1() {
        // RFC 8439 A.1, test vector #1: all-zero key, nonce and counter.
        let c = ChaCha20::new(&[0; 32], 0);
        assert_eq!(
            hex(&c.block(0)),
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
        );
    }

    #[test]
    fn seeded_stream_is_chacha_keystream_across_blocks() {
        // Seed 42, source 0: the first 48 bytes (from an independent
        // ChaCha20 implementation, OpenSSL through Python's `cryptography`).
        let mut s = Stream::seeded(42, 0);
        let mut a = [0u8; 20];
        let mut b = [0u8; 28];
        s.fill(&mut a);
        s.fill(&mut b);
        assert_eq!(
            hex(&a) + &hex(&b),
            "1f76e526510ae36a625c8b5c597febb416042cce3db589b3dc82a8f7a4a86626\
             eb604128710fd1d804264f1a5b080a60"
        );
    }

    #[test]
    fn counter_carries_past_two_to_the_32() {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&42u64.to_le_bytes());
        let c = ChaCha20::new(&key, 1);
        let two = [c.block(u64::from(u32::MAX)), c.block(1 << 32)].concat();
        assert_eq!(
            hex(&two),
            "3d2b29e1affa583515fddb87145479781291d4b488c361b3319e4a15479f602f\
             4a8772d3ddc1d0cf503c928b07f09e4a6fa3bf4f739dfc5524ff96674961353e\
             5025443d45f59f5da3cea86ba9557a21ca71a086013cebf0ba9dc93d53d1f9c8\
             e1689058606237868a876c50e2a379859640b23c31ceb1eb5741cde4db517ed4"
        );
    }

    #[test]
    fn seeds_and_sources_differ() {
        let take = |seed, src| {
            let mut b = [0u8; 32];
            Stream::seeded(seed, src).fill(&mut b);
            b
        };
        assert_eq!(take(42, 0), take(42, 0));
        assert_ne!(take(42, 0), take(7, 0));
        assert_ne!(take(42, 0), take(42, 1));
    }
}
