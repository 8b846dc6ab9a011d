//! The deterministic byte stream every writer sends, and the cheap check
//! every reader makes (the same as bench/c/xvbench.c).
//!
//! Byte `i` of the stream is `pattern[i % PATTERN_LEN]`; the length is a
//! prime, so no ring or chunk size shares its period. A reader checks the
//! byte at every stream offset that is a multiple of [`SAMPLE`] and the last
//! byte of every read: a lost, repeated or misplaced run shows up, and the
//! check costs a few loads per 64 KiB.

/// Length of the pattern (prime).
pub const PATTERN_LEN: usize = 65521;
/// Stream offsets checked by readers: every multiple of this.
pub const SAMPLE: u64 = 4096;

/// The pattern, followed by its first `extra` bytes again, so that any
/// `extra`-long run of the stream is one contiguous slice.
pub struct Pattern {
    bytes: Vec<u8>,
    extra: usize,
}

impl Pattern {
    /// The pattern, able to hand out runs up to `extra` bytes long.
    pub fn new(extra: usize) -> Pattern {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut bytes = Vec::with_capacity(PATTERN_LEN + extra);
        for _ in 0..PATTERN_LEN {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push((x >> 56) as u8);
        }
        for i in 0..extra {
            bytes.push(bytes[i % PATTERN_LEN]);
        }
        Pattern { bytes, extra }
    }

    /// Stream bytes `[pos, pos + len)`, `len <= extra`.
    pub fn run(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos % PATTERN_LEN as u64) as usize;
        &self.bytes[start..start + len.min(self.extra)]
    }

    /// Check the samples of `buf`, which holds stream bytes
    /// `[pos, pos + buf.len())`; the number of bytes checked.
    pub fn verify(&self, buf: &[u8], pos: u64) -> Result<u64, String> {
        let Some(&last) = buf.last() else {
            return Ok(0);
        };
        let expect = |at: u64| self.bytes[(at % PATTERN_LEN as u64) as usize];
        let end = pos + buf.len() as u64;
        let mut s = pos.div_ceil(SAMPLE) * SAMPLE;
        let mut checked = 1;
        while s < end {
            if buf[(s - pos) as usize] != expect(s) {
                return Err(format!("data mismatch at stream offset {s}"));
            }
            s += SAMPLE;
            checked += 1;
        }
        if last != expect(end - 1) {
            return Err(format!("data mismatch at stream offset {}", end - 1));
        }
        Ok(checked)
    }
}
