//! Unpadded base64url (RFC 4648 §5) for the fixed-size opaque values vericode
//! hands out (challenge ids, device tokens). Decoding is strict: the exact
//! length, the URL-safe alphabet only, and zero spare bits, so each value has
//! one text form.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The text length of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(6)
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    for chunk in bytes.chunks(3) {
        let mut acc: u32 = 0;
        for &b in chunk {
            acc = (acc << 8) | u32::from(b);
        }
        let bits = 8 * chunk.len();
        let chars = bits.div_ceil(6);
        acc <<= chars * 6 - bits;
        for i in (0..chars).rev() {
            out.push(char::from(ALPHABET[((acc >> (6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Decodes `text` into exactly `out.len()` bytes; `None` for anything else.
pub(crate) fn decode(text: &str, out: &mut [u8]) -> Option<()> {
    let b = text.as_bytes();
    if b.len() != encoded_len(out.len()) {
        return None;
    }
    for (chunk, dst) in b.chunks(4).zip(out.chunks_mut(3)) {
        let mut acc: u32 = 0;
        for &c in chunk {
            acc = (acc << 6) | u32::from(value(c)?);
        }
        let bits = 6 * chunk.len();
        let bytes = bits / 8;
        let spare = bits - bytes * 8;
        if acc & ((1 << spare) - 1) != 0 {
            return None; // non-canonical spare bits
        }
        let acc = acc >> spare;
        for (i, o) in dst.iter_mut().take(bytes).enumerate() {
            *o = (acc >> (8 * (bytes - 1 - i))) as u8;
        }
    }
    Some(())
}

fn value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_without_padding() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"\xfb\xff", "-_8"),
        ] {
            assert_eq!(encode(raw), text);
            let mut out = vec![0u8; raw.len()];
            assert_eq!(decode(text, &mut out), Some(()));
            assert_eq!(out, raw);
        }
        let mut two = [0u8; 2];
        assert_eq!(decode("-_9", &mut two), None, "spare bits set");
        assert_eq!(decode("Zm8=", &mut two), None, "padding");
        assert_eq!(decode("Zm+", &mut two), None, "standard alphabet");
    }
}
