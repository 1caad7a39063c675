//! The seeded mutator: stacked byte-level edits of a corpus input, steered by the
//! target's dictionary (keywords and punctuation of its input language).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bytes that often sit on a parser's edges.
const INTERESTING_BYTES: &[u8] = &[
    0x00, 0xff, 0x7f, 0x80, 0xc0, 0xc3, 0xd4, 0xe2, 0xf0, b'"', b'\\', b'{', b'}', b'[', b']',
    b',', b':', b'=', b'\n', b' ', b'#', b'/', b'*', b'$', b'0', b'9', b'-', b'.', b'e',
];

/// Numbers that often sit on a converter's edges.
const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1e309",
    "-1e309",
    "1e-400",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "99999999999999999999999999",
    "0.1",
    "1.7976931348623157e308",
    "4294967296",
    "NaN",
    "Infinity",
    "1_000",
    "0x10",
    "00",
    "1.",
    ".5",
];

/// A seeded, reproducible mutator.
#[derive(Debug)]
pub struct Mutator {
    rng: StdRng,
    dictionary: Vec<Vec<u8>>,
}

impl Mutator {
    pub fn new(seed: u64, dictionary: &[&[u8]]) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            dictionary: dictionary.iter().map(|t| t.to_vec()).collect(),
        }
    }

    /// The random number generator, for the driver's own choices.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Random bytes, `0..max_len` of them.
    pub fn fresh(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.rng.random_range(0..=max_len.min(256));
        (0..len).map(|_| self.rng.random()).collect()
    }

    /// `base` after 1-8 stacked edits (`other` is a second input to splice from),
    /// at most `max_len` bytes.
    pub fn mutate(&mut self, base: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
        let mut out = base.to_vec();
        let edits = 1 << self.rng.random_range(0..4);
        for _ in 0..edits {
            self.edit(&mut out, other);
        }
        out.truncate(max_len);
        out
    }

    fn edit(&mut self, out: &mut Vec<u8>, other: &[u8]) {
        let r = &mut self.rng;
        let len = out.len();
        let at = if len == 0 { 0 } else { r.random_range(0..=len) };
        match r.random_range(0..10) {
            0 if len > 0 => {
                let i = r.random_range(0..len);
                out[i] ^= 1 << r.random_range(0..8);
            }
            1 if len > 0 => {
                let i = r.random_range(0..len);
                out[i] = INTERESTING_BYTES[r.random_range(0..INTERESTING_BYTES.len())];
            }
            2 if len > 0 => {
                let i = r.random_range(0..len);
                let n = r.random_range(1..=(len - i).min(16));
                out.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = r.random_range(0..len);
                let n = r.random_range(1..=(len - i).min(32));
                let chunk = out[i..i + n].to_vec();
                out.splice(at..at, chunk);
            }
            4 | 5 if !self.dictionary.is_empty() => {
                let token = self.dictionary[r.random_range(0..self.dictionary.len())].clone();
                if r.random_bool(0.5) || len == 0 {
                    out.splice(at..at, token);
                } else {
                    let end = (at + r.random_range(0..8)).min(len);
                    out.splice(at..end, token);
                }
            }
            6 if !other.is_empty() => {
                let j = r.random_range(0..other.len());
                out.truncate(at);
                out.extend_from_slice(&other[j..]);
            }
            7 => {
                let n = r.random_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| r.random()).collect();
                out.splice(at..at, bytes);
            }
            _ => replace_number(r, out),
        }
    }
}

/// Replaces a run of digits (or inserts at the end) with an interesting number.
fn replace_number(r: &mut StdRng, out: &mut Vec<u8>) {
    let n = INTERESTING_NUMBERS[r.random_range(0..INTERESTING_NUMBERS.len())].as_bytes();
    let digits: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].is_ascii_digit())
        .collect();
    if digits.is_empty() {
        out.extend_from_slice(n);
        return;
    }
    let start = digits[r.random_range(0..digits.len())];
    let end = (start..out.len())
        .find(|&i| !(out[i].is_ascii_digit() || out[i] == b'.'))
        .unwrap_or(out.len());
    out.splice(start..end, n.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_mutations() {
        let base = b"target = 60\nmin = 1".to_vec();
        let run = |seed| {
            let mut m = Mutator::new(seed, &[b"metric", b"{"]);
            (0..50)
                .map(|_| m.mutate(&base, b"other", 128))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().all(|m| m.len() <= 128));
    }
}
